//! What the policy promises about each tag in a repository: which rule's shape the tag has, and
//! so whether it names a version, a commit, floats, or must never move.

use semver::Version;

use super::pattern::{Captures, TagPattern};
use super::record::is_fallback_tag;
use crate::policy::{Floating, Policy};
use crate::release;

/// The policy's rules as patterns, in policy order. When a tag fits several rules the most
/// specific decides ([`TagPattern::specificity`]: `1.2.3-0123abc` is `{{ version }}-{{
/// short_sha }}`'s, not `{{ version }}`'s with a pre-release), then the first.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Each pattern with its rule's index in the policy and what the rule promises.
    rules: Vec<(usize, RuleShape, TagPattern)>,
    /// Templates that give no pattern: their tags are not audited.
    pub unrecognised: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct RuleShape {
    floating: Option<Floating>,
    immutable: bool,
}

/// What the policy says about one tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Role {
    /// The release the tag names (`{{ version }}` rules).
    pub version: Option<Version>,
    /// The commit the tag names (`{{ sha }}` / `{{ short_sha }}` rules).
    pub commit: Option<String>,
    /// A floating tag and its scope: `(major, minor)` as far as the kind has them.
    pub floating: Option<(Floating, Option<u64>, Option<u64>)>,
    pub immutable: bool,
}

impl Rules {
    pub fn new(policy: &Policy) -> Rules {
        let mut rules = Vec::new();
        let mut unrecognised = Vec::new();
        for rule in &policy.rules {
            match TagPattern::new(&rule.template, policy.short_sha_length) {
                Some(p) => rules.push((
                    rule.index,
                    RuleShape {
                        floating: rule.floating,
                        immutable: rule.immutable,
                    },
                    p,
                )),
                None => unrecognised.push(rule.template.clone()),
            }
        }
        Rules {
            rules,
            unrecognised,
        }
    }

    /// The rule whose shape `tag` has — the most specific that fits, then the first — by its
    /// index in the policy, and the values the tag gives its variables. The one answer to
    /// "which rule made this tag" for `audit` and `prune`.
    pub fn rule_of(&self, tag: &str) -> Option<(usize, Captures)> {
        self.best(tag).map(|(index, _, _, caps)| (index, caps))
    }

    /// What the rule whose shape `tag` has ([`Rules::rule_of`]) says about it; a tag no rule
    /// fits but that reads as a release ([`release::version_of_tag`]) has an empty role: it
    /// counts for floating tags, as it does for `push`. `None` for any other tag, and for the
    /// referrers API's fallback tags.
    pub fn role(&self, tag: &str) -> Option<Role> {
        if is_fallback_tag(tag) {
            return None;
        }
        self.best(tag)
            .map(|(_, shape, pattern, caps)| role(shape, pattern, &caps))
            .or_else(|| release::version_of_tag(tag).map(|_| Role::default()))
    }

    fn best(&self, tag: &str) -> Option<(usize, RuleShape, &TagPattern, Captures)> {
        let mut best: Option<(usize, RuleShape, &TagPattern, Captures)> = None;
        for (index, shape, pattern) in &self.rules {
            let Some(caps) = pattern.captures(tag) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(_, _, b, _)| pattern.specificity() > b.specificity())
            {
                best = Some((*index, *shape, pattern, caps));
            }
        }
        best
    }
}

fn role(shape: RuleShape, pattern: &TagPattern, caps: &Captures) -> Role {
    let number = |name: &str| caps.get(name).and_then(|v| v.parse::<u64>().ok());
    let version = caps.get("version").and_then(|v| release::version_of_tag(v));
    let commit = caps
        .get("sha")
        .or_else(|| caps.get("short_sha"))
        .map(|c| c.to_ascii_lowercase());
    let floating = shape.floating.map(|kind| match kind {
        Floating::Latest => (kind, None, None),
        Floating::Major => (kind, number("major"), None),
        Floating::Minor => (kind, number("major"), number("minor")),
    });
    Role {
        // A floating rule's tag names a scope, not a release.
        version: version.filter(|_| floating.is_none() && pattern.uses("version")),
        commit,
        floating,
        immutable: shape.immutable && floating.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&Policy::embedded_default())
    }

    #[test]
    fn the_default_policy_tags_have_their_roles() {
        let r = rules();
        let v = r.role("1.4.2").unwrap();
        assert_eq!(v.version, Some(Version::new(1, 4, 2)));
        assert!(v.immutable && v.floating.is_none());
        assert_eq!(
            r.role("1.4").unwrap().floating,
            Some((Floating::Minor, Some(1), Some(4)))
        );
        assert_eq!(
            r.role("1").unwrap().floating,
            Some((Floating::Major, Some(1), None))
        );
        assert_eq!(
            r.role("latest").unwrap().floating,
            Some((Floating::Latest, None, None))
        );
        let c = r.role("sha-deadbee").unwrap();
        assert_eq!(c.commit.as_deref(), Some("deadbee"));
        assert!(c.immutable);
        assert_eq!(r.role("build-1"), None);
        assert_eq!(
            r.role("v2.0.0"),
            Some(Role::default()),
            "a release of no rule"
        );
        assert_eq!(r.role(&format!("sha256-{}", "a".repeat(64))), None);
    }

    #[test]
    fn the_most_specific_rule_a_tag_fits_decides() {
        let policy = Policy::parse(
            "p.yml",
            "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: \"{{ version }}-{{ short_sha }}\"\n    when: release\n  - template: \"{{ branch }}-{{ build_number }}\"\n    when: { all: [ci, { branch: \".\" }] }\n  - template: \"mr-{{ pr_number }}\"\n    when: pull-request\n    immutable: false\n",
        )
        .unwrap();
        let rules = Rules::new(&policy);
        let r = rules.role("1.3.0-rc.1-0123abc").unwrap();
        assert_eq!(r.version, Some(Version::parse("1.3.0-rc.1").unwrap()));
        assert_eq!(r.commit.as_deref(), Some("0123abc"));
        assert!(!rules.role("mr-7").unwrap().immutable);
        assert!(rules.role("main-7").unwrap().immutable);
    }

    #[test]
    fn mutable_rules_are_not_immutable() {
        let policy = Policy::parse(
            "p.yml",
            "version: 1\ntags:\n  - template: \"mr-{{ pr_number }}\"\n    when: pull-request\n    immutable: false\n",
        )
        .unwrap();
        let role = Rules::new(&policy).role("mr-12").unwrap();
        assert!(!role.immutable);
    }
}
