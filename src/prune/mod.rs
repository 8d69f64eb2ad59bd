//! `prune`: retire the temporary tags whose retention is over, and nothing else. For each image
//! repository: observe (every tag and its manifest, records, ages: [`observe`]) → decide per
//! tag (`delete`, `keep`, `protect`: [`decide`], pure) → what the tags that stay need
//! ([`reach`], pure) → apply the deletes, only with `--apply` ([`apply`]) → one [`PruneReport`].
//! Branch and pull-request liveness come from [`liveness`]; GHCR's deletes go through GitHub's
//! Packages API ([`ghcr`]).

pub mod apply;
pub mod decide;
pub mod decision;
pub mod error;
pub mod ghcr;
pub mod liveness;
pub mod observe;
pub mod placeholder;
pub mod reach;
pub mod record;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde::ser::SerializeStruct as _;

use crate::audit::rules::Rules;
use crate::finding::{Finding, Severity, code};
use crate::policy::{Alive, Policy};
use crate::registries::{Registries, RegistryConfig};
use crate::report::Report;
use tagguard_registry::{Digest, Reference, RegistryClient};

pub use decide::{Facts, Seen};
pub use decision::{TagDecision, Verdict};
pub use error::PruneError;
pub use ghcr::GitHubPackages;
pub use liveness::{Forge, LivenessConfig};

/// How to run a prune.
#[derive(Debug, Clone)]
pub struct PruneConfig {
    pub registry: RegistryConfig,
    /// Requests in flight at once per repository (at least 1).
    pub concurrency: usize,
    pub liveness: LivenessConfig,
    /// The time ages are measured at.
    pub now: DateTime<Utc>,
    /// Delete; without it the plan is only shown.
    pub apply: bool,
    /// GHCR's deletes, through GitHub's Packages API ([`ghcr`]).
    pub github: GitHubPackages,
}

/// A tag or manifest this run deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub image: String,
    /// The tag; null for a manifest deleted by digest.
    pub tag: Option<String>,
    pub digest: Digest,
}

/// What was read in one repository.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub image: String,
    pub tags: usize,
    pub records: usize,
}

/// Everything a prune has to say: the decision for every tag, what was deleted, and the
/// findings (the same [`Report`] findings as every command; its status is the exit code).
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub apply: bool,
    pub decisions: Vec<TagDecision>,
    /// Tags removed, then manifests deleted by digest.
    pub deleted: Vec<Removed>,
    pub images: Vec<ImageSummary>,
    pub report: Report,
}

impl PruneReport {
    /// `image:tag` of every tag planned for deletion.
    pub fn planned(&self) -> Vec<String> {
        self.decisions
            .iter()
            .filter(|d| d.verdict == Verdict::Delete)
            .map(TagDecision::reference)
            .collect()
    }

    /// With `--apply`: `image:tag` of every tag planned for deletion that is still there.
    pub fn not_deleted(&self) -> Vec<String> {
        if !self.apply {
            return Vec::new();
        }
        let gone: HashSet<String> = self
            .deleted
            .iter()
            .filter_map(|r| Some(format!("{}:{}", r.image, r.tag.as_ref()?)))
            .collect();
        self.planned()
            .into_iter()
            .filter(|r| !gone.contains(r))
            .collect()
    }
}

/// The JSON report: the same fields on every exit.
impl Serialize for PruneReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.report.status();
        let mut s = serializer.serialize_struct("PruneReport", 9)?;
        s.serialize_field("status", status.name())?;
        s.serialize_field("exit_code", &status.exit_code())?;
        s.serialize_field("apply", &self.apply)?;
        s.serialize_field("decisions", &self.decisions)?;
        s.serialize_field("delete", &self.planned())?;
        s.serialize_field("deleted", &self.deleted)?;
        s.serialize_field("not_deleted", &self.not_deleted())?;
        s.serialize_field("images", &self.images)?;
        s.serialize_field("findings", &self.report.findings)?;
        s.end()
    }
}

/// One repository, planned.
struct Planned {
    image: String,
    repository: String,
    client: Arc<RegistryClient>,
    tags: HashSet<String>,
    deletes: reach::Deletes,
    held: HashMap<Digest, record::Held>,
}

/// Plans the prune of `images` (the policy's own when empty) and, with `config.apply`, carries
/// it out.
pub async fn prune(
    policy: &Policy,
    images: &[String],
    config: &PruneConfig,
) -> Result<PruneReport, PruneError> {
    let images = if images.is_empty() {
        &policy.images
    } else {
        images
    };
    if images.is_empty() {
        return Err(PruneError::NoImages);
    }
    let references = images
        .iter()
        .map(|image| {
            image
                .parse::<Reference>()
                .map(|r| (image.clone(), r))
                .map_err(|source| PruneError::Image {
                    image: image.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let facts = facts(policy, config).await;
    let rules = Rules::new(policy);
    let registries = Registries::new(config.registry.clone());
    let concurrency = config.concurrency.max(1);
    let mut out = PruneReport {
        apply: config.apply,
        report: Report {
            dry_run: !config.apply,
            writes: config.apply,
            ..Report::default()
        },
        ..PruneReport::default()
    };
    let unknown = [facts.branches.as_ref().err(), facts.open_prs.as_ref().err()];
    for why in unknown
        .into_iter()
        .flatten()
        .filter(|why| why.as_str() != NOT_ASKED)
    {
        out.report.push(
            Finding::new(code::PRUNE_LIVENESS_UNKNOWN, Severity::Warning, why.clone())
                .help("the tags whose `retain.while` needs this are kept; see docs/prune.md for what the forge and the remote need"),
        );
    }
    let mut planned = Vec::new();
    for (image, reference) in references {
        let client = registries
            .client(&reference.registry)
            .map_err(PruneError::registry(&image))?;
        let name = reference.name();
        let seen = observe::observe(
            &client,
            &name,
            &reference.repository,
            policy,
            &rules,
            concurrency,
        )
        .await?;
        let decisions = decide::decide(&name, policy, &rules, &seen.seen, &facts);
        let deletes = reach::deletes(&decisions, &seen.links);
        for v in reach::violations(&decisions, &seen.links, &deletes) {
            out.report.push(
                Finding::new(code::PRUNE_PROTECTED, Severity::Refusal, format!("{name}: the plan would touch what must stay: {v}; nothing is deleted"))
                    .about(name.clone())
                    .help("this is a bug in tagguard's planner, which must never happen: please report it with the JSON output of `tagguard prune`"),
            );
        }
        out.images.push(ImageSummary {
            image: name.clone(),
            tags: seen.seen.len(),
            records: seen.records,
        });
        out.decisions.extend(decisions);
        planned.push(Planned {
            image: name,
            repository: reference.repository,
            client,
            tags: seen.seen.into_iter().map(|s| s.tag).collect(),
            deletes,
            held: seen.held,
        });
    }
    if config.apply && out.report.status() == crate::report::Status::Ok {
        for p in &planned {
            apply_one(p, config, &mut out).await;
            if policy.record {
                record_one(p, config, &mut out).await;
            }
        }
    }
    Ok(out)
}

async fn apply_one(p: &Planned, config: &PruneConfig, out: &mut PruneReport) {
    if p.deletes.tags.is_empty() {
        return;
    }
    let host = p.client.host();
    let target = apply::Target {
        client: &p.client,
        image: &p.image,
        repository: &p.repository,
        deletes: &p.deletes,
        planned: &p.tags,
        time: config.now,
        concurrency: config.concurrency.max(1),
    };
    let applied = if config.github.serves(host) {
        ghcr::apply(&target, &config.github, &config.registry.transport).await
    } else if apply::without_oci_delete(host) {
        out.report.push(apply::unsupported(
            host,
            &p.image,
            "it deletes through its own API only",
        ));
        return;
    } else {
        apply::apply(&target).await
    };
    let tags: HashMap<&str, &Digest> = applied.tags.iter().map(|(t, d)| (t.as_str(), d)).collect();
    for (tag, _) in &p.deletes.tags {
        if let Some(d) = tags.get(tag.as_str()) {
            out.deleted.push(Removed {
                image: p.image.clone(),
                tag: Some(tag.clone()),
                digest: (*d).clone(),
            });
        }
    }
    out.deleted.extend(applied.digests.iter().map(|d| Removed {
        image: p.image.clone(),
        tag: None,
        digest: d.clone(),
    }));
    out.report.findings.extend(applied.findings);
    let said: HashSet<String> = out
        .report
        .findings
        .iter()
        .filter_map(|f| f.subject.clone())
        .collect();
    for (tag, _) in &p.deletes.tags {
        let subject = format!("{}:{tag}", p.image);
        if !tags.contains_key(tag.as_str()) && !said.contains(&subject) {
            out.report.push(
                Finding::new(
                    code::PRUNE_NOT_DELETED,
                    Severity::Error,
                    format!("{subject} was not deleted: an earlier step failed"),
                )
                .about(subject)
                .help("run `tagguard prune --apply` again once the failure above is dealt with"),
            );
        }
    }
}

/// Records what this run deleted in one repository, one record per image the tags held. The
/// records of different images are independent (each its own fallback tag), so they are written
/// `concurrency` at a time: one after the other, 1,000 deleted images took 5 round trips each.
async fn record_one(p: &Planned, config: &PruneConfig, out: &mut PruneReport) {
    let mut by_digest: Vec<(&Digest, Vec<String>)> = Vec::new();
    for r in out.deleted.iter().filter(|r| r.image == p.image) {
        let Some(tag) = &r.tag else { continue };
        match by_digest.iter_mut().find(|(d, _)| *d == &r.digest) {
            Some((_, tags)) => tags.push(tag.clone()),
            None => by_digest.push((&r.digest, vec![tag.clone()])),
        }
    }
    if by_digest.is_empty() {
        return;
    }
    // The records' empty config blob, once before they go at once: concurrent uploads of the
    // same blob leave some records' PUTs before any upload is linked (MANIFEST_BLOB_UNKNOWN).
    crate::audit::record::prepare(&p.client, &p.repository, &[]).await;
    let writes = by_digest.into_iter().filter_map(|(digest, tags)| {
        let held = p.held.get(digest)?;
        Some(async move {
            let r = record::write(&p.client, &p.repository, held, &tags, config.now).await;
            r.err().map(|why| (digest, tags, why))
        })
    });
    let failures: Vec<Finding> = futures_util::stream::iter(writes)
        .buffer_unordered(config.concurrency.max(1))
        .filter_map(|failed| async move { failed })
        .map(|(digest, tags, why)| {
            Finding::new(
                code::PRUNE_RECORD_FAILED,
                Severity::Warning,
                format!(
                    "could not record that prune deleted {} (at {digest}): {why}",
                    tags.join(", ")
                ),
            )
            .about(p.image.clone())
            .help("the deletes stand; only their record beside the image is missing")
        })
        .collect()
        .await;
    out.report.findings.extend(failures);
}

/// Why a fact no rule needs is unknown.
const NOT_ASKED: &str = "not asked: no rule needs it";

/// The liveness facts the policy's rules need, each asked only when one needs it.
async fn facts(policy: &Policy, config: &PruneConfig) -> Facts {
    let wants = |a: Alive| {
        policy
            .rules
            .iter()
            .any(|r| r.retain.as_ref().and_then(|r| r.while_alive) == Some(a))
    };
    let branches = if wants(Alive::BranchExists) {
        liveness::branches(&config.liveness)
    } else {
        Err(NOT_ASKED.to_owned())
    };
    let open_prs = if wants(Alive::PrOpen) {
        liveness::open_prs(&config.liveness).await
    } else {
        Err(NOT_ASKED.to_owned())
    };
    Facts {
        branches,
        open_prs,
        now: config.now,
    }
}
