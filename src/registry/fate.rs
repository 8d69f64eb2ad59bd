//! Provisional (pipeline branch): what a failed write says about whether it landed. The registry
//! branch carries the real implementation in `error.rs`; this file goes at merge.

use super::error::RegistryError;

/// Whether a write that failed may still have been applied by the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFate {
    /// Provably not processed: 429, 503, no connection, a 4xx that is not a refusal.
    NotApplied,
    /// The registry's own immutability refusal.
    Refused,
    /// May have landed: another 5xx, a reset or a timeout after the request was sent.
    Unknown,
}

impl RegistryError {
    /// Harbor, Quay, GitLab and ECR come as `Immutable` today; Docker Hub's 403 `DENIED` "tag is
    /// immutable" and ACR's 409 `DENIED` "operation is disallowed" as plain denials.
    pub fn is_refusal(&self) -> bool {
        match self {
            RegistryError::Immutable { .. } => true,
            RegistryError::Denied {
                status: 403,
                detail,
                ..
            } => detail.contains("tag is immutable"),
            RegistryError::Status {
                status: 409,
                detail,
                ..
            } => detail.contains("DENIED") && detail.contains("operation is disallowed"),
            _ => false,
        }
    }

    pub fn write_fate(&self) -> WriteFate {
        use RegistryError::*;
        match self {
            e if e.is_refusal() => WriteFate::Refused,
            Status { status, .. } if *status >= 500 && !matches!(status, 503) => WriteFate::Unknown,
            Connect { .. }
            | Tls { .. }
            | Denied { .. }
            | Token { .. }
            | UnknownRepository { .. }
            | Status { .. }
            | InsecureScheme { .. }
            | CaFile { .. }
            | Credentials { .. } => WriteFate::NotApplied,
            Immutable { .. } => WriteFate::Refused,
            Timeout { .. } | Http { .. } | Malformed { .. } | DigestMismatch { .. } => {
                WriteFate::Unknown
            }
        }
    }
}
