//! Getting an image's content into a target repository: nothing when it is already there,
//! a cross-repository mount on the same registry, else a streamed, chunked copy. Child
//! manifests of an index go first (by digest), so digests stay the same end to end.

use bytes::Bytes;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::registry::manifest::{self, Descriptor};
use crate::registry::{Digest, Mount, RegistryClient, RegistryError};
use crate::source::{Layout, LayoutError};

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

/// Where content is read from.
pub enum Origin<'a> {
    Registry {
        client: &'a RegistryClient,
        repository: &'a str,
    },
    Layout(&'a Layout),
}

/// How much a layout file is read at a time.
const READ_SIZE: usize = 1 << 20;

/// Blobs copied at once.
const PARALLEL_BLOBS: usize = 2;

/// A target repository and how to send to it.
pub struct Target<'a> {
    pub client: &'a RegistryClient,
    pub repository: &'a str,
    pub chunk_size: usize,
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

impl Origin<'_> {
    /// Whether blobs can be mounted from here into `target` (same registry, other repository).
    fn mount_from<'s>(&'s self, target: &Target<'_>) -> Option<&'s str> {
        match self {
            Origin::Registry { client, repository } if client.host() == target.client.host() => {
                Some(repository)
            }
            _ => None,
        }
    }

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
    let parts = manifest::parse(bytes).map_err(|detail| TransferError::Malformed {
        digest: Digest::sha256_of(bytes).to_string(),
        detail,
    })?;
    for child in &parts.manifests {
        let (child_bytes, media_type) = origin
            .manifest(&child.digest, child.media_type.as_deref())
            .await?;
        let child_parts =
            manifest::parse(&child_bytes).map_err(|detail| TransferError::Malformed {
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

async fn copy_blobs(
    origin: &Origin<'_>,
    target: &Target<'_>,
    blobs: &[Descriptor],
) -> Result<(), TransferError> {
    let results: Vec<Result<(), TransferError>> =
        futures_util::stream::iter(blobs.iter().map(|b| copy_blob(origin, target, b)))
            .buffer_unordered(PARALLEL_BLOBS)
            .collect()
            .await;
    results.into_iter().collect()
}

async fn copy_blob(
    origin: &Origin<'_>,
    target: &Target<'_>,
    blob: &Descriptor,
) -> Result<(), TransferError> {
    if target
        .client
        .blob_exists(target.repository, &blob.digest)
        .await?
    {
        return Ok(());
    }
    let session = match origin.mount_from(target) {
        Some(from) => match target
            .client
            .mount_blob(target.repository, &blob.digest, from)
            .await?
        {
            Mount::Mounted => {
                log::debug!(
                    "mounted {} from {from} into {}",
                    blob.digest,
                    target.repository
                );
                return Ok(());
            }
            // The registry declined to mount (202): upload into the session it opened.
            Mount::UploadStarted(url) => url,
        },
        None => target.client.start_upload(target.repository).await?,
    };
    stream_blob(origin, target, blob, session).await
}

/// Streams a blob from the origin into an upload session in chunks of `chunk_size`, hashing as
/// it goes. While one chunk is uploaded the next is downloaded, so neither side waits for the
/// other; memory stays at about two chunks per blob in flight (a chunk is handed to the HTTP
/// client without a copy, and a buffer never grows past one chunk and one read).
async fn stream_blob(
    origin: &Origin<'_>,
    target: &Target<'_>,
    blob: &Descriptor,
    session: reqwest::Url,
) -> Result<(), TransferError> {
    let mut hasher = Sha256::new();
    let mut location = session;
    let chunk_size = target.chunk_size;
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk_size.min(blob.size as usize) + READ_SIZE);
    let mut offset: u64 = 0;
    let mut reader = Reader::open(origin, &blob.digest).await?;
    let report = |done: u64| {
        (target.progress)(Progress::Blob {
            repository: format!("{}/{}", target.client.host(), target.repository),
            digest: blob.digest.clone(),
            size: blob.size,
            done,
        })
    };
    report(0);
    // The chunk being uploaded while the next one fills.
    let mut sending: Option<Bytes> = None;
    loop {
        let fill = fill_chunk(&mut reader, &mut hasher, &mut buffer, chunk_size);
        let send = async {
            match sending.take() {
                Some(chunk) => {
                    let len = chunk.len() as u64;
                    let next = target
                        .client
                        .upload_chunk(target.repository, location.clone(), offset, chunk)
                        .await?;
                    Ok::<_, TransferError>(Some((next, len)))
                }
                None => Ok(None),
            }
        };
        let (more, sent) = futures_util::future::try_join(fill, send).await?;
        if let Some((next, len)) = sent {
            location = next;
            offset += len;
            report(offset);
        }
        if !more {
            break;
        }
        let rest = buffer.split_off(chunk_size);
        let mut next = Vec::with_capacity(
            chunk_size.min(blob.size.saturating_sub(offset) as usize) + READ_SIZE,
        );
        next.extend_from_slice(&rest);
        sending = Some(Bytes::from(std::mem::replace(&mut buffer, next)));
    }
    let actual = format!("sha256:{:x}", hasher.finalize());
    if blob.digest.algorithm() == "sha256" && actual != blob.digest.to_string() {
        return Err(TransferError::Corrupt {
            digest: blob.digest.clone(),
            actual,
        });
    }
    let last = buffer.len() as u64;
    target
        .client
        .finish_upload(
            target.repository,
            location,
            &blob.digest,
            Bytes::from(buffer),
        )
        .await?;
    report(offset + last);
    Ok(())
}

/// Reads into `buffer` until it holds at least one chunk (true) or the blob ends (false).
async fn fill_chunk(
    reader: &mut Reader<'_>,
    hasher: &mut Sha256,
    buffer: &mut Vec<u8>,
    chunk_size: usize,
) -> Result<bool, TransferError> {
    while buffer.len() < chunk_size {
        let Some(data) = reader.next().await? else {
            return Ok(false);
        };
        hasher.update(&data);
        buffer.extend_from_slice(&data);
    }
    Ok(true)
}

/// Reads a blob's bytes in pieces, from a registry response or a layout file.
enum Reader<'c> {
    Http(crate::registry::BlobStream<'c>, String),
    File(tokio::fs::File, String),
}

impl<'c> Reader<'c> {
    async fn open(origin: &Origin<'c>, digest: &Digest) -> Result<Reader<'c>, TransferError> {
        match origin {
            Origin::Registry { client, repository } => {
                let what = format!("{}/{repository}@{digest}", client.host());
                Ok(Reader::Http(
                    client.get_blob(repository, digest).await?,
                    what,
                ))
            }
            Origin::Layout(layout) => {
                let path = layout.blob_path(digest);
                let file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|source| LayoutError::Blob {
                            path: path.display().to_string(),
                            source,
                        })?;
                Ok(Reader::File(file, path.display().to_string()))
            }
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<u8>>, TransferError> {
        match self {
            Reader::Http(response, what) => response
                .chunk()
                .await
                .map(|c| c.map(|b| b.to_vec()))
                .map_err(|e| TransferError::Read {
                    what: what.clone(),
                    detail: e.to_string(),
                }),
            Reader::File(file, path) => {
                let mut buf = vec![0u8; READ_SIZE];
                let n = file.read(&mut buf).await.map_err(|e| TransferError::Read {
                    what: path.clone(),
                    detail: e.to_string(),
                })?;
                buf.truncate(n);
                Ok((n > 0).then_some(buf))
            }
        }
    }
}
