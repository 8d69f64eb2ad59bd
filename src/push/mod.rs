//! `push`: decide for every image first (as `check`), write nothing if anything is refused, then
//! put each allowed tag, and read every written tag back to prove what the registry now holds.
//!
//! No registry offers a conditional manifest PUT, so between "the tag is absent" and the write
//! another writer can get in. The window is kept small (decide, then write at once) and the
//! read-backs — right after the writes and once more at the end — catch a writer that got in.

mod transfer;

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::check::{self, CheckConfig, CheckError, Resolved};
use crate::decision::{Action, Decision};
use crate::docker::{self, DockerError};
use crate::layout::LayoutError;
use crate::registry::{Digest, RegistryError};
use crate::source::Source;
use crate::tags::Computed;

use transfer::{Origin, Target};

pub struct PushOptions<'a> {
    /// Decide and report, but send no write request.
    pub dry_run: bool,
    /// Upload chunk size for copied blobs.
    pub chunk_size: usize,
    /// Told about long transfers.
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

/// One tag the push wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub image: String,
    pub tag: String,
    pub digest: Digest,
}

impl Written {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// A written tag that did not read back as written: another writer got in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Race {
    pub image: String,
    pub tag: String,
    pub written: Digest,
    /// What the registry holds now (`None`: the tag is gone).
    pub found: Option<Digest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub decisions: Vec<Decision>,
    pub written: Vec<Written>,
    /// Every written tag read back as written, twice.
    pub verified: bool,
    pub dry_run: bool,
    /// The registry itself refused a write (its immutability setting), with its message.
    pub registry_refusal: Option<String>,
}

impl PushReport {
    /// The policy or the registry refused something.
    pub fn refused(&self) -> bool {
        self.registry_refusal.is_some() || self.decisions.iter().any(Decision::is_refusal)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("push needs a source image (--source)")]
    NoSource,
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{0}")]
    Content(String),
    /// A failure after some tags were written: they are listed.
    #[error("{source}{}", written_note(.written))]
    Partial {
        written: Vec<Written>,
        source: Box<PushError>,
    },
    /// Tag writes that failed without a clear answer: each may or may not have landed.
    #[error("{source}\nthese tag writes failed and may or may not have landed; look them up before retrying: {}", .tags.join(", "))]
    Unsure {
        tags: Vec<String>,
        source: Box<PushError>,
    },
    #[error("{}", race_text(.races))]
    Race {
        races: Vec<Race>,
        written: Vec<Written>,
    },
}

fn written_note(written: &[Written]) -> String {
    if written.is_empty() {
        "\nnothing had been written yet".to_owned()
    } else {
        let list: Vec<String> = written
            .iter()
            .map(|w| format!("  {} -> {}", w.reference(), w.digest))
            .collect();
        format!("\nalready written before the failure:\n{}", list.join("\n"))
    }
}

fn race_text(races: &[Race]) -> String {
    let lines: Vec<String> = races
        .iter()
        .map(|r| {
            let found = r
                .found
                .as_ref()
                .map_or_else(|| "nothing (deleted)".to_owned(), Digest::to_string);
            format!(
                "  {}:{}: wrote {}, the registry now holds {found}",
                r.image, r.tag, r.written
            )
        })
        .collect();
    format!(
        "another writer changed tags this push had just written (a race; no registry offers a conditional write):\n{}\nturn on the registry's own tag immutability where it has one",
        lines.join("\n")
    )
}

/// Pushes `source` under every tag the policy allows, on every image.
pub async fn push(
    computed: &Computed,
    source: &Source,
    config: &CheckConfig,
    options: &PushOptions<'_>,
) -> Result<PushReport, PushError> {
    let observation = check::observe(computed, Some(source), config, true).await?;
    let mut report = PushReport {
        decisions: observation.decisions,
        written: Vec::new(),
        verified: false,
        dry_run: options.dry_run,
        registry_refusal: None,
    };
    let writes: Vec<usize> = (0..report.decisions.len())
        .filter(|i| matches!(report.decisions[*i].action, Action::Create | Action::Move))
        .collect();
    if report.refused() || options.dry_run || writes.is_empty() {
        report.verified = writes.is_empty() && !report.refused();
        return Ok(report);
    }
    let resolved = observation.source.ok_or(PushError::NoSource)?;
    let images: BTreeMap<&str, &crate::registry::Reference> = computed
        .images
        .iter()
        .map(String::as_str)
        .zip(observation.images.iter())
        .collect();

    let outcome = match &resolved {
        Resolved::Docker { image, .. } => push_docker(
            image,
            &report.decisions,
            &writes,
            &mut report.written,
            options,
            &docker::DockerLimits::from_transport(&config.transport),
        ),
        Resolved::Registry { .. } | Resolved::Layout { .. } => {
            push_registry(
                &resolved,
                &observation.clients,
                &images,
                &report.decisions,
                &writes,
                &mut report.written,
                options,
            )
            .await
        }
    };
    match outcome {
        Ok(()) => {}
        Err(PushError::Registry(e)) if e.is_refusal() => {
            report.registry_refusal = Some(e.to_string());
            return Ok(report);
        }
        Err(e) => {
            return Err(PushError::Partial {
                written: report.written,
                source: Box::new(e),
            });
        }
    }

    // Read back right after the writes, and once more at the very end.
    for _ in 0..2 {
        let races = read_back(&observation.clients, &images, &report.written)
            .await
            .map_err(|e| PushError::Partial {
                written: report.written.clone(),
                source: Box::new(e),
            })?;
        if !races.is_empty() {
            return Err(PushError::Race {
                races,
                written: report.written,
            });
        }
    }
    report.verified = true;
    Ok(report)
}

async fn push_registry(
    resolved: &Resolved,
    clients: &BTreeMap<String, std::sync::Arc<crate::registry::RegistryClient>>,
    images: &BTreeMap<&str, &crate::registry::Reference>,
    decisions: &[Decision],
    writes: &[usize],
    written: &mut Vec<Written>,
    options: &PushOptions<'_>,
) -> Result<(), PushError> {
    let (origin, bytes, media_type) = match resolved {
        Resolved::Registry {
            reference,
            digest,
            manifest,
        } => {
            let origin = Origin::Registry {
                client: &clients[&reference.registry],
                repository: &reference.repository,
            };
            let (bytes, media_type) = match manifest {
                Some(m) => (m.bytes.clone(), m.media_type.clone()),
                None => origin.manifest(digest, None).await?,
            };
            (origin, bytes, media_type)
        }
        Resolved::Layout {
            layout,
            digest,
            media_type,
        } => {
            let origin = Origin::Layout(layout);
            let (bytes, media_type) = origin.manifest(digest, Some(media_type)).await?;
            (origin, bytes, media_type)
        }
        Resolved::Docker { .. } => unreachable!("docker sources push through the engine"),
    };
    // Content first, for every target repository that gets a tag; then the tags, at once.
    let mut prepared: Vec<&str> = Vec::new();
    for i in writes {
        let image = decisions[*i].image.as_str();
        if prepared.contains(&image) {
            continue;
        }
        prepared.push(image);
        let target_ref = images[image];
        let same_repository = matches!(&origin, Origin::Registry { client, repository }
            if client.host() == target_ref.registry && *repository == target_ref.repository);
        if !same_repository {
            let target = Target {
                client: &clients[&target_ref.registry],
                repository: &target_ref.repository,
                chunk_size: options.chunk_size.max(1 << 16),
                progress: options.progress,
            };
            transfer::ensure_content(&origin, &target, &bytes).await?;
        }
    }
    // All tags at once: the shorter the time between deciding and writing, the smaller the
    // window for another writer.
    let puts: Vec<Result<Digest, RegistryError>> =
        futures_util::stream::iter(writes.iter().map(|i| {
            let d = &decisions[*i];
            let target_ref = images[d.image.as_str()];
            let client = &clients[&target_ref.registry];
            let (bytes, media_type) = (&bytes, &media_type);
            async move {
                client
                    .put_manifest(&target_ref.repository, &d.tag, media_type, bytes)
                    .await
            }
        }))
        .buffered(16)
        .collect()
        .await;
    let mut failure = None;
    let mut unsure = Vec::new();
    for (i, put) in writes.iter().zip(puts) {
        let d = &decisions[*i];
        match put {
            Ok(digest) => {
                log::info!("wrote {}:{} -> {digest}", d.image, d.tag);
                (options.progress)(Progress::Tagged {
                    reference: format!("{}:{}", d.image, d.tag),
                    digest: digest.clone(),
                });
                written.push(Written {
                    image: d.image.clone(),
                    tag: d.tag.clone(),
                    digest,
                });
            }
            Err(e) => {
                // A write whose answer never came may still have landed.
                if !e.is_refusal() {
                    unsure.push(format!("{}:{}", d.image, d.tag));
                }
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        None => Ok(()),
        // A registry's immutability refusal alone is a refusal, reported as such.
        Some(e) if unsure.is_empty() => Err(e.into()),
        Some(e) => Err(PushError::Unsure {
            tags: unsure,
            source: Box::new(e.into()),
        }),
    }
}

fn push_docker(
    image: &str,
    decisions: &[Decision],
    writes: &[usize],
    written: &mut Vec<Written>,
    options: &PushOptions<'_>,
    limits: &docker::DockerLimits,
) -> Result<(), PushError> {
    for i in writes {
        let d = &decisions[*i];
        let target = format!("{}:{}", d.image, d.tag);
        docker::tag(image, &target, limits)?;
        let digest = docker::push(&target, limits)?;
        log::info!("docker pushed {target} -> {digest}");
        (options.progress)(Progress::Tagged {
            reference: target,
            digest: digest.clone(),
        });
        written.push(Written {
            image: d.image.clone(),
            tag: d.tag.clone(),
            digest,
        });
    }
    Ok(())
}

/// Every written tag, looked up again: the ones that no longer hold what was written.
async fn read_back(
    clients: &BTreeMap<String, std::sync::Arc<crate::registry::RegistryClient>>,
    images: &BTreeMap<&str, &crate::registry::Reference>,
    written: &[Written],
) -> Result<Vec<Race>, PushError> {
    let lookups: Vec<Result<Option<Digest>, RegistryError>> =
        futures_util::stream::iter(written.iter().map(|w| async move {
            let image = images[w.image.as_str()];
            let reference = image
                .with_tag(&w.tag)
                .expect("a tag that was written is valid");
            clients[&image.registry].resolve(&reference).await
        }))
        .buffered(16)
        .collect()
        .await;
    let mut races = Vec::new();
    for (w, found) in written.iter().zip(lookups) {
        let found = found?;
        if found.as_ref() != Some(&w.digest) {
            races.push(Race {
                image: w.image.clone(),
                tag: w.tag.clone(),
                written: w.digest.clone(),
                found,
            });
        }
    }
    Ok(races)
}
