//! `tagguard prune`: plan (and with --apply carry out) the retirement of temporary tags; render
//! the plan and what was deleted in every format; the exit code from the report.

use std::fmt::Write as _;
use std::time::Duration;

use miette::{Result, WrapErr};
use tagguard::policy::Policy;
use tagguard::prune::{
    self, Forge, GitHubPackages, LivenessConfig, PruneConfig, PruneReport, Verdict,
};
use tagguard::report::Status;

use crate::cli::{Format, PruneArgs};
use crate::render::{annotation, azure_issue, columns, findings};
use crate::{output, setup};

/// How long `git ls-remote` and each forge request may take.
const LIVENESS_DEADLINE: Duration = Duration::from_secs(20);

pub fn run(args: &PruneArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let policy = Policy::load(args.policy.as_deref(), Some(&args.repo))?;
    let config = PruneConfig {
        registry: setup::registry_config(&args.registry)?,
        concurrency: usize::from(args.concurrency),
        liveness: LivenessConfig {
            repo: args.repo.clone(),
            remote: args.remote.clone(),
            deadline: LIVENESS_DEADLINE,
            forge: Forge::from_vars(|k| std::env::var(k).ok()),
        },
        now: args.now.unwrap_or_else(chrono::Utc::now),
        apply: args.apply,
        github: GitHubPackages::from_vars(|k| std::env::var(k).ok()),
    };
    let report = setup::runtime()?.block_on(prune::prune(&policy, &args.images, &config))?;
    render(args.format, &report)?;
    findings(&report.report.findings);
    output::note(&ending(&report));
    Ok(report.report.status())
}

fn render(format: Format, report: &PruneReport) -> Result<()> {
    match format {
        Format::Text => output::raw(&table(report)),
        Format::Json => output::json(&serde_json::to_value(report).expect("reports serialize")),
        Format::Github => {
            output::raw(&table(report));
            for f in &report.report.findings {
                output::line(&annotation(f));
            }
            output::github_outputs(&[
                ("status", report.report.status().name().to_owned()),
                ("delete", report.planned().join("\n")),
                ("deleted", deleted(report).join("\n")),
                ("not_deleted", report.not_deleted().join("\n")),
                (
                    "report",
                    serde_json::to_string(report).expect("reports serialize"),
                ),
            ])?;
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                output::append(&path, &markdown(report))
                    .wrap_err("could not write $GITHUB_STEP_SUMMARY")?;
            }
        }
        Format::Gitlab | Format::Env => output::dotenv(&dotenv(report)),
        Format::Azure => {
            output::raw(&table(report));
            for f in &report.report.findings {
                output::line(&azure_issue(f));
            }
            output::azure_outputs(&dotenv(report));
        }
    }
    Ok(())
}

/// The outcome as dotenv pairs (GitLab, env, Azure output variables).
fn dotenv(report: &PruneReport) -> [(&'static str, String); 4] {
    [
        ("TAGGUARD_STATUS", report.report.status().name().to_owned()),
        ("TAGGUARD_PRUNE_DELETE", report.planned().join(",")),
        ("TAGGUARD_PRUNE_DELETED", deleted(report).join(",")),
        ("TAGGUARD_PRUNE_NOT_DELETED", report.not_deleted().join(",")),
    ]
}

/// `image:tag` of every tag this run deleted.
fn deleted(report: &PruneReport) -> Vec<String> {
    report
        .deleted
        .iter()
        .filter_map(|r| Some(format!("{}:{}", r.image, r.tag.as_ref()?)))
        .collect()
}

fn count(report: &PruneReport, verdict: Verdict) -> usize {
    report
        .decisions
        .iter()
        .filter(|d| d.verdict == verdict)
        .count()
}

/// How the run ended, in a sentence: what was deleted is always said.
fn ending(report: &PruneReport) -> String {
    let plan = format!(
        "{} to delete, {} kept, {} protected",
        count(report, Verdict::Delete),
        count(report, Verdict::Keep),
        count(report, Verdict::Protect)
    );
    if !report.apply {
        return format!("plan: {plan}; nothing was deleted (--apply deletes)");
    }
    let tags = deleted(report).len();
    let manifests = report.deleted.len() - tags;
    let not = report.not_deleted();
    let mut out = format!("plan: {plan}; deleted {tags} tag(s) and {manifests} manifest(s)");
    if !not.is_empty() {
        let _ = write!(out, "; NOT deleted: {}", not.join(", "));
    }
    out
}

/// The decisions as an aligned table.
fn table(report: &PruneReport) -> String {
    let rows: Vec<[String; 4]> = report
        .decisions
        .iter()
        .map(|d| {
            [
                d.reference(),
                d.verdict.to_string(),
                format!("{}:{}", d.digest.algorithm(), &d.digest.hex()[..12]),
                d.reason.clone(),
            ]
        })
        .collect();
    columns(["TAG", "DECISION", "DIGEST", "REASON"], &rows)
}

fn markdown(report: &PruneReport) -> String {
    let mut out = format!(
        "### tagguard prune: {}\n\n| Tag | Decision | Reason |\n| --- | --- | --- |\n",
        report.report.status().name()
    );
    for d in &report.decisions {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            d.reference(),
            d.verdict,
            d.reason.replace('|', "\\|")
        );
    }
    let _ = writeln!(out, "\n{}\n", ending(report));
    for f in &report.report.findings {
        let _ = writeln!(
            out,
            "- **{}**: {} (`{}`)",
            f.severity.name(),
            f.message.replace('|', "\\|"),
            f.code
        );
    }
    out
}
