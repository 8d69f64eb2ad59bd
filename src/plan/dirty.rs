//! What is checked before any lookup: immutable tags must name committed source, and a build
//! with no tags at all is said plainly.

use crate::finding::{Finding, Severity, code};
use crate::tags::Computed;

/// A refusal when the work tree has uncommitted changes and the policy computed immutable tags,
/// unless the user allowed it.
pub fn dirty_tree(computed: &Computed, allow_dirty: bool) -> Option<Finding> {
    let tags = computed.dirty_immutable_tags();
    if allow_dirty || tags.is_empty() {
        return None;
    }
    let names: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
    Some(
        Finding::new(
            code::DIRTY_TREE,
            Severity::Refusal,
            format!(
                "the work tree has uncommitted changes, so the immutable tags {} would name an image no commit describes",
                names.join(", ")
            ),
        )
        .help("commit first, or pass --allow-dirty"),
    )
}

/// The findings every run that decides starts with: a plain word when the policy computed no
/// tags, and the dirty-tree refusal.
pub fn precheck(computed: &Computed, allow_dirty: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    if computed.tags.is_empty() {
        findings.push(
            Finding::new(
                code::NO_TAGS,
                Severity::Warning,
                "the policy computed no tags for this build, so there is nothing to look up or push",
            )
            .help("`tagguard tags --format json` shows the build's facts; check the rules' `when:` conditions"),
        );
    }
    findings.extend(dirty_tree(computed, allow_dirty));
    findings
}
