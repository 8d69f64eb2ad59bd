//! `audit`: prove, after the fact, that the registry kept the policy's promises. Reads every tag
//! of each image repository and reports where the registry no longer matches the policy: floating
//! tags behind their newest release, version and commit tags whose image says otherwise, and
//! immutable tags that moved since tagguard wrote them (from the [`record`]s pushes leave).
//!
//! Observe ([`inventory`], the only part that talks to the registry) → decide ([`finding`],
//! pure) → the binary renders.

pub mod error;
pub mod finding;
mod inventory;
pub mod pattern;
pub mod record;
pub mod rules;

use std::collections::HashMap;

use serde::Serialize;

use crate::policy::Policy;
use crate::registry::{CredentialConfig, Reference, RegistryClient, TransportConfig};

pub use error::AuditError;
pub use finding::{Finding, Kind};
pub use record::{
    RecordFailure, RecordMeta, RecordReport, RecordWritten, Subject, Target, write_records,
    write_records_for,
};
pub use rules::Rules;

/// Requests in flight at once per repository: the registry client's own cap
/// ([`crate::registry::limiter::CAP`]'s 128, which a 429 or a 503 halves). Measured
/// (scripts/bench/audit.sh, 10,000 tags 40 ms away, 2 cores, two sessions): 64 took 9.6–10.0 s,
/// 128 took 8.4–9.5 s.
/// 64 requests 40 ms away cap the rate at 1,600 a second, about what distribution serves on 2
/// cores; at 128 the registry alone bounds it.
pub const DEFAULT_CONCURRENCY: usize = 128;

/// How to reach the registries.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub credentials: CredentialConfig,
    pub transport: TransportConfig,
    /// Requests in flight at once per repository (at least 1).
    pub concurrency: usize,
}

/// What was audited in one repository.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub image: String,
    /// Tags in the repository.
    pub tags: usize,
    /// Tags the policy has something to say about (the others are not audited).
    pub audited: usize,
    /// Records of tagguard's writes found.
    pub records: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub findings: Vec<Finding>,
    pub images: Vec<ImageSummary>,
    /// Templates of the policy that cannot be recognised in tags (their filters change the
    /// value), so their tags were not audited.
    pub unaudited_templates: Vec<String>,
}

impl AuditReport {
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Audits `images` (the policy's own when empty) against `policy`.
pub async fn audit(
    policy: &Policy,
    images: &[String],
    config: &AuditConfig,
) -> Result<AuditReport, AuditError> {
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
    let rules = Rules::new(policy);
    let mut clients: HashMap<String, RegistryClient> = HashMap::new();
    let mut report = AuditReport {
        findings: Vec::new(),
        images: Vec::new(),
        unaudited_templates: rules.unrecognised.clone(),
    };
    for (image, reference) in references {
        if !clients.contains_key(&reference.registry) {
            let client =
                RegistryClient::new(&reference.registry, &config.credentials, &config.transport)
                    .map_err(AuditError::registry(image))?;
            clients.insert(reference.registry.clone(), client);
        }
        let name = reference.name();
        let (observed, counts) = inventory::observe(
            &clients[&reference.registry],
            &name,
            &reference.repository,
            &rules,
            config.concurrency.max(1),
        )
        .await?;
        report.findings.extend(finding::findings(&name, &observed));
        report.images.push(ImageSummary {
            image: name,
            tags: counts.tags,
            audited: counts.audited,
            records: counts.records,
        });
    }
    Ok(report)
}
