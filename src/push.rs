//! `push`: plan (with the source's manifest fetched), apply, report. Nothing is written when
//! anything is refused; what is written goes in phases and is read back (see [`crate::apply`]).

use crate::apply::{self, ApplyOptions};
use crate::plan::{self, Decision};
use crate::registries::Registries;
use crate::report::{Finding, Report, Status, code};
use crate::source::{self, SourceSpec};
use crate::tags::Computed;

/// The whole `push` run, as one report, whatever happened.
pub async fn run(
    computed: &Computed,
    source: &SourceSpec,
    registries: &Registries,
    allow_dirty: bool,
    options: &ApplyOptions<'_>,
) -> Report {
    let mut report = Report {
        dry_run: options.dry_run,
        writes: true,
        findings: plan::precheck(computed, allow_dirty),
        ..Report::default()
    };
    if report.status() != Status::Ok {
        return report;
    }
    let load = source::load(source, registries);
    let plan = match plan::plan(computed, Some(load), registries).await {
        Ok(plan) => plan,
        Err(e) => {
            report.push(Finding::from_error(&e, code::CHECK_FAILED));
            return report;
        }
    };
    report
        .findings
        .extend(plan.decisions.iter().filter_map(Decision::finding));
    let applied = apply::apply(plan, registries, options).await;
    report.decisions = applied.decisions;
    report.written = applied.written;
    report.findings.extend(applied.findings);
    report
}
