//! Everything the binary writes: the library returns values, this renders them.

use std::fmt::Write as _;
use std::io::Write as _;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::{Value, json};
use tagguard::tags::Computed;

/// A line on stdout. A closed pipe (`tagguard tags | head -1`) is not an error worth a panic.
pub fn line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub fn raw(text: &str) {
    let _ = write!(std::io::stdout().lock(), "{text}");
}

/// A refusal by policy, on stderr (stdout stays parseable).
pub fn refusal(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "refused: {text}");
}

/// A diagnostic (code, message, help) on stderr, the way errors are shown.
pub fn diagnostic(d: &(impl miette::Diagnostic + Clone + Send + Sync + 'static)) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "{:?}",
        miette::Report::new(d.clone())
    );
}

/// A note for the person reading the log, on stderr.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Progress without a newline, on stderr.
pub fn progress(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

pub fn json(value: &Value) {
    line(&serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

/// One tag per line, each once (several images share the tags).
pub fn tags_text(computed: &Computed) {
    for tag in &computed.tags {
        line(&tag.tag);
    }
}

pub fn tags_json(computed: &Computed) -> Value {
    let per_image: Vec<Option<&str>> = if computed.images.is_empty() {
        vec![None]
    } else {
        computed.images.iter().map(|i| Some(i.as_str())).collect()
    };
    let tags: Vec<Value> = per_image
        .iter()
        .flat_map(|image| {
            computed.tags.iter().map(move |t| {
                json!({
                    "tag": t.tag,
                    "image": image,
                    "ref": image.map(|i| format!("{i}:{}", t.tag)),
                    "immutable": t.immutable,
                    "floating": t.floating,
                    "rule": t.rule,
                    "template": t.template,
                })
            })
        })
        .collect();
    json!({
        "version": computed.version.as_ref().map(ToString::to_string),
        "release_tag": computed.release_tag,
        "images": computed.images,
        "tags": tags,
        "labels": computed.labels,
        "dirty": computed.dirty,
    })
}

/// What the CI said about the build, as tagguard read it (docs/ci/README.md): for `tags
/// --format json`, to see which variables were taken.
pub fn ci_json(ctx: &tagguard::context::Context) -> Value {
    json!({
        "kind": ctx.ci,
        "ref_kind": ctx.ref_kind,
        "branch": ctx.branch,
        "tag": ctx.ci_tag,
        "pr_number": ctx.pr_number,
        "pr_target": ctx.pr_target,
        "build_id": ctx.build_id,
        "build_number": ctx.build_number,
        "event": ctx.event,
        "run_url": ctx.run_url,
    })
}

/// Full references when the policy names images (what docker/build-push-action's `tags`
/// input takes), else bare tags.
fn refs_or_tags(computed: &Computed) -> Vec<String> {
    if computed.images.is_empty() {
        computed.tags.iter().map(|t| t.tag.clone()).collect()
    } else {
        computed.references()
    }
}

fn labels_lines(computed: &Computed) -> Vec<String> {
    computed
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

pub fn tags_github(computed: &Computed) -> Vec<(&'static str, String)> {
    vec![
        ("tags", refs_or_tags(computed).join("\n")),
        (
            "version",
            computed
                .version
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("labels", labels_lines(computed).join("\n")),
        ("json", tags_json(computed).to_string()),
    ]
}

pub fn tags_dotenv(computed: &Computed) -> Vec<(&'static str, String)> {
    vec![
        ("TAGGUARD_TAGS", refs_or_tags(computed).join(",")),
        (
            "TAGGUARD_VERSION",
            computed
                .version
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("TAGGUARD_LABELS", labels_lines(computed).join(",")),
    ]
}

/// dotenv lines for GitLab's `artifacts:reports:dotenv` (single-line values only).
pub fn dotenv<K: AsRef<str>>(pairs: &[(K, String)]) {
    for (key, value) in pairs {
        line(&format!(
            "{}={}",
            key.as_ref(),
            value.replace(['\n', '\r'], " ")
        ));
    }
}

/// Azure Pipelines output variables: one `task.setvariable` logging command per pair, as output
/// variables of the step (`isOutput=true`), never secret ones. Values are one line each.
pub fn azure_outputs<K: AsRef<str>>(pairs: &[(K, String)]) {
    for (key, value) in pairs {
        line(&format!(
            "##vso[task.setvariable variable={};isOutput=true]{}",
            key.as_ref(),
            azure_escape(value)
        ));
    }
}

/// Escapes the data of an Azure Pipelines logging command (`%`, CR, LF) so that it stays one
/// command on one line.
pub fn azure_escape(text: &str) -> String {
    text.replace('%', "%AZP25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Appends outputs to the file GitHub Actions names in `$GITHUB_OUTPUT`, using the
/// multi-line `name<<DELIMITER` form with a delimiter that cannot occur in the values.
pub fn github_outputs(pairs: &[(&str, String)]) -> Result<()> {
    let path = std::env::var_os("GITHUB_OUTPUT")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| miette!(code = "tagguard::output::no_github_output", "--format github writes to $GITHUB_OUTPUT, which is not set (is this a GitHub Actions step?)"))?;
    let mut text = String::new();
    for (name, value) in pairs {
        let delimiter = delimiter_for(value);
        let _ = write!(text, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
    }
    append(&path, &text).wrap_err_with(|| {
        format!(
            "could not write GitHub outputs to {}",
            path.to_string_lossy()
        )
    })
}

pub fn append(path: &std::ffi::OsStr, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .into_diagnostic()?;
    file.write_all(text.as_bytes()).into_diagnostic()
}

fn delimiter_for(value: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut n: u64 = 0;
    loop {
        let digest = Sha256::digest(format!("{n}\0{value}"));
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let delimiter = format!("ghadelimiter_{hex}");
        if !value.contains(&delimiter) {
            return delimiter;
        }
        n += 1;
    }
}
