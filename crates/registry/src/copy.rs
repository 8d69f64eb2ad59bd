//! Copying blobs into a repository: nothing when the blob is already there, a cross-repository
//! mount on the same registry, else a streamed, chunked copy from another registry or from
//! files, hashed on the way and checked against its digest.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::Url;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use super::blobs::{BlobStream, Mount};
use super::client::RegistryClient;
use super::digest::Digest;
use super::error::RegistryError;
use super::manifest::Descriptor;

/// Where a blob's bytes are read from.
pub enum BlobOrigin<'a> {
    /// A repository of a registry: this target's (a mount is tried first) or another's.
    Registry {
        client: &'a RegistryClient,
        repository: &'a str,
    },
    /// Local files: the path of the file that holds a blob (an OCI layout's `blobs/…`).
    Files(&'a (dyn Fn(&Digest) -> PathBuf + Sync)),
}

/// A target repository and how to send to it.
pub struct CopyTarget<'a> {
    pub client: &'a RegistryClient,
    pub repository: &'a str,
    /// The most bytes one PATCH carries.
    pub chunk_size: usize,
    /// Told how many of a blob's bytes are in the target so far (0 first, its size last).
    pub progress: &'a (dyn Fn(&Descriptor, u64) + Sync),
}

/// Copying a blob failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error("could not open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {what}: {detail}")]
    Read { what: String, detail: String },
    #[error("blob {digest} read from the source hashes to {actual}")]
    Corrupt { digest: Digest, actual: String },
}

impl From<RegistryError> for CopyError {
    fn from(e: RegistryError) -> Self {
        CopyError::Registry(Box::new(e))
    }
}

impl BlobOrigin<'_> {
    /// Whether blobs can be mounted from here into `target` (same registry, other repository).
    fn mount_from<'s>(&'s self, target: &CopyTarget<'_>) -> Option<&'s str> {
        match self {
            BlobOrigin::Registry { client, repository }
                if client.host() == target.client.host() =>
            {
                Some(repository)
            }
            _ => None,
        }
    }
}

/// Blobs copied at once.
const PARALLEL_BLOBS: usize = 2;

/// Makes every blob of `blobs` present in the target repository, a few at a time.
pub async fn copy_blobs(
    origin: &BlobOrigin<'_>,
    target: &CopyTarget<'_>,
    blobs: &[Descriptor],
) -> Result<(), CopyError> {
    let results: Vec<Result<(), CopyError>> =
        futures_util::stream::iter(blobs.iter().map(|b| copy_blob(origin, target, b)))
            .buffer_unordered(PARALLEL_BLOBS)
            .collect()
            .await;
    results.into_iter().collect()
}

async fn copy_blob(
    origin: &BlobOrigin<'_>,
    target: &CopyTarget<'_>,
    blob: &Descriptor,
) -> Result<(), CopyError> {
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
        let policy = &target.client.transport.retry;
        let Some(wait) = policy.restart_upload(&error, restarts) else {
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
    target: &CopyTarget<'_>,
    open: impl Future<Output = Result<Reader<'c>, CopyError>>,
) -> Result<(Url, Reader<'c>), CopyError> {
    let start = async { Ok::<_, CopyError>(target.client.start_upload(target.repository).await?) };
    futures_util::future::try_join(start, open).await
}

/// Why a blob's copy stopped: its upload failed (the blob may start over in a new session), or
/// anything else (the download, after its own retries; the digest; the closing PUT).
enum Failed {
    Upload(RegistryError),
    Other(CopyError),
}

impl From<CopyError> for Failed {
    fn from(e: CopyError) -> Self {
        Failed::Other(e)
    }
}

/// Streams a blob from the origin into an upload session: each PATCH carries up to
/// `chunk_size` bytes, sent as they arrive from the source through a queue of a few pieces and
/// hashed on the way, so a blob in flight holds a few hundred KiB whatever its size or the
/// chunk size. A download cut off resumes where it stopped (see [`BlobStream`])
/// and its bytes go on into the same PATCH.
async fn stream_blob(
    target: &CopyTarget<'_>,
    blob: &Descriptor,
    session: Url,
    reader: Reader<'_>,
) -> Result<(), Failed> {
    let mut source = Source {
        reader,
        hasher: Sha256::new(),
        held: None,
        read: 0,
        size: blob.size,
    };
    let report = |done: u64| (target.progress)(blob, done);
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
        return Err(CopyError::Corrupt {
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

    async fn next(&mut self) -> Result<Option<Bytes>, CopyError> {
        let piece = self.reader.next().await?;
        if let Some(piece) = &piece {
            self.hasher.update(piece);
            self.read += piece.len() as u64;
        }
        Ok(piece)
    }

    /// Checks that the source ends where the descriptor says.
    async fn end(&mut self) -> Result<(), CopyError> {
        if self.held.is_some() || self.next().await?.is_some() {
            return Err(CopyError::Read {
                what: self.reader.what().to_owned(),
                detail: format!("more than the {} bytes its descriptor gives", self.size),
            });
        }
        Ok(())
    }

    fn short(&self) -> CopyError {
        CopyError::Read {
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

/// Reads a blob's bytes in pieces, from a registry response or a file.
enum Reader<'c> {
    Http(BlobStream<'c>, String),
    File(tokio::fs::File, String),
}

impl<'c> Reader<'c> {
    async fn open(origin: &BlobOrigin<'c>, digest: &Digest) -> Result<Reader<'c>, CopyError> {
        match origin {
            BlobOrigin::Registry { client, repository } => {
                let what = format!("{}/{repository}@{digest}", client.host());
                Ok(Reader::Http(
                    client.get_blob(repository, digest).await?,
                    what,
                ))
            }
            BlobOrigin::Files(path_of) => {
                let path = path_of(digest);
                let file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|source| CopyError::Open {
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

    async fn next(&mut self) -> Result<Option<Bytes>, CopyError> {
        match self {
            Reader::Http(response, what) => response.chunk().await.map_err(|e| CopyError::Read {
                what: what.clone(),
                detail: e.to_string(),
            }),
            Reader::File(file, path) => {
                let mut buf = vec![0u8; FILE_PIECE];
                let n = file.read(&mut buf).await.map_err(|e| CopyError::Read {
                    what: path.clone(),
                    detail: e.to_string(),
                })?;
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
        }
    }
}
