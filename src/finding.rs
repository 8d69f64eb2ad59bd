//! A finding: one thing a run has to tell about one tag (or git tag), with a stable code. The
//! planner's refusals, the dirty-tree check, the registry's own refusals, races, unsure writes,
//! failures, the pre-push hook's, the audit's and prune's findings are all findings; every output
//! renders them.
//!
//! The most shared type of the pipeline, so it depends on nothing of it: this module imports
//! no other module of the crate (`tests/it/architecture.rs` holds it to that). [`crate::report`]
//! collects findings into a run's report.

use std::fmt;

use serde::Serialize;

/// How much a finding weighs. The exit code follows the heaviest (`report::Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth saying; the run still succeeds.
    Warning,
    /// Refused by the policy or by the registry (exit 3).
    Refusal,
    /// Something failed, or could not be proven (exit 1).
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Refusal => "refused",
            Severity::Error => "error",
        }
    }
}

/// Stable codes, one per kind of finding. Tools may match on them; they never change meaning.
pub mod code {
    /// An immutable tag points at another image than the one to be pushed.
    pub const IMMUTABLE_TAG_TAKEN: &str = "tagguard::check::immutable_tag_taken";
    /// An immutable tag exists and no source was given to prove it is the same image.
    pub const IMMUTABLE_TAG_UNPROVEN: &str = "tagguard::check::immutable_tag_unproven";
    /// Immutable tags computed from a work tree with uncommitted changes.
    pub const DIRTY_TREE: &str = "tagguard::check::dirty_tree";
    /// The policy computed no tag at all.
    pub const NO_TAGS: &str = "tagguard::check::no_tags";
    /// Looking tags up failed.
    pub const CHECK_FAILED: &str = "tagguard::check::failed";
    /// The registry itself refused a tag write (its immutability setting).
    pub const REGISTRY_REFUSED: &str = "tagguard::push::registry_refused";
    /// Between the decision and the write, another writer put an immutable tag elsewhere.
    pub const TAKEN_MEANWHILE: &str = "tagguard::push::taken_meanwhile";
    /// Another writer moved a floating tag between the plan and the write; it was left alone.
    pub const MOVED_MEANWHILE: &str = "tagguard::push::moved_meanwhile";
    /// A tag did not hold what this push wrote when read back: another writer got in.
    pub const RACE: &str = "tagguard::push::race";
    /// The write of an immutable tag could not be proven free of a race (see `--settle`).
    pub const UNSETTLED: &str = "tagguard::push::unsettled";
    /// A tag write whose fate is unknown and could not be looked up.
    pub const UNSURE: &str = "tagguard::push::unsure";
    /// A tag write, a content copy or a read-back failed.
    pub const PUSH_FAILED: &str = "tagguard::push::failed";
    /// A planned tag write that was not sent because an earlier phase did not complete.
    pub const NOT_WRITTEN: &str = "tagguard::push::not_written";
    /// The record of what a push wrote (for `tagguard audit`) could not be written; the push
    /// itself stands.
    pub const RECORD_FAILED: &str = "tagguard::push::record_failed";
    /// `audit` could not finish: the registry failed, or served something unreadable.
    pub const AUDIT_FAILED: &str = "tagguard::audit::failed";
    /// `audit`: a floating tag is not at the newest stable release of its scope.
    pub const AUDIT_FLOATING_BEHIND: &str = "tagguard::audit::floating_behind";
    /// `audit`: a version tag's image says (`org.opencontainers.image.version`) it is another
    /// version, and no record of tagguard's says a release adopted it.
    pub const AUDIT_VERSION_LABEL: &str = "tagguard::audit::version_label";
    /// `audit`: a commit tag's image says (`org.opencontainers.image.revision`) it is another
    /// commit.
    pub const AUDIT_REVISION_LABEL: &str = "tagguard::audit::revision_label";
    /// `audit`: an immutable tag points elsewhere than where tagguard wrote it.
    pub const AUDIT_MOVED: &str = "tagguard::audit::moved";
    /// `prune`: a delete (or the lookup before it) failed; the tag is still there.
    pub const PRUNE_FAILED: &str = "tagguard::prune::failed";
    /// `prune`: the registry does not delete (deletes are off, or it has no OCI delete).
    pub const PRUNE_UNSUPPORTED: &str = "tagguard::prune::unsupported";
    /// `prune`: the registry's own protection (a lock, an immutability rule, a protected tag)
    /// refused a delete; tagguard does not work around it, and the tag is still there.
    pub const PRUNE_REFUSED: &str = "tagguard::prune::refused";
    /// `prune`: a tag moved between the plan and its delete; decided again, it is kept.
    pub const PRUNE_MOVED: &str = "tagguard::prune::moved_meanwhile";
    /// `prune`: the plan would touch a protected tag or something a kept tag needs. Cannot
    /// happen by design (`prune::reach`); checked before any delete, and nothing is deleted.
    pub const PRUNE_PROTECTED: &str = "tagguard::prune::would_touch_protected";
    /// `prune`: a planned delete not attempted because an earlier step failed.
    pub const PRUNE_NOT_DELETED: &str = "tagguard::prune::not_deleted";
    /// `prune`: which branches exist or which pull requests are open could not be learned; the
    /// tags that depend on it are kept.
    pub const PRUNE_LIVENESS_UNKNOWN: &str = "tagguard::prune::liveness_unknown";
    /// `prune`: the record of what prune deleted could not be written; the deletes stand.
    pub const PRUNE_RECORD_FAILED: &str = "tagguard::prune::record_failed";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, e.g. `tagguard::push::registry_refused`.
    pub code: String,
    /// What it is about: `image:tag`, or a git tag for the hook; null for the whole run.
    pub subject: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// What to do about it, when there is a good way.
    pub help: Option<String>,
}

impl Finding {
    pub fn new(code: &str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            code: code.to_owned(),
            subject: None,
            severity,
            message: message.into(),
            help: None,
        }
    }

    pub fn about(mut self, subject: impl Into<String>) -> Finding {
        self.subject = Some(subject.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// An operational error as a finding: its own diagnostic code (or `fallback`), its message
    /// and its help.
    pub fn from_error(error: &dyn miette::Diagnostic, fallback: &str) -> Finding {
        Finding {
            code: error
                .code()
                .map_or_else(|| fallback.to_owned(), |c| c.to_string()),
            subject: None,
            severity: Severity::Error,
            message: error.to_string(),
            help: error.help().map(|h| h.to_string()),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Finding {}

impl miette::Diagnostic for Finding {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Warning => miette::Severity::Warning,
            Severity::Refusal | Severity::Error => miette::Severity::Error,
        })
    }
}
