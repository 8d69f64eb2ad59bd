//! Getting an image's content into a target repository: nothing when it is already there,
//! a cross-repository mount on the same registry, else a streamed, chunked copy. Child
//! manifests of an index go first (by digest), so digests stay the same end to end.

use bytes::Bytes;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use crate::source::{Layout, LayoutError};
use tagguard_registry::manifest::{self, Descriptor};
use tagguard_registry::{Digest, Mount, RegistryClient, RegistryError};

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
    let open = || Reader::open(origin, &blob.digest);
    let (mut session, mut reader) = match origin.mount_from(target) {
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
            Mount::UploadStarted(url) => (url, open().await?),
        },
        None => start_with(target, open()).await?,
    };
    // An upload cut off cannot be sent again (its bytes were streamed, not kept): the blob
    // starts over in a new session, within the retries.
    let mut restarts = 0;
    loop {
        let error = match stream_blob(target, blob, session, reader).await {
            Ok(()) => return Ok(()),
            Err(Failed::Other(e)) => return Err(e),
            Err(Failed::Upload(e)) => e,
        };
        let Some(wait) = target.client.upload_restart(&error, restarts) else {
            return Err(error.into());
        };
        log::debug!(
            "{error}; uploading {} again in a new session in {wait:?}",
            blob.digest
        );
        restarts += 1;
        tokio::time::sleep(wait).await;
        (session, reader) = start_with(target, open()).await?;
    }
}

/// Opens an upload session and the download at once (one round trip, not two).
async fn start_with<'c>(
    target: &Target<'_>,
    open: impl Future<Output = Result<Reader<'c>, TransferError>>,
) -> Result<(reqwest::Url, Reader<'c>), TransferError> {
    let start =
        async { Ok::<_, TransferError>(target.client.start_upload(target.repository).await?) };
    futures_util::future::try_join(start, open).await
}

/// Why a blob's copy stopped: its upload failed (the blob may start over in a new session), or
/// anything else (the download, after its own retries; the digest; the closing PUT).
enum Failed {
    Upload(RegistryError),
    Other(TransferError),
}

impl From<TransferError> for Failed {
    fn from(e: TransferError) -> Self {
        Failed::Other(e)
    }
}

/// Streams a blob from the origin into an upload session: each PATCH carries up to
/// `chunk_size` bytes, sent as they arrive from the source through a queue of a few pieces and
/// hashed on the way, so a blob in flight holds a few hundred KiB whatever its size or the
/// chunk size. A download cut off resumes where it stopped (see [`tagguard_registry::BlobStream`])
/// and its bytes go on into the same PATCH.
async fn stream_blob(
    target: &Target<'_>,
    blob: &Descriptor,
    session: reqwest::Url,
    reader: Reader<'_>,
) -> Result<(), Failed> {
    let mut source = Source {
        reader,
        hasher: Sha256::new(),
        held: None,
        read: 0,
        size: blob.size,
    };
    let report = |done: u64| {
        (target.progress)(Progress::Blob {
            repository: format!("{}/{}", target.client.host(), target.repository),
            digest: blob.digest.clone(),
            size: blob.size,
            done,
        })
    };
    report(0);
    let mut location = session;
    let mut offset: u64 = 0;
    while offset < blob.size {
        let len = (target.chunk_size as u64).min(blob.size - offset);
        let (pieces, queue) = mpsc::channel(QUEUED_PIECES);
        let upload = async {
            target
                .client
                .upload_stream(target.repository, location.clone(), offset, len, queue)
                .await
                .map_err(Failed::Upload)
        };
        let (next, ()) = futures_util::future::try_join(upload, source.feed(pieces, len)).await?;
        location = next;
        offset += len;
        report(offset);
    }
    source.end().await?;
    let actual = format!("sha256:{:x}", source.hasher.finalize());
    if blob.digest.algorithm() == "sha256" && actual != blob.digest.to_string() {
        return Err(TransferError::Corrupt {
            digest: blob.digest.clone(),
            actual,
        }
        .into());
    }
    target
        .client
        .finish_upload(target.repository, location, &blob.digest, Bytes::new())
        .await
        .map_err(|e| Failed::Other(e.into()))?;
    report(blob.size);
    Ok(())
}

/// Pieces of a blob queued between its download and its upload. A piece is what the source
/// delivered in one read (tens of KiB from a socket, at most a few hundred; [`FILE_PIECE`] from
/// a file), so this bounds what a blob in flight holds.
const QUEUED_PIECES: usize = 8;

/// A blob's bytes as they are read, hashed once each.
struct Source<'c> {
    reader: Reader<'c>,
    hasher: Sha256,
    /// Read, and past the end of the PATCH it was read for: the next one starts with it.
    held: Option<Bytes>,
    read: u64,
    size: u64,
}

impl Source<'_> {
    /// Hands the next `len` bytes to `pieces` as they arrive. Stops early without an error when
    /// the upload stopped taking them: its own result says why.
    async fn feed(&mut self, pieces: mpsc::Sender<Bytes>, mut len: u64) -> Result<(), Failed> {
        while len > 0 {
            let mut piece = match self.held.take() {
                Some(piece) => piece,
                None => self.next().await?.ok_or_else(|| self.short())?,
            };
            if piece.len() as u64 > len {
                self.held = Some(piece.split_off(len as usize));
            }
            len -= piece.len() as u64;
            if pieces.send(piece).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Bytes>, TransferError> {
        let piece = self.reader.next().await?;
        if let Some(piece) = &piece {
            self.hasher.update(piece);
            self.read += piece.len() as u64;
        }
        Ok(piece)
    }

    /// Checks that the source ends where the descriptor says.
    async fn end(&mut self) -> Result<(), TransferError> {
        if self.held.is_some() || self.next().await?.is_some() {
            return Err(TransferError::Read {
                what: self.reader.what().to_owned(),
                detail: format!("more than the {} bytes its descriptor gives", self.size),
            });
        }
        Ok(())
    }

    fn short(&self) -> TransferError {
        TransferError::Read {
            what: self.reader.what().to_owned(),
            detail: format!(
                "it ended at byte {} of the {} its descriptor gives",
                self.read, self.size
            ),
        }
    }
}

/// How much of a layout file is read at a time.
const FILE_PIECE: usize = 256 << 10;

/// Reads a blob's bytes in pieces, from a registry response or a layout file.
enum Reader<'c> {
    Http(tagguard_registry::BlobStream<'c>, String),
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

    fn what(&self) -> &str {
        match self {
            Reader::Http(_, what) | Reader::File(_, what) => what,
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, TransferError> {
        match self {
            Reader::Http(response, what) => {
                response.chunk().await.map_err(|e| TransferError::Read {
                    what: what.clone(),
                    detail: e.to_string(),
                })
            }
            Reader::File(file, path) => {
                let mut buf = vec![0u8; FILE_PIECE];
                let n = file.read(&mut buf).await.map_err(|e| TransferError::Read {
                    what: path.clone(),
                    detail: e.to_string(),
                })?;
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
        }
    }
}
