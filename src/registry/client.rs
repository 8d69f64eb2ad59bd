//! The OCI Distribution API client for one registry host: manifest lookups, tag listing, and the
//! write primitives push builds on. One connection pool per registry; the first 401 teaches the
//! auth scheme and that request is retried, so there is no extra `/v2/` ping.

use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};

use super::auth::{Auth, Scheme, Scope, scopes_display};
use super::challenge;
use super::credentials::{self, CredentialConfig, CredentialSource};
use super::digest::Digest;
use super::error::{RegistryError, RequestId, describe, error_entries, immutability};
use super::reference::Reference;
use super::retry::{RetryClass, parse_retry_after, retryable_status, unprocessed_status};
use super::transport::TransportConfig;

mod referrers;
mod tag_pages;

/// Every manifest type tagguard understands, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

const MAX_MANIFEST_BYTES: usize = 4 << 20;
const MAX_TAG_LIST_BYTES: usize = 32 << 20;
const MAX_REDIRECTS: u32 = 5;
const DIGEST_HEADER: &str = "docker-content-digest";

/// What a manifest lookup learned without necessarily fetching the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

/// A manifest exactly as the registry served it, for putting back byte-identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// The outcome of a cross-repository mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry did not mount and opened an upload session here instead.
    UploadStarted(Url),
}

struct Outgoing<'a> {
    method: Method,
    url: Url,
    scopes: &'a [Scope],
    accept: Option<&'static str>,
    content_type: Option<&'a str>,
    content_range: Option<String>,
    /// Shared, so a retry re-sends it without a copy.
    body: Option<Bytes>,
    retry: RetryClass,
    /// The most of a successful answer's body that is read; a larger one is an error.
    body_limit: usize,
    /// Leave a successful answer's body unread, for the caller to stream.
    stream: bool,
}

impl<'a> Outgoing<'a> {
    fn new(method: Method, url: Url, scopes: &'a [Scope]) -> Self {
        let retry = match method {
            Method::GET | Method::HEAD => RetryClass::Always,
            Method::PUT => RetryClass::IfUnprocessed,
            _ => RetryClass::Never,
        };
        Outgoing {
            method,
            url,
            scopes,
            accept: None,
            content_type: None,
            content_range: None,
            body: None,
            retry,
            body_limit: ERROR_BODY_LIMIT,
            stream: false,
        }
    }

    fn retry(mut self, class: RetryClass) -> Self {
        self.retry = class;
        self
    }
}

/// A response read whole: status, headers and (up to the request's limit) body. Reading the body
/// inside the retry loop makes a reset or truncation mid-body a retryable failure like any other.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The unread response, when the request asked to stream a successful body.
    stream: Option<reqwest::Response>,
}

impl Answer {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// How much of an error answer is read for its message.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// A client for one registry host.
pub struct RegistryClient {
    host: String,
    base: Url,
    http: reqwest::Client,
    auth: Auth,
    transport: TransportConfig,
}

impl RegistryClient {
    /// Resolves credentials for `host` and sets up the connection pool. No request is sent.
    pub fn new(
        host: &str,
        credentials: &CredentialConfig,
        transport: &TransportConfig,
    ) -> Result<RegistryClient, RegistryError> {
        let resolved = credentials::resolve(host, credentials).map_err(|source| {
            RegistryError::Credentials {
                host: host.to_owned(),
                source,
            }
        })?;
        log::debug!("registry {host}: credentials from {}", resolved.source);
        let base =
            Url::parse(&format!("{}://{host}/", transport.scheme_for(host))).map_err(|e| {
                RegistryError::Malformed {
                    request: RequestId {
                        host: host.to_owned(),
                        method: "-".into(),
                        path: "/".into(),
                    },
                    detail: format!("cannot make a URL of the host: {e}"),
                }
            })?;
        Ok(RegistryClient {
            host: host.to_owned(),
            base,
            http: transport.http_client(host)?,
            auth: Auth::new(host, resolved.credential, resolved.source, transport),
            transport: transport.clone(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Where this registry's credentials came from (never the secret).
    pub fn credential_source(&self) -> &CredentialSource {
        self.auth.source()
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a registry path joins onto the base URL")
    }

    fn request_id(&self, method: &Method, url: &Url) -> RequestId {
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host = if authority(url) == self.host {
            self.host.clone()
        } else {
            format!("{} (redirected to {})", self.host, authority(url))
        };
        RequestId {
            host,
            method: method.to_string(),
            path,
        }
    }

    /// Sends one logical request: learns the auth scheme from a 401 and retries once, follows
    /// redirects (credentials only to the registry's own host), retries transient failures as
    /// the request's [`RetryClass`] allows, with backoff and `Retry-After`.
    async fn send(&self, out: Outgoing<'_>) -> Result<(RequestId, Answer), RegistryError> {
        let mut url = out.url.clone();
        let policy = &self.transport.retry;
        let (mut retries, mut auth_retried, mut redirects) = (0u32, false, 0u32);
        loop {
            let request = self.request_id(&out.method, &url);
            let same_host = authority(&url) == self.host;
            let gate = if same_host {
                self.auth.probe_gate().await
            } else {
                None
            };
            let auth_header = if same_host {
                self.auth.header(&self.http, out.scopes, &request).await?
            } else {
                None
            };
            let sent_auth = auth_header.is_some();
            let mut rb = self.http.request(out.method.clone(), url.clone());
            if let Some(a) = out.accept {
                rb = rb.header(header::ACCEPT, a);
            }
            if let Some(ct) = out.content_type {
                rb = rb.header(header::CONTENT_TYPE, ct);
            }
            if let Some(cr) = &out.content_range {
                rb = rb.header(header::CONTENT_RANGE, cr);
            }
            if let Some(h) = auth_header {
                rb = rb.header(header::AUTHORIZATION, h);
            }
            if let Some(b) = &out.body {
                rb = rb.body(b.clone());
            } else if matches!(out.method, Method::POST | Method::PUT | Method::PATCH) {
                rb = rb.header(header::CONTENT_LENGTH, 0);
            }
            log::debug!("{request}");
            let response = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    drop(gate);
                    let err = classify(e, &request, &self.transport.describe_trust(&self.host));
                    let may_retry = match (out.retry, &err) {
                        (RetryClass::Never, RegistryError::Connect { .. }) => true,
                        (RetryClass::Never, _) => false,
                        // Not connected means not sent.
                        (RetryClass::IfUnprocessed, e) => {
                            matches!(e, RegistryError::Connect { .. })
                        }
                        (RetryClass::Always, e) => matches!(
                            e,
                            RegistryError::Timeout { .. }
                                | RegistryError::Http { .. }
                                | RegistryError::Connect { .. }
                        ),
                    };
                    if may_retry && retries < policy.max_retries {
                        let wait = policy.delay(retries, None);
                        log::debug!("{err}; retrying in {wait:?}");
                        retries += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status();
            log::debug!("{request} -> {status}");

            if status == StatusCode::UNAUTHORIZED && same_host && !auth_retried {
                let values: Vec<&str> = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if let Some(scheme) = Scheme::from_challenges(&challenge::parse(values)) {
                    if sent_auth {
                        self.auth.invalidate(out.scopes);
                    }
                    self.auth.learn(scheme);
                    drop(gate);
                    auth_retried = true;
                    continue;
                }
            }
            if gate.is_some() && self.auth.scheme().is_none() {
                // The probe got through unauthenticated: this registry lets us in anonymously.
                self.auth.learn(Scheme::Anonymous);
            }
            drop(gate);

            if status.is_redirection()
                && matches!(out.method, Method::GET | Method::HEAD)
                && let Some(location) = response.headers().get(header::LOCATION)
            {
                let target = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .filter(|t| matches!(t.scheme(), "http" | "https"))
                    .ok_or_else(|| RegistryError::Malformed {
                        request: request.clone(),
                        detail: "redirect with an unusable Location".into(),
                    })?;
                if target.scheme() != "https" && !self.transport.allows_http(&authority(&target)) {
                    return Err(RegistryError::InsecureScheme {
                        request,
                        target: target.to_string(),
                    });
                }
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::Malformed {
                        request,
                        detail: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                log::debug!("{request}: redirected to {}", authority(&target));
                url = target;
                continue;
            }

            let may_retry = match out.retry {
                RetryClass::Always => retryable_status(status.as_u16()),
                RetryClass::IfUnprocessed => unprocessed_status(status.as_u16()),
                RetryClass::Never => false,
            };
            if may_retry && retries < policy.max_retries {
                let after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let wait = policy.delay(retries, after);
                log::debug!("{request}: {status}, retrying in {wait:?}");
                retries += 1;
                tokio::time::sleep(wait).await;
                continue;
            }

            let headers = response.headers().clone();
            if out.stream && status.is_success() {
                return Ok((
                    request,
                    Answer {
                        status,
                        headers,
                        body: Vec::new(),
                        stream: Some(response),
                    },
                ));
            }
            let limit = if status.is_success() {
                out.body_limit
            } else {
                ERROR_BODY_LIMIT
            };
            let body = match read_limited(response, limit).await {
                Ok(body) => body,
                Err(BodyError::TooLarge(detail)) if status.is_success() => {
                    return Err(RegistryError::Malformed { request, detail });
                }
                // An error answer's message is a courtesy: keep what arrived.
                Err(BodyError::TooLarge(_)) => Vec::new(),
                Err(BodyError::Read(e)) => {
                    let err = classify_body(e, &request);
                    if out.retry == RetryClass::Always && retries < policy.max_retries {
                        let wait = policy.delay(retries, None);
                        log::debug!("{err}; retrying in {wait:?}");
                        retries += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if status.is_success() {
                        return Err(err);
                    }
                    Vec::new()
                }
            };
            return Ok((
                request,
                Answer {
                    status,
                    headers,
                    body,
                    stream: None,
                },
            ));
        }
    }

    /// Turns a response that was not what the caller wanted into the error that says why.
    async fn failure(
        &self,
        request: RequestId,
        response: Answer,
        scopes: &[Scope],
        repository: &str,
        tag: Option<&str>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let entries = error_entries(&response.body);
        if let Some(e) = immutability(status, &entries) {
            return RegistryError::Immutable {
                request,
                tag: tag.unwrap_or_default().to_owned(),
                status,
                code: e.code.clone(),
                message: e.message.clone(),
            };
        }
        match status {
            401 | 403 => RegistryError::Denied {
                request,
                status,
                credentials: self.auth.source().clone(),
                scope: scopes_display(scopes),
                detail: describe(&entries),
            },
            404 if entries.iter().any(|e| e.code == "NAME_UNKNOWN") || entries.is_empty() => {
                RegistryError::UnknownRepository {
                    request,
                    repository: repository.to_owned(),
                }
            }
            _ => RegistryError::Status {
                request,
                status,
                detail: describe(&entries),
            },
        }
    }

    /// What `reference` (tag or digest) points at, or `None` when the tag or the repository
    /// does not exist. HEAD first; GET (and hash the body) when HEAD gives no digest.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let mut out = Outgoing::new(Method::HEAD, url, &scopes);
        out.accept = Some(MANIFEST_ACCEPT);
        let (request, response) = self.send(out).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => {
                return Err(self
                    .failure(request, response, &scopes, repository, Some(reference))
                    .await);
            }
        }
        let headers = response.headers();
        let Some(claimed) = header_digest(headers, &request)? else {
            log::debug!("{request}: no {DIGEST_HEADER} on HEAD, fetching the manifest");
            return Ok(self
                .get_manifest(repository, reference)
                .await?
                .map(|m| ManifestHead {
                    size: Some(m.bytes.len() as u64),
                    digest: m.digest,
                    media_type: Some(m.media_type),
                }));
        };
        if let Ok(asked) = reference.parse::<Digest>()
            && asked != claimed
        {
            return Err(RegistryError::DigestMismatch {
                request,
                expected: asked,
                actual: claimed,
            });
        }
        Ok(Some(ManifestHead {
            digest: claimed,
            media_type: content_type(headers),
            size: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }))
    }

    /// The manifest's exact bytes and Content-Type; `None` when absent. The body must hash to the
    /// digest asked for and to the one the registry claims.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let mut out = Outgoing::new(Method::GET, url, &scopes);
        out.accept = Some(MANIFEST_ACCEPT);
        out.body_limit = MAX_MANIFEST_BYTES;
        let (request, response) = self.send(out).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => {
                return Err(self
                    .failure(request, response, &scopes, repository, Some(reference))
                    .await);
            }
        }
        let claimed = header_digest(response.headers(), &request)?;
        let media_type = content_type(response.headers()).unwrap_or_default();
        let bytes = response.body;
        let asked = reference.parse::<Digest>().ok();
        let mut digest = Digest::sha256_of(&bytes);
        for expected in [asked, claimed].into_iter().flatten() {
            let Some(actual) = expected.recompute(&bytes) else {
                continue;
            };
            if actual != expected {
                return Err(RegistryError::DigestMismatch {
                    request,
                    expected,
                    actual,
                });
            }
            digest = actual;
        }
        Ok(Some(Manifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// What a reference points at: its digest, or `None` when absent.
    pub async fn resolve(&self, reference: &Reference) -> Result<Option<Digest>, RegistryError> {
        Ok(self
            .head_manifest(&reference.repository, &reference.manifest_ref())
            .await?
            .map(|h| h.digest))
    }

    /// All tags of a repository, following `Link: <…>; rel="next"` pages.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let mut url = self.url(&format!("v2/{repository}/tags/list"));
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            seen.insert(url.clone());
            let mut out = Outgoing::new(Method::GET, url.clone(), &scopes);
            out.body_limit = MAX_TAG_LIST_BYTES;
            let (request, response) = self.send(out).await?;
            if !response.status().is_success() {
                return Err(self
                    .failure(request, response, &scopes, repository, None)
                    .await);
            }
            let next = next_link(response.headers());
            tags.extend(parse_tag_page(&response.body).map_err(|detail| {
                RegistryError::Malformed {
                    request: request.clone(),
                    detail,
                }
            })?);
            let Some(next) = next else { return Ok(tags) };
            let next = url.join(&next).map_err(|e| RegistryError::Malformed {
                request: request.clone(),
                detail: format!("unusable Link header: {e}"),
            })?;
            if seen.contains(&next) {
                return Err(RegistryError::Malformed {
                    request,
                    detail: "the Link header points back to a page already read".into(),
                });
            }
            url = next;
        }
    }

    /// Uploads a manifest's exact bytes under `reference` (tag or digest). Returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let scopes = [Scope::push(repository)];
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let mut out = Outgoing::new(Method::PUT, url, &scopes);
        out.content_type = Some(media_type);
        out.body = Some(Bytes::copy_from_slice(bytes));
        let (request, response) = self.send(out).await?;
        if !response.status().is_success() {
            let tag = reference.parse::<Digest>().is_err().then_some(reference);
            return Err(self
                .failure(request, response, &scopes, repository, tag)
                .await);
        }
        let computed = Digest::sha256_of(bytes);
        if let Some(claimed) = header_digest(response.headers(), &request)?
            && claimed.recompute(bytes).is_some_and(|d| d != claimed)
        {
            return Err(RegistryError::DigestMismatch {
                request,
                expected: computed,
                actual: claimed,
            });
        }
        Ok(computed)
    }

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
            _ => Err(self
                .failure(request, response, &scopes, repository, None)
                .await),
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
            _ => Err(self
                .failure(request, response, &scopes, repository, None)
                .await),
        }
    }

    /// Opens an upload session; returns where to send the data.
    pub async fn start_upload(&self, repository: &str) -> Result<Url, RegistryError> {
        let scopes = [Scope::push(repository)];
        let url = self.url(&format!("v2/{repository}/blobs/uploads/"));
        let out = Outgoing::new(Method::POST, url, &scopes).retry(RetryClass::Always);
        self.session(out, &scopes, repository).await
    }

    /// Uploads a blob: in one PUT when `chunk_size` is `None`, else in PATCH chunks then a PUT.
    /// `session` is from [`start_upload`](Self::start_upload) or a 202 [`Mount`].
    pub async fn upload_blob(
        &self,
        repository: &str,
        session: Url,
        digest: &Digest,
        bytes: &[u8],
        chunk_size: Option<usize>,
    ) -> Result<(), RegistryError> {
        let bytes = Bytes::copy_from_slice(bytes);
        self.upload_bytes(repository, session, digest, bytes, chunk_size)
            .await
    }

    async fn upload_bytes(
        &self,
        repository: &str,
        session: Url,
        digest: &Digest,
        bytes: Bytes,
        chunk_size: Option<usize>,
    ) -> Result<(), RegistryError> {
        let scopes = [Scope::push(repository)];
        let mut location = session;
        let mut rest = bytes;
        if let Some(size) = chunk_size.filter(|s| *s > 0) {
            let mut offset = 0u64;
            while !rest.is_empty() {
                let chunk = rest.split_to(size.min(rest.len()));
                let len = chunk.len() as u64;
                location = self
                    .upload_chunk(repository, location, offset, chunk)
                    .await?;
                offset += len;
            }
        }
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        // Content-addressed: a repeat can only store the same bytes under the same digest.
        let mut out = Outgoing::new(Method::PUT, location, &scopes).retry(RetryClass::Always);
        out.content_type = Some("application/octet-stream");
        out.body = Some(rest);
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
            return Err(self
                .failure(request, response, &scopes, repository, None)
                .await);
        }
        Ok(())
    }

    /// Starts downloading a blob; the caller streams the body (`bytes_stream`) and must check
    /// its digest. Registries that keep blobs elsewhere redirect; credentials stay behind.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<reqwest::Response, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"));
        let mut out = Outgoing::new(Method::GET, url, &scopes);
        out.stream = true;
        let (request, response) = self.send(out).await?;
        match response.stream {
            Some(body) => Ok(body),
            None => Err(self
                .failure(request, response, &scopes, repository, None)
                .await),
        }
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
        out.body = Some(chunk);
        self.session(out, &scopes, repository).await
    }

    /// Closes an upload session with its last bytes (PUT): the registry checks the whole blob
    /// against `digest`.
    pub async fn finish_upload(
        &self,
        repository: &str,
        location: Url,
        digest: &Digest,
        last: Bytes,
    ) -> Result<(), RegistryError> {
        self.upload_bytes(repository, location, digest, last, None)
            .await
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
            return Err(self
                .failure(request, response, scopes, repository, None)
                .await);
        }
        self.location(&request, response.headers())
    }

    fn location(&self, request: &RequestId, headers: &HeaderMap) -> Result<Url, RegistryError> {
        headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.base.join(l).ok())
            .ok_or_else(|| RegistryError::Malformed {
                request: request.clone(),
                detail: "no usable Location header".into(),
            })
    }
}

/// `host[:port]` of a URL, as registries are named.
fn authority(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned())
}

fn header_digest(
    headers: &HeaderMap,
    request: &RequestId,
) -> Result<Option<Digest>, RegistryError> {
    let Some(v) = headers.get(DIGEST_HEADER) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| RegistryError::Malformed {
            request: request.clone(),
            detail: format!("Docker-Content-Digest: {e}"),
        })
}

/// The `rel="next"` target of a `Link` header, as written (relative or absolute).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    next_link_in(
        headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// The `rel="next"` target among `Link` header values.
pub fn next_link_in<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else { break };
            let (target, tail) = (&after[..end], &after[end + 1..]);
            let params_end = tail.find('<').unwrap_or(tail.len());
            let is_next = tail[..params_end].split([';', ',']).any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.trim().to_owned());
            }
            rest = &tail[params_end..];
        }
    }
    None
}

enum BodyError {
    TooLarge(String),
    Read(reqwest::Error),
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(format!(
                "the body is larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A failure while reading a body: a timeout, or the connection reset or closed early.
fn classify_body(e: reqwest::Error, request: &RequestId) -> RegistryError {
    if e.is_timeout() {
        return RegistryError::Timeout {
            request: request.clone(),
        };
    }
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    chain.dedup();
    RegistryError::Http {
        request: request.clone(),
        detail: format!("reading the body: {}", chain.join(": ")),
    }
}

/// The tags of one page of `GET /v2/<name>/tags/list`: `{"tags": [...]}` (`null` or missing
/// when the repository has none).
pub fn parse_tag_page(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    serde_json::from_slice::<Page>(body)
        .map(|p| p.tags.unwrap_or_default())
        .map_err(|e| format!("the tag list is not JSON with \"tags\": {e}"))
}

/// Names what went wrong below HTTP: TLS (and which CAs were trusted), refused, DNS, timeout.
pub(crate) fn classify(e: reqwest::Error, request: &RequestId, trust: &str) -> RegistryError {
    let mut chain = Vec::new();
    let mut tls = None;
    let mut refused = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            tls = Some(r.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                tls = Some(r.to_string());
            }
        }
        cur = err.source();
    }
    chain.dedup();
    // rustls errors can arrive boxed where downcasting cannot reach them; their text is stable.
    if tls.is_none() {
        tls = chain
            .iter()
            .find(|c| c.contains("invalid peer certificate") || c.contains("received fatal alert"))
            .cloned();
    }
    let innermost = chain.last().cloned().unwrap_or_default();
    if let Some(detail) = tls {
        return RegistryError::Tls {
            request: request.clone(),
            ca: trust.to_owned(),
            detail,
        };
    }
    if e.is_timeout() {
        return RegistryError::Timeout {
            request: request.clone(),
        };
    }
    if refused {
        return RegistryError::Connect {
            request: request.clone(),
            detail: "connection refused (is a registry listening there?)".into(),
        };
    }
    if e.is_connect() {
        let detail = if chain.iter().any(|c| c.contains("dns error")) {
            format!("the host name does not resolve ({innermost})")
        } else {
            innermost
        };
        return RegistryError::Connect {
            request: request.clone(),
            detail,
        };
    }
    RegistryError::Http {
        request: request.clone(),
        detail: chain.into_iter().skip(1).collect::<Vec<_>>().join(": "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_next_relative_absolute_and_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?n=2&last=opaque%3D%3D>; rel="next""#),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/a/tags/list?n=2&last=opaque%3D%3D")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"<https://r.example/prev>; rel="prev", <https://r.example/v2/a/tags/list?x=1>;rel=next"#),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://r.example/v2/a/tags/list?x=1")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</x>; rel="prev""#),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn authority_keeps_ports_and_brackets() {
        assert_eq!(
            authority(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()),
            "127.0.0.1:5000"
        );
        assert_eq!(
            authority(&Url::parse("https://ghcr.io/v2/").unwrap()),
            "ghcr.io"
        );
        assert_eq!(authority(&Url::parse("http://[::1]:80/").unwrap()), "[::1]");
        assert_eq!(
            authority(&Url::parse("http://[::1]:5000/").unwrap()),
            "[::1]:5000"
        );
    }
}
