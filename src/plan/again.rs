//! Deciding again: a tag found changed right before its write (or when read back) is decided
//! for what it holds now. A floating tag another writer moved is decided by version: which
//! release the image it now holds belongs to ([`Held`], read by the apply stage).

use semver::Version;

use super::decision::{Action, Decision, Seen, SkipReason, same_digest};
use tagguard_registry::Digest;

/// Which release the image a moved floating tag now holds belongs to, as far as the tags in
/// its repository tell ([`Decision::again`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A release at least as new as this push's, in the tag's scope.
    Release(Version),
    /// A release of the scope older than this push's.
    Older,
    /// No release of the scope holds it (or the tag is not floating, or was not moved).
    Unknown,
}

impl Decision {
    /// The decision again, for a tag found at `current` right before its write (or when read
    /// back). A floating tag that another writer moved is decided by version: `holder` says
    /// which release the image it now holds belongs to. Held by a release at least as new as
    /// this one (`Held::Release`), or by an image that is no release of its scope
    /// (`Held::Unknown`), it is left alone — floating tags only move forward; held by an older
    /// release (`Held::Older`), it is moved forward.
    pub fn again(&self, current: Option<&Digest>, holder: &Held) -> Decision {
        let moved =
            self.floating.is_some() && current.is_some() && current != self.desired.as_ref();
        let held_by = match holder {
            Held::Release(v) => Some(v.to_string()),
            _ => None,
        };
        if moved && *holder != Held::Older {
            return Decision {
                action: Action::Skip,
                current: current.cloned(),
                skip_reason: Some(SkipReason::MovedMeanwhile),
                held_by,
                ..self.clone()
            };
        }
        let seen = Seen {
            current,
            desired: self.desired.as_ref(),
            same_image: same_digest(current, self.desired.as_ref()),
            ..Seen::default()
        };
        self.clone().decided(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::decision::tests::{d, seen, tag};
    use crate::plan::{RefusalReason, decide_one};
    use crate::policy::Floating;

    #[test]
    fn deciding_again_right_before_the_write() {
        let (a, b, c) = (d('a'), d('b'), d('c'));
        let imm = decide_one(
            "r/app",
            &tag("1.2.3", true, None),
            "p.yml",
            seen(None, Some(&a)),
        );
        assert_eq!(imm.action, Action::Create);
        let again = imm.again(Some(&b), &Held::Unknown);
        assert_eq!(
            (again.action, again.reason),
            (Action::Refuse, Some(RefusalReason::PointsElsewhere))
        );
        assert_eq!(
            imm.again(Some(&a), &Held::Unknown).action,
            Action::Unchanged
        );
        let latest = decide_one(
            "r/app",
            &tag("latest", false, Some(Floating::Latest)),
            "p.yml",
            seen(Some(&c), Some(&a)),
        );
        assert_eq!(latest.action, Action::Move);
        let again = latest.again(Some(&b), &Held::Unknown);
        assert_eq!(
            (again.action, again.skip_reason),
            (Action::Skip, Some(SkipReason::MovedMeanwhile))
        );
        assert!(
            again.to_string().contains("another writer moved it"),
            "{again}"
        );
        // Moved to a newer (or the same) release: left, naming it; to an older one: moved
        // forward from where it is now.
        let newer = Version::new(1, 2, 7);
        let left = latest.again(Some(&b), &Held::Release(newer));
        assert_eq!(
            (left.action, left.held_by.as_deref()),
            (Action::Skip, Some("1.2.7"))
        );
        assert!(left.to_string().contains("to release 1.2.7"), "{left}");
        let forward = latest.again(Some(&b), &Held::Older);
        assert_eq!(
            (forward.action, forward.current.as_ref()),
            (Action::Move, Some(&b))
        );
        assert_eq!(
            latest.again(Some(&a), &Held::Older).action,
            Action::Unchanged
        );
        let edge = decide_one(
            "r/app",
            &tag("edge", false, None),
            "p.yml",
            seen(Some(&c), Some(&a)),
        );
        assert_eq!(edge.again(Some(&b), &Held::Unknown).action, Action::Move);
    }
}
