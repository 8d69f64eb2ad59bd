//! The apply stage: carry out a [`Plan`]'s writes, and prove them.
//!
//! Content first (blobs and child manifests into every target repository), then the tags in
//! phases: immutable tags of every image, then mutable tags, then floating tags (`latest`, `1`,
//! `1.4`). Each tag is looked up again right before its write, and every write of a phase is
//! read back before the next phase starts, so a refusal, a failure or a race stops the run
//! before anything that depends on it moves. See docs/push-protocol.md.

mod forward;
mod phases;
mod tag_write;
mod transfer;
mod verify;

use std::time::Duration;

use futures_util::StreamExt as _;
use semver::Version;

use crate::finding::{Finding, Severity, code};
use crate::plan::{Decision, Plan};
use crate::registries::Registries;
use crate::report::Written;
use crate::source::SourceImage;
use tagguard_registry::Digest;

pub use phases::{WritesDone, Wrote};
pub use transfer::TransferError;

use tag_write::Content;
use transfer::{Origin, Target};

pub struct ApplyOptions<'a> {
    /// Decide and report, but send no write request.
    pub dry_run: bool,
    /// The most one PATCH of a copied blob carries (`--chunk-size`); memory does not grow with
    /// it.
    pub chunk_size: usize,
    /// How long a write of an immutable tag must stay unchallenged before it counts (zero: off).
    pub settle: Duration,
    /// Told about long transfers and written tags.
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// Progress of a long transfer, for the binary to render.
#[derive(Debug, Clone)]
pub enum Progress {
    Blob {
        repository: String,
        digest: Digest,
        size: u64,
        done: u64,
    },
    /// A tag was written (`image:tag`).
    Tagged { reference: String, digest: Digest },
}

/// What applying did: the decisions as they stand after any re-decision, what was written, and
/// the findings of the writes.
#[derive(Debug, Default)]
pub struct Applied {
    pub decisions: Vec<Decision>,
    pub written: Vec<Written>,
    pub findings: Vec<Finding>,
    /// The manifests the tags were written with, as descriptors need them: digest, media type
    /// and size (none for a Docker engine push, whose manifest the engine made).
    pub manifests: Vec<(Digest, String, u64)>,
}

/// Writes what `plan` allows, unless anything is refused or this is a dry run. `version` is
/// the release being pushed, which floating tags are decided by. `done` is told what was
/// written (and which tags were found holding the image) as soon as no more writes will be
/// sent (before the last read-back); it is dropped untold on a refusal or a dry run.
pub async fn apply(
    plan: Plan,
    version: Option<&Version>,
    registries: &Registries,
    options: &ApplyOptions<'_>,
    done: Option<WritesDone>,
) -> Applied {
    let mut applied = Applied {
        decisions: plan.decisions,
        ..Applied::default()
    };
    let writes: Vec<usize> = (0..applied.decisions.len())
        .filter(|i| applied.decisions[*i].action.writes())
        .collect();
    let refused = applied.decisions.iter().any(Decision::is_refusal);
    if refused || options.dry_run {
        return applied;
    }
    // Whatever happens next, the tags found holding this image are recorded.
    let tell = |applied: &Applied, done: Option<WritesDone>| {
        if let Some(tx) = done {
            let _ = tx.send(Wrote::of(applied));
        }
    };
    if writes.is_empty() {
        tell(&applied, done);
        return applied;
    }
    let Some(source) = &plan.source else {
        applied.findings.push(Finding::new(
            code::PUSH_FAILED,
            Severity::Error,
            "push needs a source image (--source)",
        ));
        return applied;
    };
    let (content, copied) = match prepare(source, &plan.targets, &writes, registries, options).await
    {
        Ok(prepared) => prepared,
        Err(e) => {
            applied.findings.push(
                Finding::new(
                    code::PUSH_FAILED,
                    Severity::Error,
                    format!("copying the image failed, so no tag was written: {e}"),
                )
                .help("run the push again; content already copied is not sent twice"),
            );
            phases::not_written(&mut applied, &writes);
            tell(&applied, done);
            return applied;
        }
    };
    let refs = plan
        .targets
        .iter()
        .flat_map(|t| &t.tags)
        .collect::<Vec<_>>();
    // With no content to copy, nothing passed between the plan's lookups and the first
    // phase's writes: those lookups are the last ones (their time counts for --settle), and
    // looking every tag up again would only add a round trip. After a copy (which can take
    // minutes) or a Docker engine push, every tag is looked up again right before its write.
    let known = (!copied && matches!(content, Content::Manifest { .. }))
        .then_some(plan.looked)
        .flatten();
    if let Content::Manifest { bytes, media_type } = &content {
        let size = bytes.len() as u64;
        applied
            .manifests
            .push((Digest::sha256_of(bytes), media_type.clone(), size));
    }
    applied.manifests.extend(
        plan.adopted
            .iter()
            .map(|m| (m.digest.clone(), m.media_type.clone(), m.bytes.len() as u64)),
    );
    let writer = tag_write::Writer {
        registries,
        content,
        adopted: &plan.adopted,
        retry: registries.retry_policy(),
        settle: options.settle,
        version,
        docker_started: std::sync::OnceLock::new(),
        progress: options.progress,
    };
    phases::run(&writer, &refs, &writes, known, &mut applied, done).await;
    applied
}

/// Makes the content present in every target repository that gets a tag; returns what the tags
/// will be written with, and whether any repository needed content.
async fn prepare<'a>(
    source: &'a SourceImage,
    targets: &[crate::plan::Target],
    writes: &[usize],
    registries: &Registries,
    options: &ApplyOptions<'_>,
) -> Result<(Content<'a>, bool), TransferError> {
    let client;
    let (origin, known, digest, hint) = match source {
        SourceImage::Docker { image, .. } => return Ok((Content::Docker { image }, true)),
        SourceImage::Registry {
            reference,
            digest,
            manifest,
        } => {
            client = registries.client(&reference.registry)?;
            let origin = Origin::Registry {
                client: &client,
                repository: &reference.repository,
            };
            let known = manifest
                .as_ref()
                .map(|m| (m.bytes.clone(), m.media_type.clone()));
            (origin, known, digest, None)
        }
        SourceImage::Layout {
            layout,
            digest,
            media_type,
        } => (
            Origin::Layout(layout),
            None,
            digest,
            Some(media_type.as_str()),
        ),
    };
    let (bytes, media_type) = match known {
        Some(known) => known,
        None => origin.manifest(digest, hint).await?,
    };
    let per_image = targets.first().map_or(0, |t| t.tags.len());
    let receivers: Vec<&crate::plan::Target> = targets
        .iter()
        .enumerate()
        .filter(|(k, target)| {
            let gets_a_tag = writes.iter().any(|i| i / per_image.max(1) == *k);
            let same_repository = matches!(&origin, Origin::Registry { client, repository }
                if client.host() == target.image.registry && *repository == target.image.repository);
            gets_a_tag && !same_repository
        })
        .map(|(_, target)| target)
        .collect();
    // Mounts within one registry are a few small requests per repository: every repository at
    // once (the registry's limiter bounds what is in flight). A copy from elsewhere streams
    // blobs through memory: one repository at a time, so the memory bound stays that of one.
    let mounts_only = receivers.iter().all(
        |t| matches!(&origin, Origin::Registry { client, .. } if client.host() == t.image.registry),
    );
    let copied = !receivers.is_empty();
    let at_once = if mounts_only {
        registries.concurrency()
    } else {
        1
    };
    let copies = futures_util::stream::iter(receivers.into_iter().map(|target| {
        let (origin, bytes) = (&origin, &bytes);
        async move {
            let client = registries.client(&target.image.registry)?;
            let to = Target {
                client: &client,
                repository: &target.image.repository,
                chunk_size: options.chunk_size.max(1 << 16),
                progress: options.progress,
            };
            transfer::ensure_content(origin, &to, bytes).await
        }
    }))
    .buffer_unordered(at_once)
    .collect::<Vec<Result<(), TransferError>>>()
    .await;
    copies.into_iter().collect::<Result<(), _>>()?;
    Ok((Content::Manifest { bytes, media_type }, copied))
}
