//! Registry errors. Each names the registry host and the request (method + path), then the cause.

use std::fmt;
use std::path::PathBuf;

use super::credentials::{CredentialError, CredentialSource};
use super::digest::Digest;

/// The request an error is about: `registry ghcr.io: HEAD /v2/acme/app/manifests/1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    pub host: String,
    pub method: String,
    /// Path and query (never credentials: those travel in headers and bodies only).
    pub path: String,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry {}: {} {}", self.host, self.method, self.path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{request}: could not connect: {detail}")]
    Connect { request: RequestId, detail: String },
    #[error(
        "{request}: TLS failed: {detail} (trusted CAs: {ca}); pass the registry's CA certificate with \
         --ca-file FILE, or --insecure-registry HOST for a plain-HTTP registry"
    )]
    Tls {
        request: RequestId,
        ca: String,
        detail: String,
    },
    #[error("{request}: timed out (connect or request timeout; see --timeout)")]
    Timeout { request: RequestId },
    #[error("{request}: {detail}")]
    Http { request: RequestId, detail: String },
    #[error(
        "{request}: {status}: not allowed with credentials from {credentials}, asking for scope {scope:?}{detail}"
    )]
    Denied {
        request: RequestId,
        status: u16,
        credentials: CredentialSource,
        scope: String,
        /// `: <registry's message>` or empty.
        detail: String,
    },
    #[error(
        "{request}: token endpoint {realm} answered {status} for credentials from {credentials} and scope {scope:?}{detail}"
    )]
    Token {
        request: RequestId,
        realm: String,
        status: u16,
        credentials: CredentialSource,
        scope: String,
        detail: String,
    },
    #[error("{request}: repository {repository:?} does not exist")]
    UnknownRepository {
        request: RequestId,
        repository: String,
    },
    /// The registry itself refuses to overwrite the tag (Harbor, Quay, GitLab, ECR immutability).
    #[error(
        "{request}: the registry refuses to overwrite tag {tag:?}: it is immutable there ({status} {code}: {message})"
    )]
    Immutable {
        request: RequestId,
        tag: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{request}: unexpected status {status}{detail}")]
    Status {
        request: RequestId,
        status: u16,
        detail: String,
    },
    #[error("{request}: malformed response: {detail}")]
    Malformed { request: RequestId, detail: String },
    #[error("{request}: content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        request: RequestId,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{request}: refusing plain HTTP to {target}: only loopback hosts and registries given with \
         --insecure-registry may use HTTP"
    )]
    InsecureScheme { request: RequestId, target: String },
    #[error("registry {host}: could not use CA file {path}: {detail}")]
    CaFile {
        host: String,
        path: PathBuf,
        detail: String,
    },
    #[error("registry {host}: {source}")]
    Credentials {
        host: String,
        source: CredentialError,
    },
}

impl RegistryError {
    pub fn request(&self) -> Option<&RequestId> {
        use RegistryError::*;
        match self {
            Connect { request, .. }
            | Tls { request, .. }
            | Timeout { request, .. }
            | Http { request, .. }
            | Denied { request, .. }
            | Token { request, .. }
            | UnknownRepository { request, .. }
            | Immutable { request, .. }
            | Status { request, .. }
            | Malformed { request, .. }
            | DigestMismatch { request, .. }
            | InsecureScheme { request, .. } => Some(request),
            CaFile { .. } | Credentials { .. } => None,
        }
    }
}

/// One entry of the distribution spec's error body `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// The error entries of a response body; empty when the body is not the spec's JSON.
pub fn error_entries(body: &[u8]) -> Vec<ErrorEntry> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

/// `: CODE: message; CODE: message` from an error body, for appending to an error; empty if none.
pub fn describe(entries: &[ErrorEntry]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .collect();
    format!(": {}", parts.join("; "))
}

/// Recognizes the ways registries say "this tag is immutable": Harbor 412 `PRECONDITION`, Quay
/// 409 `TAG_IMMUTABLE`, GitLab 401 `IMMUTABLE_TAG`/`PROTECTED_TAG`, ECR 400 `TAG_INVALID` with
/// "cannot be overwritten because the repository is immutable".
pub fn immutability(status: u16, entries: &[ErrorEntry]) -> Option<&ErrorEntry> {
    entries.iter().find(|e| match (status, e.code.as_str()) {
        (412, "PRECONDITION") => true,
        (409, "TAG_IMMUTABLE") => true,
        (401, "IMMUTABLE_TAG" | "PROTECTED_TAG") => true,
        (400, "TAG_INVALID") => e
            .message
            .contains("cannot be overwritten because the repository is immutable"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_registries_immutability_errors() {
        let harbor = error_entries(br#"{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'app:1.0' configured as immutable."}]}"#);
        assert!(immutability(412, &harbor).is_some());
        assert!(immutability(400, &harbor).is_none());
        let quay =
            error_entries(br#"{"errors":[{"code":"TAG_IMMUTABLE","message":"tag is immutable"}]}"#);
        assert!(immutability(409, &quay).is_some());
        let gitlab =
            error_entries(br#"{"errors":[{"code":"PROTECTED_TAG","message":"protected"}]}"#);
        assert!(immutability(401, &gitlab).is_some());
        let ecr = error_entries(
            br#"{"errors":[{"code":"TAG_INVALID","message":"The image tag '1.0' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}"#,
        );
        assert!(immutability(400, &ecr).is_some());
        let ecr_other =
            error_entries(br#"{"errors":[{"code":"TAG_INVALID","message":"bad tag"}]}"#);
        assert!(immutability(400, &ecr_other).is_none());
        assert!(error_entries(b"<html>").is_empty());
        assert_eq!(describe(&quay), ": TAG_IMMUTABLE: tag is immutable");
    }
}
