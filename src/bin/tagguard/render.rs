//! Renders a run's [`Report`] in every output format the same way, on success, refusal and
//! failure: the decisions, what was written, and every finding.

use std::fmt::Write as _;

use miette::{Result, WrapErr};
use serde_json::json;
use tagguard::finding::{Finding, Severity};
use tagguard::plan::{Action, Decision};
use tagguard::report::{Report, Status};
use tagguard::tags::Computed;
use tagguard_registry::Digest;

use crate::cli::Format;
use crate::output;

/// Renders `report` — of `check`, `push` or `audit` — in `format` on stdout (and the GitHub
/// files), then says every finding and how the run ended on stderr. For a build (`computed`:
/// `check` and `push`) the CI formats also carry the outputs of `tags` (tags, version, labels)
/// for the same build, so a CI step needs one run of tagguard, one build time; without one
/// (`audit`) their `tags` are the `image:tag` of the findings and `json` the report.
pub fn report(
    format: Format,
    title: &str,
    computed: Option<&Computed>,
    report: &Report,
) -> Result<()> {
    match format {
        Format::Text => output::raw(&text(report)),
        Format::Json => output::json(&serde_json::to_value(report).expect("reports serialize")),
        Format::Github => {
            output::raw(&text(report));
            for f in &report.findings {
                output::line(&annotation(f));
            }
            let mut pairs = match computed {
                Some(computed) => output::tags_github(computed),
                None => vec![
                    ("tags", subjects(report).join("\n")),
                    (
                        "json",
                        serde_json::to_string(report).expect("reports serialize"),
                    ),
                ],
            };
            pairs.extend(github_outputs(report));
            output::github_outputs(&pairs)?;
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                output::append(&path, &markdown(title, report))
                    .wrap_err("could not write $GITHUB_STEP_SUMMARY")?;
            }
        }
        Format::Gitlab | Format::Env => output::dotenv(&dotenv_with_tags(computed, report)),
        Format::Azure => {
            output::raw(&text(report));
            for f in &report.findings {
                output::line(&azure_issue(f));
            }
            output::azure_outputs(&dotenv_with_tags(computed, report));
        }
    }
    findings(&report.findings);
    for template in report.audit.iter().flat_map(|a| &a.unaudited_templates) {
        output::note(&format!(
            "note: tags of template {template:?} were not audited: its filters change the value, so its tags cannot be recognised"
        ));
    }
    if report.writes {
        ending(report);
    }
    Ok(())
}

/// Every finding on stderr: refusals and warnings as one line with their help, errors as
/// diagnostics with their code.
pub fn findings(findings: &[Finding]) {
    for f in findings {
        match f.severity {
            Severity::Error => output::diagnostic(f),
            Severity::Refusal => output::refusal(&f.message),
            Severity::Warning => output::note(&format!("warning: {}", f.message)),
        }
        if f.severity != Severity::Error
            && let Some(help) = &f.help
        {
            output::note(&format!("  help: {help}"));
        }
    }
}

/// How a push ended, in a sentence: what was written is always said.
fn ending(report: &Report) {
    let written: Vec<String> = report
        .written
        .iter()
        .map(|w| format!("  {} -> {}", w.reference(), w.digest))
        .collect();
    match report.status() {
        Status::Ok if report.dry_run => output::note("dry run: nothing was written"),
        Status::Ok if !written.is_empty() => {
            let verified = report.written.iter().filter(|w| w.verified).count();
            let mut line = format!("pushed and verified {verified} tag(s)");
            if verified < written.len() {
                // Only a floating tag another release moved forward since ends a clean push so.
                line.push_str(&format!(
                    "; {} more acknowledged, since moved forward by a newer release",
                    written.len() - verified
                ));
            }
            output::note(&line);
        }
        Status::Ok => {}
        Status::Refused if written.is_empty() => output::refusal("nothing was written"),
        Status::Failed if written.is_empty() => output::note("nothing was written"),
        status => {
            let what = if status == Status::Refused {
                "refusal"
            } else {
                "failure"
            };
            output::note(&format!(
                "already written before the {what}:\n{}",
                written.join("\n")
            ));
        }
    }
}

/// The `image:tag` (or git tag) of every finding, each once.
fn subjects(report: &Report) -> Vec<&str> {
    let mut out: Vec<&str> = report
        .findings
        .iter()
        .filter_map(|f| f.subject.as_deref())
        .collect();
    out.dedup();
    out
}

/// The text on stdout: the decisions as a table; for an audit, what it read and how many
/// findings (each finding is on stderr, with its help).
fn text(report: &Report) -> String {
    let mut out = table(&report.decisions);
    if let Some(audit) = &report.audit {
        for i in &audit.images {
            let _ = writeln!(
                out,
                "{}: {} tags, {} audited, {} recorded tag writes",
                i.image, i.tags, i.audited, i.records
            );
        }
        let _ = writeln!(
            out,
            "{}",
            match report.findings.len() {
                0 => "no findings".to_owned(),
                1 => "1 finding".to_owned(),
                n => format!("{n} findings"),
            }
        );
    }
    out
}

fn short(d: &Option<Digest>) -> String {
    d.as_ref().map_or_else(
        || "-".to_owned(),
        |d| format!("{}:{}", d.algorithm(), &d.hex()[..12.min(d.hex().len())]),
    )
}

/// The decisions as an aligned table; nothing at all when there are none.
pub fn table(decisions: &[Decision]) -> String {
    if decisions.is_empty() {
        return String::new();
    }
    let rows: Vec<[String; 4]> = decisions
        .iter()
        .map(|d| {
            [
                d.reference(),
                d.action.to_string(),
                short(&d.current),
                short(&d.desired),
            ]
        })
        .collect();
    columns(["TAG", "ACTION", "CURRENT", "DESIRED"], &rows)
}

/// `header` and `rows` as aligned columns, two spaces apart (the last column unpadded): the
/// text tables of every command.
pub fn columns(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let header = header.map(str::to_owned);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
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

/// The step summary: the decisions, what was written, and every finding with its reason.
pub fn markdown(title: &str, report: &Report) -> String {
    let status = report.status();
    let mut out = format!("### {title}: {}\n\n", status.name());
    if !report.decisions.is_empty() {
        out.push_str("| Tag | Action | Current | Desired |\n| --- | --- | --- | --- |\n");
        for d in &report.decisions {
            let action = if d.is_refusal() {
                "**refuse**".to_owned()
            } else {
                d.action.to_string()
            };
            let _ = writeln!(
                out,
                "| `{}` | {action} | `{}` | `{}` |",
                d.reference(),
                short(&d.current),
                short(&d.desired)
            );
        }
        out.push('\n');
    }
    if report.writes && !report.dry_run {
        out.push_str(&format!("**Written** ({}):", report.written.len()));
        for w in &report.written {
            let _ = write!(out, " `{}`", w.reference());
        }
        out.push_str("\n\n");
    }
    if let Some(audit) = &report.audit {
        if report.findings.is_empty() {
            out.push_str("No findings: every audited tag keeps the policy's promises.\n\n");
        }
        for i in &audit.images {
            let _ = writeln!(
                out,
                "- `{}`: {} tags, {} audited, {} recorded tag writes",
                i.image, i.tags, i.audited, i.records
            );
        }
        out.push('\n');
    }
    for f in &report.findings {
        let subject = f
            .subject
            .as_deref()
            .map(|s| format!(" `{s}`"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{}**{subject}: {} (`{}`)",
            f.severity.name(),
            md_escape(&f.message),
            f.code
        );
        if let Some(help) = &f.help {
            let _ = writeln!(out, "  - {}", md_escape(help));
        }
    }
    out.push('\n');
    out
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A GitHub workflow command for a finding.
pub fn annotation(f: &Finding) -> String {
    let (level, title) = match f.severity {
        Severity::Refusal => ("error", "tagguard refused"),
        Severity::Error => ("error", "tagguard failed"),
        Severity::Warning => ("warning", "tagguard"),
    };
    let subject = f
        .subject
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    format!(
        "::{level} title={title}{subject}::{}",
        escape_annotation(&f.message)
    )
}

/// Workflow-command data: `%`, CR and LF must be escaped.
pub fn escape_annotation(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn refs_with(decisions: &[Decision], action: Action) -> Vec<String> {
    decisions
        .iter()
        .filter(|d| d.action == action)
        .map(Decision::reference)
        .collect()
}

/// Every output of a report, in one list for both CIs: one list of `image:tag` per action,
/// how the run ended, what was written and what went wrong. Lists are joined with `sep`
/// (GitHub: a line each; GitLab's dotenv takes one line: commas).
fn outputs(report: &Report, sep: &str) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&'static str, String)> = Action::ALL
        .iter()
        .map(|a| (a.name(), refs_with(&report.decisions, *a).join(sep)))
        .collect();
    let written: Vec<String> = report.written.iter().map(|w| w.reference()).collect();
    pairs.extend([
        ("refused", (!report.refused().is_empty()).to_string()),
        ("status", report.status().name().to_owned()),
        ("clean", report.findings.is_empty().to_string()),
        ("findings", report.findings.len().to_string()),
        ("written", written.join(sep)),
        ("verified", report.verified().to_string()),
        ("unsure", report.unsure().join(sep)),
        ("races", report.races().join(sep)),
        ("failed", report.failed().join(sep)),
        ("not_written", report.not_written().join(sep)),
    ]);
    pairs
}

/// The report as GitHub outputs: [`outputs`] by name, and the decisions and the whole report
/// as JSON.
pub fn github_outputs(report: &Report) -> Vec<(&'static str, String)> {
    let mut pairs = outputs(report, "\n");
    pairs.extend([
        (
            "decisions",
            json!({ "decisions": report.decisions }).to_string(),
        ),
        (
            "report",
            serde_json::to_string(report).expect("reports serialize"),
        ),
    ]);
    pairs
}

/// The tags' dotenv pairs and the report's: what the CI formats hand to the next step. Without
/// a build (`audit`) the tags are the `image:tag` of the findings.
fn dotenv_with_tags(computed: Option<&Computed>, report: &Report) -> Vec<(String, String)> {
    let tags = match computed {
        Some(computed) => output::tags_dotenv(computed),
        None => vec![("TAGGUARD_TAGS", subjects(report).join(","))],
    };
    let mut pairs: Vec<(String, String)> =
        tags.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    pairs.extend(dotenv(report));
    pairs
}

/// An Azure Pipelines logging command that shows a finding as a warning or an error.
pub fn azure_issue(f: &Finding) -> String {
    let kind = match f.severity {
        Severity::Warning => "warning",
        Severity::Refusal | Severity::Error => "error",
    };
    let subject = f
        .subject
        .as_deref()
        .map(|s| format!("{s}: "))
        .unwrap_or_default();
    format!(
        "##vso[task.logissue type={kind}]{}",
        output::azure_escape(&format!("tagguard: {subject}{}", f.message))
    )
}

/// The report as dotenv pairs for GitLab: [`outputs`] as `TAGGUARD_<NAME>`.
pub fn dotenv(report: &Report) -> Vec<(String, String)> {
    outputs(report, ",")
        .into_iter()
        .map(|(k, v)| (format!("TAGGUARD_{}", k.to_ascii_uppercase()), v))
        .collect()
}

/// The pre-push hook's findings on stderr, where git shows a hook's output.
pub fn hook(report: &Report) {
    for f in &report.findings {
        let word = match f.severity {
            Severity::Refusal | Severity::Error => "refused",
            Severity::Warning => "warning",
        };
        output::note(&format!("tagguard: {word}: {}", f.message));
        if let Some(help) = &f.help {
            output::note(&format!("  hint: {help}"));
        }
    }
    if report.status() != Status::Ok {
        output::note(&format!(
            "tagguard: push refused (exit {}): nothing was pushed",
            report.status().exit_code()
        ));
    }
}
