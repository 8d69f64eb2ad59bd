//! `check`: observe where every computed tag points in the registry and decide what pushing
//! would do. All lookups of a run are in flight together (bounded), over one connection pool
//! per registry, with one token per scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt as _;

use crate::decision::{self, Decision, Seen};
use crate::docker::{self, DockerError, IdKind};
use crate::floating;
use crate::layout::{Layout, LayoutError};
use crate::registry::reference::{ReferenceError, TagError};
use crate::registry::{
    CredentialConfig, Digest, Reference, RegistryClient, RegistryError, TransportConfig, manifest,
};
use crate::source::Source;
use crate::tags::Computed;

/// How to reach registries: credentials and transport.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    pub credentials: CredentialConfig,
    pub transport: TransportConfig,
}

/// An operational failure of `check` (a refusal is a [`Decision`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("image {image:?} of the policy is not a valid image name: {source}")]
    Image {
        image: String,
        source: ReferenceError,
    },
    #[error(
        "image {image:?} of the policy carries a tag or digest; tags come from the policy's rules"
    )]
    ImageWithTag { image: String },
    #[error("tag {tag:?} for image {image}: {source}")]
    Tag {
        image: String,
        tag: String,
        source: TagError,
    },
    #[error("--source {reference}: no such image in registry {registry}")]
    SourceMissing { reference: String, registry: String },
    #[error("--source: {0}")]
    Layout(#[from] LayoutError),
    #[error("--source: {0}")]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Registry(Box<RegistryError>),
}

impl From<RegistryError> for CheckError {
    fn from(e: RegistryError) -> Self {
        CheckError::Registry(Box::new(e))
    }
}

/// The image to be pushed, as far as it is known before pushing.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// With the manifest itself when it was fetched for a push.
    Registry {
        reference: Reference,
        digest: Digest,
        manifest: Option<crate::registry::Manifest>,
    },
    Layout {
        layout: Layout,
        digest: Digest,
        media_type: String,
    },
    /// A Docker engine image: its ID and what the ID identifies.
    Docker {
        image: String,
        id: Digest,
        kind: IdKind,
    },
}

impl Resolved {
    /// The manifest digest that will be pushed, when it is known before pushing.
    pub fn manifest_digest(&self) -> Option<&Digest> {
        match self {
            Resolved::Registry { digest, .. } | Resolved::Layout { digest, .. } => Some(digest),
            Resolved::Docker {
                id,
                kind: IdKind::Manifest,
                ..
            } => Some(id),
            Resolved::Docker {
                kind: IdKind::Config,
                ..
            } => None,
        }
    }
}

/// What `check` saw and decided, with what `push` needs to act on it.
pub struct Observation {
    pub decisions: Vec<Decision>,
    pub source: Option<Resolved>,
    /// The images of the run, parsed.
    pub images: Vec<Reference>,
    /// One client per registry host (targets and source).
    pub clients: BTreeMap<String, Arc<RegistryClient>>,
}

enum Job {
    Source(Reference),
    Tag {
        image: usize,
        tag: usize,
        reference: Reference,
    },
    Tags(usize),
}

enum Found {
    Digest(Option<Digest>),
    Manifest(Option<crate::registry::Manifest>),
    Tags(Vec<String>),
}

/// Looks up every `image × tag` of `computed` and returns one [`Decision`] each, in image-major
/// order.
pub async fn check(
    computed: &Computed,
    source: Option<&Source>,
    config: &CheckConfig,
) -> Result<Vec<Decision>, CheckError> {
    Ok(observe(computed, source, config, false).await?.decisions)
}

/// [`check`], keeping the clients and the resolved source for a push. With `fetch_source`, a
/// registry source's manifest is fetched (GET) instead of only looked up (HEAD): a push needs
/// its bytes, and one request does both.
pub async fn observe(
    computed: &Computed,
    source: Option<&Source>,
    config: &CheckConfig,
    fetch_source: bool,
) -> Result<Observation, CheckError> {
    let mut images = Vec::with_capacity(computed.images.len());
    for image in &computed.images {
        let r: Reference = image.parse().map_err(|source| CheckError::Image {
            image: image.clone(),
            source,
        })?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(CheckError::ImageWithTag {
                image: image.clone(),
            });
        }
        images.push(r);
    }

    // Local sources are resolved without the network.
    let mut resolved = match source {
        Some(Source::Layout { dir, reference }) => {
            let layout = Layout::open(dir)?;
            let entry = layout.select(reference.as_deref())?;
            Some(Resolved::Layout {
                layout,
                digest: entry.digest,
                media_type: entry.media_type,
            })
        }
        Some(Source::Docker(image)) => Some(Resolved::Docker {
            image: image.clone(),
            id: docker::image_id(
                image,
                &docker::DockerLimits::from_transport(&config.transport),
            )?,
            kind: docker::identity(&docker::DockerLimits::from_transport(&config.transport))?,
        }),
        _ => None,
    };
    let registry_source = match source {
        Some(Source::Registry(r)) => Some(r.clone()),
        _ => None,
    };

    // Forward-only floating tags need the releases already in each repository.
    let floating = computed.version.is_some() && computed.tags.iter().any(|t| t.floating.is_some());
    let mut jobs = Vec::new();
    if let Some(s) = &registry_source {
        jobs.push(Job::Source(s.clone()));
    }
    for (i, image) in images.iter().enumerate() {
        if floating {
            jobs.push(Job::Tags(i));
        }
        for (t, tag) in computed.tags.iter().enumerate() {
            let reference = image.with_tag(&tag.tag).map_err(|source| CheckError::Tag {
                image: computed.images[i].clone(),
                tag: tag.tag.clone(),
                source,
            })?;
            jobs.push(Job::Tag {
                image: i,
                tag: t,
                reference,
            });
        }
    }

    let mut clients: BTreeMap<String, Arc<RegistryClient>> = BTreeMap::new();
    for r in registry_source.iter().chain(&images) {
        if !clients.contains_key(&r.registry) {
            let c = RegistryClient::new(&r.registry, &config.credentials, &config.transport)?;
            clients.insert(r.registry.clone(), Arc::new(c));
        }
    }

    let lookups = futures_util::stream::iter(jobs.iter().map(|job| {
        let clients = &clients;
        let images = &images;
        async move {
            match job {
                Job::Source(r) if fetch_source => clients[&r.registry]
                    .get_manifest(&r.repository, &r.manifest_ref())
                    .await
                    .map(Found::Manifest),
                Job::Source(r) | Job::Tag { reference: r, .. } => {
                    clients[&r.registry].resolve(r).await.map(Found::Digest)
                }
                Job::Tags(i) => {
                    let image = &images[*i];
                    match clients[&image.registry].list_tags(&image.repository).await {
                        Err(RegistryError::UnknownRepository { .. }) => Ok(Found::Tags(Vec::new())),
                        other => other.map(Found::Tags),
                    }
                }
            }
        }
    }))
    .buffered(config.transport.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;

    let mut current: BTreeMap<(usize, usize), Option<Digest>> = BTreeMap::new();
    let mut existing: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (job, found) in jobs.iter().zip(lookups) {
        match (job, found?) {
            (Job::Source(r), found @ (Found::Digest(_) | Found::Manifest(_))) => {
                let (digest, manifest) = match found {
                    Found::Digest(d) => (d, None),
                    Found::Manifest(m) => (m.as_ref().map(|m| m.digest.clone()), m),
                    Found::Tags(_) => unreachable!(),
                };
                let digest = digest.ok_or_else(|| CheckError::SourceMissing {
                    reference: r.to_string(),
                    registry: r.registry.clone(),
                })?;
                resolved = Some(Resolved::Registry {
                    reference: r.clone(),
                    digest,
                    manifest,
                });
            }
            (Job::Tag { image, tag, .. }, Found::Digest(d)) => {
                current.insert((*image, *tag), d);
            }
            (Job::Tags(i), Found::Tags(tags)) => {
                existing.insert(*i, tags);
            }
            _ => unreachable!("each job yields its own kind"),
        }
    }

    let same = same_image(&resolved, &images, &clients, &current).await?;
    let mut decisions = Vec::new();
    for ((i, t), cur) in &current {
        let tag = &computed.tags[*t];
        let holder = match (tag.floating, &computed.version) {
            (Some(kind), Some(version)) => floating::hold(
                kind,
                version,
                existing.get(i).map_or(&[][..], Vec::as_slice),
            ),
            _ => None,
        };
        decisions.push(decision::decide(
            &computed.images[*i],
            tag,
            Seen {
                current: cur.as_ref(),
                desired: resolved.as_ref().and_then(Resolved::manifest_digest),
                same_image: same.get(&(*i, *t)).copied().flatten(),
                hold: holder.as_ref().map(|(r, v)| (*r, v.as_ref())),
            },
        ));
    }
    Ok(Observation {
        decisions,
        source: resolved,
        images,
        clients,
    })
}

/// For every existing tag: does it already hold the source image? By manifest digest when the
/// source's is known; for a classic-store Docker image, by the config digest its manifest names
/// (one manifest GET per existing tag).
async fn same_image(
    resolved: &Option<Resolved>,
    images: &[Reference],
    clients: &BTreeMap<String, Arc<RegistryClient>>,
    current: &BTreeMap<(usize, usize), Option<Digest>>,
) -> Result<BTreeMap<(usize, usize), Option<bool>>, CheckError> {
    let mut same = BTreeMap::new();
    let Some(resolved) = resolved else {
        return Ok(same);
    };
    if let Some(desired) = resolved.manifest_digest() {
        for (key, cur) in current {
            same.insert(*key, cur.as_ref().map(|c| c == desired));
        }
        return Ok(same);
    }
    let Resolved::Docker { id, .. } = resolved else {
        return Ok(same);
    };
    for ((i, t), cur) in current {
        let Some(cur) = cur else { continue };
        let image = &images[*i];
        let found = clients[&image.registry]
            .get_manifest(&image.repository, &cur.to_string())
            .await?;
        let config = found
            .and_then(|m| manifest::parse(&m.bytes).ok())
            .and_then(|p| p.config);
        same.insert((*i, *t), Some(config.as_ref() == Some(id)));
    }
    Ok(same)
}
