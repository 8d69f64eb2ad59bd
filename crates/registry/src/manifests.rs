//! Manifests: look up what a tag or digest points at, fetch the exact bytes, put them back.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::RegistryClient;
use super::digest::Digest;
use super::engine::{Answer, Body, Outgoing};
use super::error::{RegistryError, RequestId};
use super::reference::Reference;

/// Every manifest type tagguard understands, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest read (as containerd and the distribution registry also cap it).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
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

impl RegistryClient {
    /// A HEAD or GET of a manifest: the answer when it is there, `None` on 404, the error that
    /// says why otherwise. A GET reads the body, up to the manifest size limit.
    async fn manifest_request(
        &self,
        method: Method,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(RequestId, Answer)>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let get = method == Method::GET;
        let mut out = Outgoing::new(method, url, &scopes);
        out.accept = Some(MANIFEST_ACCEPT);
        if get {
            out.body_limit = MAX_MANIFEST_BYTES;
            out.what = "the manifest";
        }
        let (request, response) = self.send(out).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some((request, response))),
            _ => Err(self.failure(request, response, &scopes, repository, Some(reference))),
        }
    }

    /// What `reference` (tag or digest) points at, or `None` when the tag or the repository
    /// does not exist. HEAD first; GET (and hash the body) when HEAD gives no digest.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let Some((request, response)) = self
            .manifest_request(Method::HEAD, repository, reference)
            .await?
        else {
            return Ok(None);
        };
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
        let Some((request, response)) = self
            .manifest_request(Method::GET, repository, reference)
            .await?
        else {
            return Ok(None);
        };
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

    /// Uploads a manifest's exact bytes under `reference` (tag or digest). Returns its digest.
    /// Sent once unless the registry provably did not process it (see
    /// [`RegistryError::write_fate`] for what a failure means).
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
        out.body = Body::Bytes(Bytes::copy_from_slice(bytes));
        let (request, response) = self.send(out).await?;
        if !response.status().is_success() {
            let tag = reference.parse::<Digest>().is_err().then_some(reference);
            return Err(self.failure(request, response, &scopes, repository, tag));
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
