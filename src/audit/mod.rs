//! `audit`: prove, after the fact, that the registry kept the policy's promises. Reads every tag
//! of each image repository and reports where the registry no longer matches the policy: floating
//! tags behind their newest release, version and commit tags whose image says otherwise, and
//! immutable tags that moved since tagguard wrote them (from the [`record`]s pushes leave).
//!
//! Observe ([`inventory`], the only part that talks to the registry) → decide ([`finding`],
//! pure) → the binary renders.

pub mod error;
mod finding;
mod inventory;
pub mod pattern;
pub mod record;
pub mod rules;

use serde::Serialize;

use crate::finding::{Finding, code};
use crate::policy::Policy;
use crate::registries::Registries;
use crate::report::Report;
use tagguard_registry::Reference;

pub use error::AuditError;
pub use record::{
    RecordFailure, RecordMeta, RecordReport, RecordWritten, Subject, Target, write_records,
    write_records_for,
};
pub use rules::Rules;

/// Requests in flight at once per repository: the registry client's own cap (the default of
/// [`tagguard_registry::TransportConfig::concurrency`], 128, which a 429 or a 503 halves). Measured
/// (scripts/bench/audit.sh, 10,000 tags 40 ms away, 2 cores, two sessions): 64 took 9.6–10.0 s,
/// 128 took 8.4–9.5 s.
/// 64 requests 40 ms away cap the rate at 1,600 a second, about what distribution serves on 2
/// cores; at 128 the registry alone bounds it.
pub const DEFAULT_CONCURRENCY: usize = 128;

/// What was audited in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    pub image: String,
    /// Tags in the repository.
    pub tags: usize,
    /// Tags the policy has something to say about (the others are not audited).
    pub audited: usize,
    /// Tag writes that tagguard's records cover (a record names every tag its push wrote
    /// or found holding the image, so one push of five tags counts five).
    pub records: usize,
}

/// What an audit read, beside its findings (which are the report's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditSummary {
    pub images: Vec<ImageSummary>,
    /// Templates of the policy that cannot be recognised in tags (their filters change the
    /// value), so their tags were not audited.
    pub unaudited_templates: Vec<String>,
}

/// Audits `images` (the policy's own when empty) against `policy`, with `concurrency` requests
/// in flight per repository. One [`Report`], whatever happened: a broken promise is a finding
/// (`tagguard::audit::…`, a refusal: exit 3), an audit that could not finish an error finding
/// (exit 1).
pub async fn audit(
    policy: &Policy,
    images: &[String],
    registries: &Registries,
    concurrency: usize,
) -> Report {
    let rules = Rules::new(policy);
    let mut report = Report {
        audit: Some(AuditSummary {
            images: Vec::new(),
            unaudited_templates: rules.unrecognised.clone(),
        }),
        ..Report::default()
    };
    if let Err(e) = audit_into(&mut report, &rules, policy, images, registries, concurrency).await {
        report.push(Finding::from_error(&e, code::AUDIT_FAILED));
    }
    report
}

async fn audit_into(
    report: &mut Report,
    rules: &Rules,
    policy: &Policy,
    images: &[String],
    registries: &Registries,
    concurrency: usize,
) -> Result<(), AuditError> {
    let images = if images.is_empty() {
        &policy.images
    } else {
        images
    };
    if images.is_empty() {
        return Err(AuditError::NoImages);
    }
    let references = images
        .iter()
        .map(|image| {
            image
                .parse::<Reference>()
                .map(|r| (image, r))
                .map_err(|source| AuditError::Image {
                    image: image.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (image, reference) in references {
        let client = registries
            .client(&reference.registry)
            .map_err(AuditError::registry(image))?;
        let name = reference.name();
        let (observed, counts) = inventory::observe(
            &client,
            &name,
            &reference.repository,
            rules,
            concurrency.max(1),
        )
        .await?;
        report.findings.extend(finding::findings(&name, &observed));
        if let Some(summary) = &mut report.audit {
            summary.images.push(ImageSummary {
                image: name,
                tags: counts.tags,
                audited: counts.audited,
                records: counts.records,
            });
        }
    }
    Ok(())
}
