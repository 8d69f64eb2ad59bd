//! Blobs: existence checks, cross-repository mounts, upload sessions (chunked PATCH, streamed
//! PATCH, closing PUT), and downloads that resume where they were cut off.

use bytes::Bytes;
use reqwest::{Method, StatusCode, Url, header};
use tokio::sync::mpsc;

use super::auth::Scope;
use super::classify::classify_body;
use super::client::RegistryClient;
use super::digest::Digest;
use super::engine::{Body, Outgoing};
use super::error::{RegistryError, RequestId};
use super::retry::RetryClass;

/// The outcome of a cross-repository mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry did not mount and opened an upload session here instead.
    UploadStarted(Url),
}

impl RegistryClient {
    /// Is the blob in the repository?
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"));
        let (request, response) = self.send(Outgoing::new(Method::HEAD, url, &scopes)).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(request, response, &scopes, repository, None)),
        }
    }

    /// Asks the registry to mount a blob from another repository of the same registry. One
    /// token carries both scopes (push on the target, pull on the source).
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let scopes = [Scope::push(repository), Scope::pull(from)];
        let mut url = self.url(&format!("v2/{repository}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let out = Outgoing::new(Method::POST, url, &scopes).retry(RetryClass::Always);
        let (request, response) = self.send(out).await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::UploadStarted(
                self.location(&request, response.headers())?,
            )),
            _ => Err(self.failure(request, response, &scopes, repository, None)),
        }
    }

    /// Opens an upload session; returns where to send the data.
    pub async fn start_upload(&self, repository: &str) -> Result<Url, RegistryError> {
        let scopes = [Scope::push(repository)];
        let url = self.url(&format!("v2/{repository}/blobs/uploads/"));
        let out = Outgoing::new(Method::POST, url, &scopes).retry(RetryClass::Always);
        self.session(out, &scopes, repository).await
    }

    /// Sends one chunk of a chunked upload (PATCH); returns where the next one goes.
    pub async fn upload_chunk(
        &self,
        repository: &str,
        location: Url,
        offset: u64,
        chunk: Bytes,
    ) -> Result<Url, RegistryError> {
        let scopes = [Scope::push(repository)];
        let mut out = Outgoing::new(Method::PATCH, location, &scopes);
        out.content_type = Some("application/octet-stream");
        out.content_range = Some(format!("{offset}-{}", offset + chunk.len() as u64 - 1));
        out.body = Body::Bytes(chunk);
        self.session(out, &scopes, repository).await
    }

    /// Sends the next `len` bytes of an upload, from byte `offset` of the blob, in one PATCH
    /// whose body is streamed from `pieces` as they arrive: nothing is held but the pieces in the
    /// channel. Returns where the session goes on. Never repeated (a streamed body cannot be
    /// sent again): the caller restarts the blob in a new session, see
    /// [`RetryPolicy::restart_upload`](crate::retry::RetryPolicy::restart_upload). `--timeout` bounds the registry's silence only: while
    /// the body waits for `pieces` (the source is slow), the upload's clock stands still.
    pub(crate) async fn upload_stream(
        &self,
        repository: &str,
        location: Url,
        offset: u64,
        len: u64,
        pieces: mpsc::Receiver<Bytes>,
    ) -> Result<Url, RegistryError> {
        let scopes = [Scope::push(repository)];
        let mut out = Outgoing::new(Method::PATCH, location, &scopes).streamed(pieces, len);
        out.content_type = Some("application/octet-stream");
        out.content_range = Some(format!("{offset}-{}", (offset + len).saturating_sub(1)));
        self.session(out, &scopes, repository).await
    }

    /// Closes an upload session with its last bytes (PUT): the registry checks the whole blob
    /// against `digest`.
    pub async fn finish_upload(
        &self,
        repository: &str,
        mut location: Url,
        digest: &Digest,
        last: Bytes,
    ) -> Result<(), RegistryError> {
        let scopes = [Scope::push(repository)];
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        // Content-addressed: a repeat can only store the same bytes under the same digest.
        let mut out = Outgoing::new(Method::PUT, location, &scopes).retry(RetryClass::Always);
        out.content_type = Some("application/octet-stream");
        out.body = Body::Bytes(last);
        let (request, response) = match self.send(out).await {
            Ok(answer) => answer,
            // The registry may have completed the upload and lost the answer; if so a repeat
            // finds no session. Content addressing makes "the blob is there" the same success.
            Err(e) if matches!(self.blob_exists(repository, digest).await, Ok(true)) => {
                log::debug!("{e}; but the blob is in the repository");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if response.status() != StatusCode::CREATED {
            if matches!(self.blob_exists(repository, digest).await, Ok(true)) {
                log::debug!(
                    "{request}: {}; but the blob is in the repository",
                    response.status()
                );
                return Ok(());
            }
            return Err(self.failure(request, response, &scopes, repository, None));
        }
        Ok(())
    }

    /// Sends an upload request that must answer 202; returns where the session goes on.
    async fn session(
        &self,
        out: Outgoing<'_>,
        scopes: &[Scope],
        repository: &str,
    ) -> Result<Url, RegistryError> {
        let (request, response) = self.send(out).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.failure(request, response, scopes, repository, None));
        }
        self.location(&request, response.headers())
    }

    /// Starts downloading a blob; the caller reads it with [`BlobStream::chunk`] and must check
    /// its digest. Registries that keep blobs elsewhere redirect; credentials stay behind. A
    /// download cut off (reset, silence, closed early) resumes where it stopped.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<BlobStream<'_>, RegistryError> {
        let (request, response) = self.blob_from(repository, digest, 0).await?;
        Ok(BlobStream(Box::new(Download {
            client: self,
            repository: repository.to_owned(),
            digest: digest.clone(),
            request,
            response,
            offset: 0,
            skip: 0,
            retries: 0,
        })))
    }

    /// `GET` of a blob from byte `offset` on (a `Range` request when not 0). Returns the
    /// response and how many bytes of it to skip (a registry that ignores `Range` starts over).
    async fn blob_from(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(RequestId, reqwest::Response), RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"));
        let mut out = Outgoing::new(Method::GET, url, &scopes);
        out.stream = true;
        out.range = (offset > 0).then_some(offset);
        let (request, answer) = self.send(out).await?;
        match answer.stream {
            Some(body) => Ok((request, body)),
            None => Err(self.failure(request, answer, &scopes, repository, None)),
        }
    }
}

/// A blob download in progress.
pub struct BlobStream<'c>(Box<Download<'c>>);

struct Download<'c> {
    client: &'c RegistryClient,
    repository: String,
    digest: Digest,
    request: RequestId,
    response: reqwest::Response,
    /// Bytes handed to the caller so far.
    offset: u64,
    /// Bytes of the current response to drop (already handed out before a restart).
    skip: u64,
    /// Resumptions so far, against the retry budget.
    retries: u32,
}

impl BlobStream<'_> {
    /// The next piece of the blob, `None` at the end. Each wait is bounded by `--timeout`; a
    /// download cut off is resumed (see [`RetryPolicy::resume_download`](crate::RetryPolicy::resume_download)) as long as the retry
    /// budget lasts.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        self.0.chunk().await
    }
}

impl Download<'_> {
    /// The next piece of the blob, `None` at the end. Each wait is bounded by `--timeout`; a
    /// download cut off is resumed with `Range` (or restarted and the known part skipped) as
    /// long as the retry budget lasts.
    async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        let idle = self.client.transport.timeout;
        loop {
            let error = match tokio::time::timeout(idle, self.response.chunk()).await {
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(mut piece))) => {
                    if self.skip > 0 {
                        let drop = piece.len().min(self.skip as usize);
                        let _ = piece.split_to(drop);
                        self.skip -= drop as u64;
                        if piece.is_empty() {
                            continue;
                        }
                    }
                    self.offset += piece.len() as u64;
                    return Ok(Some(piece));
                }
                Ok(Err(e)) => classify_body(e, &self.request, idle),
                Err(_) => RegistryError::Timeout {
                    request: self.request.clone(),
                    after: idle,
                },
            };
            self.resume(error).await?;
        }
    }

    async fn resume(&mut self, error: RegistryError) -> Result<(), RegistryError> {
        let policy = &self.client.transport.retry;
        let Some(wait) = policy.resume_download(&error, self.retries) else {
            return Err(error);
        };
        log::debug!("{error}; resuming at byte {} in {wait:?}", self.offset);
        self.retries += 1;
        tokio::time::sleep(wait).await;
        let (request, response) = self
            .client
            .blob_from(&self.repository, &self.digest, self.offset)
            .await?;
        self.skip = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let range = response
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !range.starts_with(&format!("bytes {}-", self.offset)) {
                    return Err(RegistryError::Malformed {
                        request,
                        detail: format!(
                            "asked for the blob from byte {}, got Content-Range {range:?}",
                            self.offset
                        ),
                    });
                }
                0
            }
            _ => self.offset,
        };
        self.request = request;
        self.response = response;
        Ok(())
    }
}
