//! What the pre-push hook found about one pushed tag.

use std::fmt;

/// Whether a finding stops the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Refuse,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The git tag, e.g. `v1.2.3`.
    pub tag: String,
    pub severity: Severity,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The tag has the release pattern's shape but its version is not SemVer 2.0.
    InvalidVersion { reason: String, example: String },
    /// The remote has the tag at another object; the push would move it.
    Moves { from: String, to: String },
    /// The push would delete a release tag the remote has.
    Deletes { oid: String },
    /// An immutable image tag of this version exists, built from another commit (or from an
    /// unknown one: no `org.opencontainers.image.revision` label).
    ImageExists {
        reference: String,
        commit: String,
        revision: Option<String>,
    },
    /// The registry could not be asked.
    RegistryUnreachable { what: String, error: String },
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(12)]
}

impl Finding {
    /// How to get past it, when there is a good way.
    pub fn hint(&self) -> Option<String> {
        let tag = &self.tag;
        Some(match &self.problem {
            Problem::InvalidVersion { example, .. } => format!(
                "a release version is MAJOR.MINOR.PATCH with optional -PRERELEASE and +BUILD, no leading zeros (e.g. {example}); delete the local tag with `git tag -d {tag}` and tag again"
            ),
            Problem::Moves { .. } | Problem::Deletes { .. } => format!(
                "a published release tag is immutable: others may have built from it. Release a new version instead; to drop your local change, `git fetch --force origin tag {tag}`"
            ),
            Problem::ImageExists {
                revision: Some(_), ..
            } => {
                "that version was already released from another commit; release a new version instead".to_owned()
            }
            // Doubt (no label, no answer) refuses only under `registry: strict`; a warning
            // needs no way around it.
            Problem::ImageExists { revision: None, .. } | Problem::RegistryUnreachable { .. }
                if self.severity == Severity::Warn =>
            {
                return None;
            }
            Problem::ImageExists { revision: None, .. } => {
                "the policy says `hooks: { pre-push: { registry: strict } }`: label images with org.opencontainers.image.revision, or set `registry: warn` to let such pushes go on with a warning".to_owned()
            }
            Problem::RegistryUnreachable { .. } => {
                "the policy says `hooks: { pre-push: { registry: strict } }`; set `registry: warn` to let pushes go on when the registry cannot be reached, or `off` to not ask it".to_owned()
            }
        })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = &self.tag;
        match &self.problem {
            Problem::InvalidVersion { reason, .. } => {
                write!(f, "release tag {tag} is not valid SemVer 2.0: {reason}")
            }
            Problem::Moves { from, to } => write!(
                f,
                "release tag {tag} would move on the remote from {} to {}",
                short(from),
                short(to)
            ),
            Problem::Deletes { oid } => write!(
                f,
                "release tag {tag} would be deleted on the remote (it points at {})",
                short(oid)
            ),
            Problem::ImageExists {
                reference,
                commit,
                revision: Some(revision),
            } => write!(
                f,
                "release tag {tag}: image {reference} already exists, built from commit {}, not {}",
                short(revision),
                short(commit)
            ),
            Problem::ImageExists {
                reference,
                revision: None,
                ..
            } => write!(
                f,
                "release tag {tag}: image {reference} already exists and has no org.opencontainers.image.revision label, so which commit it was built from is unknown"
            ),
            Problem::RegistryUnreachable { what, error } => write!(
                f,
                "release tag {tag}: could not ask the registry about {what}: {error}"
            ),
        }
    }
}
