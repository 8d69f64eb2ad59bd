//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>`, the manifests whose
//! `subject` is a digest. Registries without it answer 404; callers then read the fallback tag
//! (`sha256-<hex>`, an index) with [`RegistryClient::get_manifest`].

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use super::RegistryClient;
use crate::auth::Scope;
use crate::digest::Digest;
use crate::engine::Outgoing;
use crate::error::RegistryError;
use crate::manifests::MAX_MANIFEST_BYTES;
use crate::tags::next_link;

/// What the referrers API is asked for (OCI index bodies).
const INDEX_ACCEPT: &str = "application/vnd.oci.image.index.v1+json";

impl RegistryClient {
    /// The referrers of `digest` in `repository`, filtered by `artifact_type` when given: the
    /// body of every page (each an OCI index), following `Link: <…>; rel="next"`. `None` when the
    /// registry does not offer the API (404, as the distribution spec says, or 405).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Vec<u8>>>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let mut url = self.url(&format!("v2/{repository}/referrers/{digest}"));
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        loop {
            seen.insert(url.clone());
            let mut out = Outgoing::new(Method::GET, url.clone(), &scopes);
            out.accept = Some(INDEX_ACCEPT);
            out.body_limit = MAX_MANIFEST_BYTES;
            let (request, response) = self.send(out).await?;
            match response.status() {
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED if pages.is_empty() => {
                    return Ok(None);
                }
                s if s.is_success() => {}
                _ => {
                    return Err(self.failure(request, response, &scopes, repository, None));
                }
            }
            let next = next_link(response.headers());
            pages.push(response.body);
            let Some(next) = next else {
                return Ok(Some(pages));
            };
            let next = url.join(&next).map_err(|e| RegistryError::Malformed {
                request: request.clone(),
                detail: format!("unusable Link header: {e}"),
            })?;
            if !seen.insert(next.clone()) || pages.len() >= MAX_PAGES {
                return Err(RegistryError::Pagination {
                    request,
                    detail: format!(
                        "the referrers list goes on past {MAX_PAGES} pages or loops back"
                    ),
                });
            }
            url = next;
        }
    }
}

/// Pages of referrers read at most: a digest with more than this many pages of referrers is
/// not something a client should trust itself to read.
const MAX_PAGES: usize = 100;
