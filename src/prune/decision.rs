//! What prune decided for one tag, and why: the one value every output renders.

use std::fmt;

use serde::Serialize;

use tagguard_registry::Digest;

/// The three outcomes of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A temporary tag whose retention is over: it is removed (as a tag).
    Delete,
    /// A temporary tag still kept by its rule's `retain`.
    Keep,
    /// Never touched: immutable, floating, matching no rule, a rule without `retain`, or a
    /// referrer tag (signatures, attestations, tagguard's records).
    Protect,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Delete, Verdict::Keep, Verdict::Protect];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Delete => "delete",
            Verdict::Keep => "keep",
            Verdict::Protect => "protect",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The decision for one tag of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagDecision {
    /// The image repository as the policy (or `--image`) names it.
    pub image: String,
    pub tag: String,
    /// Where the tag pointed when it was looked up.
    pub digest: Digest,
    pub verdict: Verdict,
    /// Stable short names of why (`branch-exists`, `branch-gone`, `pr-open`, `pr-closed`,
    /// `newest`, `not-newest`, `younger-than`, `older-than`, `age-unknown`, `liveness-unknown`,
    /// `immutable`, `floating`, `no-rule`, `no-retain`, `unrecognised-rule`, `referrer`,
    /// `placeholder`, `moved`).
    pub why: Vec<&'static str>,
    /// The same in a sentence.
    pub reason: String,
    /// Index of the policy rule whose shape the tag has (from 0), when one has.
    pub rule: Option<usize>,
}

impl TagDecision {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}
