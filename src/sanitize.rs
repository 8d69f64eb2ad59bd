//! Turning arbitrary names (branches, git tags) into valid OCI tag text (checked by
//! [`tagguard_registry::tag_problem`]).

use sha2::{Digest, Sha256};

/// A sanitized name is at most this long, leaving room in a 128-character tag for a build ID
/// and a timestamp beside it.
pub const MAX_COMPONENT_LEN: usize = 80;

/// A sanitized CI counter (`pr_number`, `build_id`, `build_number`) is at most this long: a
/// `u64` has 20 digits, so real counters are never cut, and a branch, a build ID and a
/// timestamp fit in one tag (80 + 1 + 32 + 1 + 14 = 128).
pub const MAX_ID_LEN: usize = 32;

/// Sanitizes a name for use inside a tag, as docker/metadata-action does, so migrating users
/// get the same tags: each run of characters outside `[A-Za-z0-9._-]` becomes one `-`, case is
/// kept, and leading `.`/`-` are stripped.
///
/// Two things metadata-action leaves to fail later are settled here: a name longer than
/// [`MAX_COMPONENT_LEN`] keeps its first characters and ends in `-` plus 7 hex digits of the
/// SHA-256 of the original name (so two long names that share a prefix stay distinct), and a
/// name with nothing left becomes those 7 hex digits alone.
pub fn tag_component(name: &str) -> String {
    within(name, MAX_COMPONENT_LEN)
}

/// Sanitizes a CI counter like [`tag_component`], cut at [`MAX_ID_LEN`] by the same rule.
pub fn tag_id(value: &str) -> String {
    within(value, MAX_ID_LEN)
}

fn within(name: &str, max: usize) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let trimmed = out.trim_start_matches(['.', '-']);
    if trimmed.is_empty() {
        return short_hash(name);
    }
    if trimmed.len() <= max {
        return trimmed.to_owned();
    }
    // ASCII only by now, so byte slicing is character slicing.
    let keep = max - 8;
    format!("{}-{}", &trimmed[..keep], short_hash(name))
}

fn short_hash(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..7]
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tagguard_registry::tag_problem;

    #[test]
    fn like_metadata_action() {
        assert_eq!(tag_component("feature/Foo@bar"), "feature-Foo-bar");
        assert_eq!(tag_component("-x"), "x");
        assert_eq!(tag_component(".hidden"), "hidden");
        assert_eq!(tag_component("a//b"), "a-b");
        assert_eq!(tag_component("release/1.2_x"), "release-1.2_x");
        assert_eq!(tag_component("Ünïcödé"), "n-c-d-");
    }

    #[test]
    fn names_with_nothing_left_become_a_hash() {
        let a = tag_component("功能");
        let b = tag_component("测试");
        assert_eq!(a.len(), 7);
        assert_ne!(a, b);
        assert_eq!(tag_problem(&a), None);
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let a = tag_component(&format!("{}a", "x".repeat(199)));
        let b = tag_component(&format!("{}b", "x".repeat(199)));
        assert_eq!(a.len(), MAX_COMPONENT_LEN);
        assert_ne!(a, b);
        assert!(a.starts_with(&"x".repeat(72)));
    }

    #[test]
    fn tag_grammar() {
        assert_eq!(tag_problem("1.2.3"), None);
        assert_eq!(tag_problem("_x"), None);
        assert!(tag_problem("").is_some());
        assert!(tag_problem("-x").is_some());
        assert!(tag_problem(".x").is_some());
        assert!(tag_problem("a/b").is_some());
        assert!(tag_problem("1.2.3+build").is_some());
        assert!(tag_problem(&"a".repeat(129)).is_some());
        assert_eq!(tag_problem(&"a".repeat(128)), None);
    }

    #[test]
    fn counters_are_cut_at_their_own_length() {
        assert_eq!(tag_id("18446744073709551615"), "18446744073709551615");
        let uuid = tag_id("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0-and-more");
        assert_eq!(uuid.len(), MAX_ID_LEN);
        assert!(uuid.starts_with("0b1c2d3e-4f50-6172-8394-"), "{uuid}");
    }

    proptest! {
        #[test]
        fn any_name_becomes_a_valid_tag(name in any::<String>()) {
            let tag = tag_component(&name);
            prop_assert_eq!(tag_problem(&tag), None, "{:?} -> {:?}", name, tag);
            prop_assert!(tag.len() <= MAX_COMPONENT_LEN);
        }

        #[test]
        fn branch_like_names_become_valid_tags(name in "[ -~]{0,300}") {
            let tag = tag_component(&name);
            prop_assert_eq!(tag_problem(&tag), None, "{:?} -> {:?}", name, tag);
        }
    }
}
