//! What the pre-push hook can find about one pushed release tag, as a [`Finding`] with a stable
//! code.

use crate::report::{Finding, Severity};

/// Codes of the hook's findings.
pub mod code {
    pub const INVALID_VERSION: &str = "tagguard::hook::invalid_version";
    pub const TAG_MOVES: &str = "tagguard::hook::tag_moves";
    pub const TAG_DELETED: &str = "tagguard::hook::tag_deleted";
    pub const IMAGE_EXISTS: &str = "tagguard::hook::image_exists";
    pub const IMAGE_UNLABELLED: &str = "tagguard::hook::image_unlabelled";
    pub const REGISTRY_UNREACHABLE: &str = "tagguard::hook::registry_unreachable";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
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

impl Issue {
    pub fn code(&self) -> &'static str {
        match self {
            Issue::InvalidVersion { .. } => code::INVALID_VERSION,
            Issue::Moves { .. } => code::TAG_MOVES,
            Issue::Deletes { .. } => code::TAG_DELETED,
            Issue::ImageExists {
                revision: Some(_), ..
            } => code::IMAGE_EXISTS,
            Issue::ImageExists { revision: None, .. } => code::IMAGE_UNLABELLED,
            Issue::RegistryUnreachable { .. } => code::REGISTRY_UNREACHABLE,
        }
    }

    /// The finding about git tag `tag`.
    pub fn finding(&self, tag: &str, severity: Severity) -> Finding {
        let finding = Finding::new(self.code(), severity, self.message(tag)).about(tag);
        match self.help(tag, severity) {
            Some(help) => finding.help(help),
            None => finding,
        }
    }

    /// How to get past it, when there is a good way.
    fn help(&self, tag: &str, severity: Severity) -> Option<String> {
        Some(match self {
            Issue::InvalidVersion { example, .. } => format!(
                "a release version is MAJOR.MINOR.PATCH with optional -PRERELEASE and +BUILD, no leading zeros (e.g. {example}); delete the local tag with `git tag -d {tag}` and tag again"
            ),
            Issue::Moves { .. } | Issue::Deletes { .. } => format!(
                "a published release tag is immutable: others may have built from it. Release a new version instead; to drop your local change, `git fetch --force origin tag {tag}`"
            ),
            Issue::ImageExists {
                revision: Some(_), ..
            } => {
                "that version was already released from another commit; release a new version instead".to_owned()
            }
            // Doubt (no label, no answer) refuses only under `registry: strict`; a warning
            // needs no way around it.
            Issue::ImageExists { revision: None, .. } | Issue::RegistryUnreachable { .. }
                if severity == Severity::Warning =>
            {
                return None;
            }
            Issue::ImageExists { revision: None, .. } => {
                "the policy says `hooks: { pre-push: { registry: strict } }`: label images with org.opencontainers.image.revision, or set `registry: warn` to let such pushes go on with a warning".to_owned()
            }
            Issue::RegistryUnreachable { .. } => {
                "the policy says `hooks: { pre-push: { registry: strict } }`; set `registry: warn` to let pushes go on when the registry cannot be reached, or `off` to not ask it".to_owned()
            }
        })
    }

    fn message(&self, tag: &str) -> String {
        match self {
            Issue::InvalidVersion { reason, .. } => {
                format!("release tag {tag} is not valid SemVer 2.0: {reason}")
            }
            Issue::Moves { from, to } => format!(
                "release tag {tag} would move on the remote from {} to {}",
                short(from),
                short(to)
            ),
            Issue::Deletes { oid } => format!(
                "release tag {tag} would be deleted on the remote (it points at {})",
                short(oid)
            ),
            Issue::ImageExists {
                reference,
                commit,
                revision: Some(revision),
            } => format!(
                "release tag {tag}: image {reference} already exists, built from commit {}, not {}",
                short(revision),
                short(commit)
            ),
            Issue::ImageExists {
                reference,
                revision: None,
                ..
            } => format!(
                "release tag {tag}: image {reference} already exists and has no org.opencontainers.image.revision label, so which commit it was built from is unknown"
            ),
            Issue::RegistryUnreachable { what, error } => {
                format!("release tag {tag}: could not ask the registry about {what}: {error}")
            }
        }
    }
}
