//! `check`: observe where every computed tag points in the registry and decide what pushing
//! would do. All lookups of a run are in flight together (bounded), over one connection pool
//! per registry, with one token per scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt as _;

use crate::decision::{self, Decision};
use crate::registry::reference::{ReferenceError, TagError};
use crate::registry::{
    CredentialConfig, Digest, Reference, RegistryClient, RegistryError, TransportConfig,
};
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
    #[error("--source: {0}")]
    Source(ReferenceError),
    #[error("--source {reference}: no such image in registry {registry}")]
    SourceMissing { reference: String, registry: String },
    #[error(transparent)]
    Registry(Box<RegistryError>),
}

impl From<RegistryError> for CheckError {
    fn from(e: RegistryError) -> Self {
        CheckError::Registry(Box::new(e))
    }
}

enum Job {
    Source(Reference),
    Tag {
        image: usize,
        tag: usize,
        reference: Reference,
    },
}

/// Looks up every `image × tag` of `computed` (and `source`, resolved to a digest) and returns
/// one [`Decision`] each, in image-major order.
pub async fn check(
    computed: &Computed,
    source: Option<&str>,
    config: &CheckConfig,
) -> Result<Vec<Decision>, CheckError> {
    let source = source
        .map(|s| s.parse::<Reference>().map_err(CheckError::Source))
        .transpose()?;
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

    let mut jobs = Vec::new();
    if let Some(s) = &source {
        jobs.push(Job::Source(s.clone()));
    }
    for (i, image) in images.iter().enumerate() {
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
    for r in source.iter().chain(&images) {
        if !clients.contains_key(&r.registry) {
            let c = RegistryClient::new(&r.registry, &config.credentials, &config.transport)?;
            clients.insert(r.registry.clone(), Arc::new(c));
        }
    }

    let lookups = futures_util::stream::iter(jobs.iter().map(|job| {
        let reference = match job {
            Job::Source(r) | Job::Tag { reference: r, .. } => r,
        };
        let client = clients[&reference.registry].clone();
        async move { client.resolve(reference).await }
    }))
    .buffered(config.transport.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;

    let mut desired: Option<Digest> = None;
    let mut decisions = Vec::new();
    for (job, found) in jobs.iter().zip(lookups) {
        let found = found?;
        match job {
            Job::Source(r) => {
                desired = Some(found.ok_or_else(|| CheckError::SourceMissing {
                    reference: r.to_string(),
                    registry: r.registry.clone(),
                })?);
            }
            Job::Tag { image, tag, .. } => decisions.push(decision::decide(
                &computed.images[*image],
                &computed.tags[*tag],
                found.as_ref(),
                desired.as_ref(),
            )),
        }
    }
    Ok(decisions)
}
