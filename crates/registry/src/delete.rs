//! Deletes: `DELETE /v2/<name>/manifests/<tag or digest>`. Whether a registry deletes at all,
//! and whether it deletes a tag by name, differs: the answer says which, so the caller can fall
//! back (a registry that deletes by digest only) or name the registry's own lifecycle feature.
//! A registry's own protection (`refusal.rs`) is a [`RegistryError::Refused`], never a reason to
//! fall back.

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::RegistryClient;
use super::engine::Outgoing;
use super::error::{RegistryError, error_entries};
use super::retry::RetryClass;

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The registry removed it.
    Done,
    /// It was not there (any more).
    Absent,
    /// The registry does not delete this way: deletes are off, or (for a tag) it deletes by
    /// digest only. `detail` is the registry's own word.
    Unsupported { status: u16, detail: String },
}

impl RegistryClient {
    /// Deletes the manifest `reference` (a tag or a digest) from `repository`. By digest a repeat
    /// cannot change the outcome (a delete that happened answers the repeat with
    /// [`Deleted::Absent`]), so every transient failure is retried; by tag only when the
    /// registry provably did not process it (a repeat could delete the tag someone wrote again).
    pub async fn delete_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Deleted, RegistryError> {
        let scopes = [Scope::delete(repository)];
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let by_tag = reference.parse::<super::Digest>().is_err();
        let class = if by_tag {
            RetryClass::IfUnprocessed
        } else {
            RetryClass::Always
        };
        let out = Outgoing::new(Method::DELETE, url, &scopes).retry(class);
        let (request, response) = self.send(out).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(Deleted::Done);
        }
        let entries = error_entries(&response.body);
        let code = |c: &str| entries.iter().any(|e| e.code == c);
        let tag = by_tag.then_some(reference);
        // The registry's own protection (a lock, an immutability rule, a protected tag) is a
        // refusal whatever its status: never "does not delete this way", which the caller works
        // around (ACR answers a locked delete with 405, as distribution answers deletes that are off).
        if super::refusal::recognise(status.as_u16(), &entries).is_some() {
            return Err(self.failure(request, response, &scopes, repository, tag));
        }
        match status {
            StatusCode::NOT_FOUND if code("MANIFEST_UNKNOWN") => Ok(Deleted::Absent),
            StatusCode::METHOD_NOT_ALLOWED => Ok(Deleted::Unsupported {
                status: status.as_u16(),
                detail: super::error::describe(&entries),
            }),
            // distribution 2.x answers a tag delete with DIGEST_INVALID or UNSUPPORTED.
            StatusCode::BAD_REQUEST
                if code("UNSUPPORTED") || (by_tag && code("DIGEST_INVALID")) =>
            {
                Ok(Deleted::Unsupported {
                    status: status.as_u16(),
                    detail: super::error::describe(&entries),
                })
            }
            _ => Err(self.failure(request, response, &scopes, repository, tag)),
        }
    }
}
