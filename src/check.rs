//! `check`: the plan stage on its own. Computed tags in, a [`Report`] of decisions out; nothing
//! is written.

use crate::finding::{Finding, code};
use crate::plan::{self, Decision, PlanError};
use crate::registries::Registries;
use crate::report::{Report, Status};
use crate::source::{self, SourceSpec};
use crate::tags::Computed;

pub use crate::registries::RegistryConfig as CheckConfig;

/// Looks up every `image × tag` of `computed` and returns one [`Decision`] each, in image-major
/// order.
pub async fn check(
    computed: &Computed,
    source: Option<&SourceSpec>,
    config: &CheckConfig,
) -> Result<Vec<Decision>, PlanError> {
    let registries = Registries::new(config.clone());
    let identify = source.map(|s| source::identify(s, &registries));
    Ok(plan::plan(computed, identify, &registries).await?.decisions)
}

/// The whole `check` run: the dirty-tree check, the plan, and its findings, as one report.
pub async fn run(
    computed: &Computed,
    source: Option<&SourceSpec>,
    registries: &Registries,
    allow_dirty: bool,
) -> Report {
    let mut report = Report {
        findings: plan::precheck(computed, allow_dirty),
        ..Report::default()
    };
    if report.status() != Status::Ok {
        return report;
    }
    let identify = source.map(|s| source::identify(s, registries));
    match plan::plan(computed, identify, registries).await {
        Ok(plan) => {
            report
                .findings
                .extend(plan.decisions.iter().filter_map(Decision::finding));
            report.decisions = plan.decisions;
        }
        Err(e) => report.push(Finding::from_error(&e, code::CHECK_FAILED)),
    }
    report
}
