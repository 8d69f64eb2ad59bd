//! Getting an image's content into a target repository: its blobs (copied by the registry
//! client: nothing when there, a mount on the same registry, else a streamed copy) and, for an
//! index, its child manifests first (by digest), so digests stay the same end to end.

use crate::source::{Layout, LayoutError};
use tagguard_registry::{BlobOrigin, CopyError, CopyTarget};
use tagguard_registry::{Descriptor, parse_manifest};
use tagguard_registry::{Digest, RegistryClient, RegistryError};

use super::Progress;

/// Getting content into a target repository failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TransferError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("manifest {digest} vanished from {repository}")]
    #[diagnostic(
        code(tagguard::push::source_vanished),
        help("the source image was deleted while it was being copied; push it again")
    )]
    Vanished { digest: Digest, repository: String },
    #[error("manifest {digest}: {detail}")]
    #[diagnostic(code(tagguard::push::malformed_manifest))]
    Malformed { digest: String, detail: String },
    #[error("reading {what}: {detail}")]
    #[diagnostic(code(tagguard::push::read_failed))]
    Read { what: String, detail: String },
    #[error("blob {digest} read from the source hashes to {actual}")]
    #[diagnostic(
        code(tagguard::push::blob_corrupt),
        help(
            "the source's content does not match its digest; rebuild or re-push the source image"
        )
    )]
    Corrupt { digest: Digest, actual: String },
}

impl From<RegistryError> for TransferError {
    fn from(e: RegistryError) -> Self {
        TransferError::Registry(Box::new(e))
    }
}

impl From<CopyError> for TransferError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Registry(e) => TransferError::Registry(e),
            CopyError::Open { path, source } => LayoutError::Blob { path, source }.into(),
            CopyError::Read { what, detail } => TransferError::Read { what, detail },
            CopyError::Corrupt { digest, actual } => TransferError::Corrupt { digest, actual },
        }
    }
}

/// Where content is read from.
pub enum Origin<'a> {
    Registry {
        client: &'a RegistryClient,
        repository: &'a str,
    },
    Layout(&'a Layout),
}

/// A target repository and how to send to it.
pub struct Target<'a> {
    pub client: &'a RegistryClient,
    pub repository: &'a str,
    pub chunk_size: usize,
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

impl Origin<'_> {
    /// A manifest's exact bytes and media type.
    pub async fn manifest(
        &self,
        digest: &Digest,
        hint: Option<&str>,
    ) -> Result<(Vec<u8>, String), TransferError> {
        match self {
            Origin::Registry { client, repository } => {
                let m = client
                    .get_manifest(repository, &digest.to_string())
                    .await?
                    .ok_or_else(|| TransferError::Vanished {
                        digest: digest.clone(),
                        repository: format!("{}/{repository}", client.host()),
                    })?;
                Ok((m.bytes, m.media_type))
            }
            Origin::Layout(layout) => {
                let bytes = layout.read_blob(digest)?;
                let media_type = hint
                    .map(str::to_owned)
                    .or_else(|| crate::source::layout::media_type_of(&bytes))
                    .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
                Ok((bytes, media_type))
            }
        }
    }
}

/// Makes every blob and child manifest of `bytes` present in the target repository. Returns how
/// many blobs were sent (not counting those already there or mounted).
pub async fn ensure_content(
    origin: &Origin<'_>,
    target: &Target<'_>,
    bytes: &[u8],
) -> Result<(), TransferError> {
    let parts = parse_manifest(bytes).map_err(|detail| TransferError::Malformed {
        digest: Digest::sha256_of(bytes).to_string(),
        detail,
    })?;
    for child in &parts.manifests {
        let (child_bytes, media_type) = origin
            .manifest(&child.digest, child.media_type.as_deref())
            .await?;
        let child_parts =
            parse_manifest(&child_bytes).map_err(|detail| TransferError::Malformed {
                digest: child.digest.to_string(),
                detail,
            })?;
        copy_blobs(origin, target, &child_parts.blobs).await?;
        target
            .client
            .put_manifest(
                target.repository,
                &child.digest.to_string(),
                &media_type,
                &child_bytes,
            )
            .await?;
    }
    copy_blobs(origin, target, &parts.blobs).await
}

/// The blobs of one manifest, copied by the registry client ([`tagguard_registry::copy_blobs`]).
async fn copy_blobs(
    origin: &Origin<'_>,
    target: &Target<'_>,
    blobs: &[Descriptor],
) -> Result<(), TransferError> {
    let path_of;
    let from = match origin {
        Origin::Registry { client, repository } => BlobOrigin::Registry { client, repository },
        Origin::Layout(layout) => {
            path_of = |digest: &Digest| layout.blob_path(digest);
            BlobOrigin::Files(&path_of)
        }
    };
    let progress = |blob: &Descriptor, done: u64| {
        (target.progress)(Progress::Blob {
            repository: format!("{}/{}", target.client.host(), target.repository),
            digest: blob.digest.clone(),
            size: blob.size,
            done,
        })
    };
    let to = CopyTarget {
        client: target.client,
        repository: target.repository,
        chunk_size: target.chunk_size,
        progress: &progress,
    };
    Ok(tagguard_registry::copy_blobs(&from, &to, blobs).await?)
}
