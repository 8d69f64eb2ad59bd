//! `tagguard audit`: read the repositories, render the findings; exit 3 when there is any.

use std::fmt::Write as _;

use miette::{Result, WrapErr};
use serde_json::json;
use tagguard::audit::{self, AuditConfig, AuditReport, Finding};
use tagguard::policy::Policy;

use crate::cli::{AuditArgs, Format};
use crate::exit::Outcome;
use crate::render::escape_annotation;
use crate::{output, setup};

pub fn run(args: &AuditArgs) -> Result<Outcome> {
    setup::preflight(args.format)?;
    let policy = Policy::load(args.policy.as_deref(), Some(&args.repo))?;
    let registry = setup::registry_config(&args.registry)?;
    let config = AuditConfig {
        credentials: registry.credentials,
        transport: registry.transport,
        concurrency: usize::from(args.concurrency),
    };
    let report = setup::runtime()?.block_on(audit::audit(&policy, &args.images, &config))?;
    render(args.format, &report)?;
    for template in &report.unaudited_templates {
        output::note(&format!(
            "note: tags of template {template:?} were not audited: its filters change the value, so its tags cannot be recognised"
        ));
    }
    Ok(if report.clean() {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

fn render(format: Format, report: &AuditReport) -> Result<()> {
    match format {
        Format::Text => output::raw(&text(report)),
        Format::Json => output::json(&json!({
            "findings": report.findings,
            "images": report.images,
            "unaudited_templates": report.unaudited_templates,
            "clean": report.clean(),
        })),
        Format::Github => {
            output::raw(&text(report));
            for f in &report.findings {
                output::line(&format!(
                    "::error title=tagguard audit: {}:{} {}::{}",
                    f.image,
                    f.tag,
                    f.kind.name(),
                    escape_annotation(&f.help)
                ));
            }
            output::github_outputs(&[
                ("clean", report.clean().to_string()),
                ("findings", report.findings.len().to_string()),
                ("tags", refs(&report.findings).join("\n")),
                ("json", json!({ "findings": report.findings }).to_string()),
            ])?;
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                output::append(&path, &markdown(report))
                    .wrap_err("could not write $GITHUB_STEP_SUMMARY")?;
            }
        }
        Format::Gitlab | Format::Env => output::dotenv(&dotenv(report)),
        Format::Azure => {
            output::raw(&text(report));
            output::azure_outputs(&dotenv(report));
        }
    }
    Ok(())
}

/// The audit's outcome as dotenv pairs (GitLab, env, Azure output variables).
fn dotenv(report: &AuditReport) -> [(&'static str, String); 3] {
    [
        ("TAGGUARD_AUDIT_CLEAN", report.clean().to_string()),
        ("TAGGUARD_AUDIT_FINDINGS", report.findings.len().to_string()),
        ("TAGGUARD_AUDIT_TAGS", refs(&report.findings).join(",")),
    ]
}

/// `image:tag` of every finding, each once.
fn refs(findings: &[Finding]) -> Vec<String> {
    let mut refs: Vec<String> = findings
        .iter()
        .map(|f| format!("{}:{}", f.image, f.tag))
        .collect();
    refs.dedup();
    refs
}

fn text(report: &AuditReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{}:{}  {}\n  expected: {}\n  found:    {}\n  help: {}",
            f.image,
            f.tag,
            f.kind.name(),
            f.expected,
            f.found,
            f.help
        );
    }
    for i in &report.images {
        let _ = writeln!(
            out,
            "{}: {} tags, {} audited, {} records",
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
    out
}

fn markdown(report: &AuditReport) -> String {
    let mut out = String::from("### tagguard audit\n\n");
    if report.clean() {
        out.push_str("No findings: every audited tag keeps the policy's promises.\n\n");
    } else {
        out.push_str("| Tag | Finding | Expected | Found |\n| --- | --- | --- | --- |\n");
        for f in &report.findings {
            let _ = writeln!(
                out,
                "| `{}:{}` | **{}** | `{}` | `{}` |",
                f.image,
                f.tag,
                f.kind.name(),
                f.expected,
                f.found
            );
        }
        out.push('\n');
    }
    for i in &report.images {
        let _ = writeln!(
            out,
            "- `{}`: {} tags, {} audited, {} records",
            i.image, i.tags, i.audited, i.records
        );
    }
    out.push('\n');
    out
}
