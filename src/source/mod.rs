//! The source stage: the image a push copies, resolved before anything is decided. A registry
//! reference is looked up (check) or fetched (push); an OCI layout is read from disk; a Docker
//! engine image is asked for its ID.

pub mod layout;
mod spec;

pub use layout::{Layout, LayoutError};
pub use spec::{SourceSpec, SpecError};

use crate::docker::{self, DockerError, IdKind};
use crate::registries::Registries;
use tagguard_registry::{Digest, Manifest, Reference, RegistryError};

/// The image to be pushed, as far as it is known before pushing.
#[derive(Debug, Clone)]
pub enum SourceImage {
    /// With the manifest's bytes when they were fetched for a push.
    Registry {
        reference: Reference,
        digest: Digest,
        manifest: Option<Manifest>,
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

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    #[error("--source {reference}: no such image in registry {registry}")]
    #[diagnostic(
        code(tagguard::source::missing),
        help("push the built image there first, or name it by the digest the build printed")
    )]
    Missing { reference: String, registry: String },
    #[error("--source: {0}")]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("--source: {0}")]
    #[diagnostic(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<RegistryError>),
}

impl From<RegistryError> for SourceError {
    fn from(e: RegistryError) -> Self {
        SourceError::Registry(Box::new(e))
    }
}

impl SourceImage {
    /// The manifest digest that will be pushed, when it is known before pushing.
    pub fn manifest_digest(&self) -> Option<&Digest> {
        match self {
            SourceImage::Registry { digest, .. } | SourceImage::Layout { digest, .. } => {
                Some(digest)
            }
            SourceImage::Docker {
                id,
                kind: IdKind::Manifest,
                ..
            } => Some(id),
            SourceImage::Docker {
                kind: IdKind::Config,
                ..
            } => None,
        }
    }
}

/// Resolves `spec` far enough to decide: a registry source is looked up (HEAD).
pub async fn identify(
    spec: &SourceSpec,
    registries: &Registries,
) -> Result<SourceImage, SourceError> {
    let r = match spec {
        SourceSpec::Registry(r) => r,
        SourceSpec::Layout { dir, reference } => return from_layout(dir, reference.as_deref()),
        SourceSpec::Docker(image) => return from_docker(image, &registries.docker_limits()),
    };
    let digest = registries.client(&r.registry)?.resolve(r).await?;
    Ok(SourceImage::Registry {
        reference: r.clone(),
        digest: digest.ok_or_else(|| missing(r))?,
        manifest: None,
    })
}

/// Resolves `spec` far enough to copy it: a registry source's manifest is fetched (one GET does
/// the lookup too).
pub async fn load(spec: &SourceSpec, registries: &Registries) -> Result<SourceImage, SourceError> {
    let r = match spec {
        SourceSpec::Registry(r) => r,
        SourceSpec::Layout { dir, reference } => return from_layout(dir, reference.as_deref()),
        SourceSpec::Docker(image) => return from_docker(image, &registries.docker_limits()),
    };
    let manifest = registries
        .client(&r.registry)?
        .get_manifest(&r.repository, &r.manifest_ref())
        .await?
        .ok_or_else(|| missing(r))?;
    Ok(SourceImage::Registry {
        reference: r.clone(),
        digest: manifest.digest.clone(),
        manifest: Some(manifest),
    })
}

fn missing(r: &Reference) -> SourceError {
    SourceError::Missing {
        reference: r.to_string(),
        registry: r.registry.clone(),
    }
}

fn from_layout(dir: &std::path::Path, reference: Option<&str>) -> Result<SourceImage, SourceError> {
    let layout = Layout::open(dir)?;
    let entry = layout.select(reference)?;
    Ok(SourceImage::Layout {
        layout,
        digest: entry.digest,
        media_type: entry.media_type,
    })
}

fn from_docker(image: &str, limits: &docker::DockerLimits) -> Result<SourceImage, SourceError> {
    Ok(SourceImage::Docker {
        image: image.to_owned(),
        id: docker::image_id(image, limits)?,
        kind: docker::identity(limits)?,
    })
}
