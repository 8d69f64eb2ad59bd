//! Immutable tags must name committed source.

use crate::report::{Finding, Severity, code};
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
