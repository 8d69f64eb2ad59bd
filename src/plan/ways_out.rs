//! What a user can do about a refused immutable tag: the help of the planner's refusal.

use super::decision::Decision;
use crate::policy::OnConflict;

impl Decision {
    /// What a user can do about an immutable tag that holds another image.
    pub(super) fn ways_out(&self) -> String {
        let rerun = format!(
            "if this is a re-run of the same commit: build reproducibly (SOURCE_DATE_EPOCH) so the \
             digest is the same, or set `on-conflict: keep-same-revision` on {} (the image's \
             org.opencontainers.image.revision label, or tagguard's record of its push, proves \
             its commit), or tag with the build ID instead",
            self.rule_label
        );
        match (self.on_conflict, &self.revision) {
            (OnConflict::Refuse, _) => format!(
                "an immutable tag never moves: release a new version, or make the rule mutable if \
                 the tag is meant to move; {rerun}"
            ),
            (OnConflict::KeepSameRevision, Some(other)) => format!(
                "the image the tag holds was built from another commit ({}), not this build's: \
                 an immutable tag never moves; release a new version",
                other.says()
            ),
            (OnConflict::KeepSameRevision, None) => "the image the tag holds has no \
                 org.opencontainers.image.revision label and no record of tagguard's names its \
                 commit, so nothing proves it was built from this commit (it was not pushed by \
                 tagguard, or its record is gone): label your images (docker build --label, or \
                 the labels output of `tagguard tags`), or build reproducibly (SOURCE_DATE_EPOCH)"
                .to_owned(),
        }
    }
}
