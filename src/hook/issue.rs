//! What the pre-push hook can find about one pushed release tag, as a [`Finding`] with a stable
//! code.

use crate::finding::{Finding, Severity};
use crate::revision::Evidence;

/// Codes of the hook's findings.
pub mod code {
    pub const INVALID_VERSION: &str = "tagguard::hook::invalid_version";
    pub const TAG_MOVES: &str = "tagguard::hook::tag_moves";
    pub const TAG_DELETED: &str = "tagguard::hook::tag_deleted";
    pub const IMAGE_EXISTS: &str = "tagguard::hook::image_exists";
    /// Nothing (no revision label, no record of tagguard's) says which commit the image was
    /// built from.
    pub const IMAGE_UNLABELLED: &str = "tagguard::hook::image_unlabelled";
    /// An image of this commit holds the tag, but the rule does not keep it
    /// (`on-conflict: refuse`): CI refuses unless its build is the same image.
    pub const IMAGE_NOT_KEPT: &str = "tagguard::hook::image_not_kept";
    pub const REGISTRY_UNREACHABLE: &str = "tagguard::hook::registry_unreachable";
    /// A release tag was pushed, but the policy names no image: no registry could be asked.
    pub const NO_REGISTRY: &str = "tagguard::hook::no_registry";
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
    /// unknown one: no revision label, no record of tagguard's).
    ImageExists {
        reference: String,
        commit: String,
        revision: Option<Evidence>,
    },
    /// An immutable image tag of this version holds a build of this commit, and its rule
    /// refuses any other image: CI's build must be that very image.
    NotKept { reference: String },
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
            Issue::NotKept { .. } => code::IMAGE_NOT_KEPT,
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
            Issue::ImageExists { revision: None, .. } => {
                "CI refuses to move an immutable tag to an image nothing proves is this commit's: label images with org.opencontainers.image.revision (the labels output of `tagguard tags`), or push them with tagguard (its record is evidence too); or release a new version".to_owned()
            }
            Issue::NotKept { .. } => {
                "set `on-conflict: keep-same-revision` on the rule so CI keeps the build of this commit, or build reproducibly (SOURCE_DATE_EPOCH) so CI builds the same image".to_owned()
            }
            // No answer refuses only under `registry: strict`; a warning needs no way around it.
            Issue::RegistryUnreachable { .. } if severity == Severity::Warning => {
                return None;
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
                "release tag {tag}: image {reference} already exists, built from commit {}, not {} ({})",
                short(&revision.commit),
                short(commit),
                revision.says()
            ),
            Issue::ImageExists {
                reference,
                revision: None,
                ..
            } => format!(
                "release tag {tag}: image {reference} already exists and has no org.opencontainers.image.revision label and no record of tagguard's, so which commit it was built from is unknown"
            ),
            Issue::NotKept { reference } => format!(
                "release tag {tag}: image {reference} already exists, a build of this commit, but its rule says on-conflict: refuse: CI will refuse unless it builds that very image"
            ),
            Issue::RegistryUnreachable { what, error } => {
                format!("release tag {tag}: could not ask the registry about {what}: {error}")
            }
        }
    }
}
