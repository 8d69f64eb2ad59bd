//! `tagguard check`: compute the tags, look each up in the registry, render the decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::time::Duration;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::json;
use tagguard::check::{self, CheckConfig};
use tagguard::decision::{Action, Decision};
use tagguard::registry::retry::RetryPolicy;
use tagguard::registry::{CredentialConfig, TransportConfig};
use tagguard::secret::Secret;
use tagguard::source::Source;
use tagguard::tags::Computed;

use crate::cli::{CheckArgs, Format, RegistryArgs};
use crate::exit::Outcome;
use crate::{output, tags_cmd};

pub fn run(args: &CheckArgs) -> Result<Outcome> {
    let computed = tags_cmd::compute(&args.build)?;
    require_images(&computed, "check")?;
    if let Some(refusal) = tags_cmd::dirty_refusal(&computed, args.build.allow_dirty) {
        output::refusal(&refusal);
        return Ok(Outcome::Refused);
    }
    let source = args.source.as_deref().map(parse_source).transpose()?;
    let config = config(&args.registry)?;
    let decisions = runtime()?
        .block_on(check::check(&computed, source.as_ref(), &config))
        .map_err(|e| miette!("{e}"))?;

    render(
        args.format,
        &Rendering {
            title: "tagguard check",
            decisions: &decisions,
            json: json!({ "decisions": decisions }),
            github: github_outputs(&decisions),
            dotenv: dotenv(&decisions),
        },
    )?;
    Ok(refusals(&decisions))
}

/// What a command that decides shows, in every format.
pub struct Rendering<'a> {
    pub title: &'a str,
    pub decisions: &'a [Decision],
    pub json: serde_json::Value,
    pub github: Vec<(&'static str, String)>,
    pub dotenv: Vec<(&'static str, String)>,
}

pub fn render(format: Format, r: &Rendering<'_>) -> Result<()> {
    match format {
        Format::Text => output::raw(&table(r.decisions)),
        Format::Json => output::json(&r.json),
        Format::Github => {
            output::raw(&table(r.decisions));
            for d in r.decisions.iter().filter(|d| d.is_refusal()) {
                output::line(&format!(
                    "::error title=tagguard refused {}:{}::{}",
                    d.image,
                    d.tag,
                    escape_annotation(&d.to_string())
                ));
            }
            output::github_outputs(&r.github)?;
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                output::append(&path, &markdown(r.title, r.decisions))
                    .wrap_err("could not write $GITHUB_STEP_SUMMARY")?;
            }
        }
        Format::Gitlab => output::dotenv(&r.dotenv),
    }
    Ok(())
}

/// Says every refusal on stderr; refused when there is any.
pub fn refusals(decisions: &[Decision]) -> Outcome {
    let refused: Vec<&Decision> = decisions.iter().filter(|d| d.is_refusal()).collect();
    for d in &refused {
        output::refusal(&d.to_string());
    }
    if refused.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Refused
    }
}

pub fn require_images(computed: &Computed, command: &str) -> Result<()> {
    if computed.images.is_empty() {
        return Err(miette!(
            "{command} needs the images to look up: name them under `images:` in the policy or pass --image"
        ));
    }
    Ok(())
}

pub fn parse_source(text: &str) -> Result<Source> {
    text.parse::<Source>().map_err(|e| miette!("{e}"))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}

/// Credentials and transport from the flags and the environment.
pub fn config(args: &RegistryArgs) -> Result<CheckConfig> {
    let explicit = match (&args.username, args.password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .into_diagnostic()
                .wrap_err("could not read the password from stdin")?;
            let password = Secret::new(password.trim_end_matches(['\n', '\r']));
            Some((user.clone(), password))
        }
        _ => None,
    };
    Ok(CheckConfig {
        credentials: CredentialConfig {
            explicit,
            env: std::env::vars().collect(),
        },
        transport: TransportConfig {
            insecure: args.connection.insecure_registry.clone(),
            ca_file: args.connection.ca_file.clone(),
            timeout: Duration::from_secs(args.connection.timeout.unwrap_or(60).max(1)),
            connect_timeout: Duration::from_secs(
                args.connection.connect_timeout.unwrap_or(10).max(1),
            ),
            retry: RetryPolicy {
                max_retries: args.connection.retries.unwrap_or(3),
                ..RetryPolicy::default()
            },
            ..TransportConfig::default()
        },
    })
}

fn short(d: &Option<tagguard::registry::Digest>) -> String {
    d.as_ref().map_or_else(
        || "-".to_owned(),
        |d| format!("{}:{}", d.algorithm(), &d.hex()[..12.min(d.hex().len())]),
    )
}

pub fn table(decisions: &[Decision]) -> String {
    let rows: Vec<[String; 4]> = decisions
        .iter()
        .map(|d| {
            [
                format!("{}:{}", d.image, d.tag),
                d.action.to_string(),
                short(&d.current),
                short(&d.desired),
            ]
        })
        .collect();
    let header = [
        "TAG".to_owned(),
        "ACTION".into(),
        "CURRENT".into(),
        "DESIRED".into(),
    ];
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

pub fn markdown(title: &str, decisions: &[Decision]) -> String {
    let mut out = format!(
        "### {title}\n\n| Tag | Action | Current | Desired |\n| --- | --- | --- | --- |\n",
    );
    for d in decisions {
        let action = if d.is_refusal() {
            "**refuse**".to_owned()
        } else {
            d.action.to_string()
        };
        let _ = writeln!(
            out,
            "| `{}:{}` | {action} | `{}` | `{}` |",
            d.image,
            d.tag,
            short(&d.current),
            short(&d.desired)
        );
    }
    out.push('\n');
    out
}

fn refs_with(decisions: &[Decision], action: Action) -> Vec<String> {
    decisions
        .iter()
        .filter(|d| d.action == action)
        .map(|d| format!("{}:{}", d.image, d.tag))
        .collect()
}

const ACTIONS: [(Action, &str); 5] = [
    (Action::Create, "create"),
    (Action::Unchanged, "unchanged"),
    (Action::Move, "move"),
    (Action::Refuse, "refuse"),
    (Action::Skip, "skip"),
];

pub fn github_outputs(decisions: &[Decision]) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&'static str, String)> = ACTIONS
        .iter()
        .map(|(a, name)| (*name, refs_with(decisions, *a).join("\n")))
        .collect();
    pairs.push((
        "refused",
        decisions.iter().any(Decision::is_refusal).to_string(),
    ));
    pairs.push(("decisions", json!({ "decisions": decisions }).to_string()));
    pairs
}

pub fn dotenv(decisions: &[Decision]) -> Vec<(&'static str, String)> {
    let names: BTreeMap<&str, &'static str> = [
        ("create", "TAGGUARD_CREATE"),
        ("unchanged", "TAGGUARD_UNCHANGED"),
        ("move", "TAGGUARD_MOVE"),
        ("refuse", "TAGGUARD_REFUSE"),
        ("skip", "TAGGUARD_SKIP"),
    ]
    .into();
    let mut pairs: Vec<(&'static str, String)> = ACTIONS
        .iter()
        .map(|(a, name)| (names[name], refs_with(decisions, *a).join(",")))
        .collect();
    pairs.push((
        "TAGGUARD_REFUSED",
        decisions.iter().any(Decision::is_refusal).to_string(),
    ));
    pairs
}

/// Workflow-command data: `%`, CR and LF must be escaped.
pub fn escape_annotation(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
