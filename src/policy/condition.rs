//! `when:` conditions of a tag rule.

use regex::Regex;
use semver::{Version, VersionReq};

/// When a rule applies.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every build (the default).
    Always,
    /// HEAD carries a release tag.
    Release,
    /// … that is not a pre-release.
    StableRelease,
    /// … that is a pre-release.
    Prerelease,
    /// A pull request (GitHub) or merge request (GitLab) build.
    PullRequest,
    /// The CI builds a tag (`GITHUB_REF=refs/tags/…`, `CI_COMMIT_TAG`, `--git-tag`).
    TagBuild,
    /// A CI build: its build ID and build number are known.
    Ci,
    /// The branch name matches (a regex search: anchor it to match whole names).
    Branch(Regex),
    /// A tag at HEAD matches.
    GitTag(Regex),
    /// A release whose version satisfies the SemVer requirement, e.g. `>=1.0.0`.
    Version(VersionReq),
    /// The CI's event is one of these (`GITHUB_EVENT_NAME`, GitLab's `CI_PIPELINE_SOURCE`),
    /// e.g. `schedule`.
    Event(Vec<String>),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// The names usable as a plain `when: NAME`.
pub const NAMED: &[&str] = &[
    "always",
    "release",
    "stable-release",
    "prerelease",
    "pull-request",
    "tag-build",
    "ci",
];

/// The keys usable in a `when: { KEY: … }` mapping.
pub const KEYS: &[&str] = &["branch", "git-tag", "version", "event", "all", "any", "not"];

impl Condition {
    pub fn named(name: &str) -> Option<Condition> {
        Some(match name {
            "always" => Condition::Always,
            "release" => Condition::Release,
            "stable-release" => Condition::StableRelease,
            "prerelease" => Condition::Prerelease,
            "pull-request" => Condition::PullRequest,
            "tag-build" => Condition::TagBuild,
            "ci" => Condition::Ci,
            _ => return None,
        })
    }

    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Release => facts.version.is_some(),
            Condition::StableRelease => facts.version.is_some_and(|v| v.pre.is_empty()),
            Condition::Prerelease => facts.version.is_some_and(|v| !v.pre.is_empty()),
            Condition::PullRequest => facts.pull_request,
            Condition::TagBuild => facts.tag_build,
            Condition::Ci => facts.ci,
            Condition::Branch(re) => facts.branch.is_some_and(|b| re.is_match(b)),
            Condition::GitTag(re) => facts.git_tags.iter().any(|t| re.is_match(t)),
            Condition::Version(req) => facts.version.is_some_and(|v| req.matches(v)),
            Condition::Event(names) => facts.event.is_some_and(|e| names.iter().any(|n| n == e)),
            Condition::All(all) => all.iter().all(|c| c.holds(facts)),
            Condition::Any(any) => any.iter().any(|c| c.holds(facts)),
            Condition::Not(c) => !c.holds(facts),
        }
    }
}

/// What conditions are decided on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub version: Option<&'a Version>,
    pub pull_request: bool,
    /// The CI (or `--git-tag`) says this build is of a tag.
    pub tag_build: bool,
    pub ci: bool,
    /// The raw branch name, before sanitizing.
    pub branch: Option<&'a str>,
    pub git_tags: &'a [String],
    /// The CI's event name, e.g. `push`, `schedule`, `merge_request_event`.
    pub event: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(version: Option<&'a Version>, branch: Option<&'a str>) -> Facts<'a> {
        Facts {
            version,
            pull_request: false,
            tag_build: false,
            ci: false,
            branch,
            git_tags: &[],
            event: None,
        }
    }

    #[test]
    fn release_kinds() {
        let stable = Version::parse("1.2.3").unwrap();
        let pre = Version::parse("1.2.3-rc.1").unwrap();
        let meta = Version::parse("1.2.3+build.7").unwrap();
        assert!(Condition::StableRelease.holds(&facts(Some(&stable), None)));
        assert!(Condition::StableRelease.holds(&facts(Some(&meta), None)));
        assert!(!Condition::StableRelease.holds(&facts(Some(&pre), None)));
        assert!(Condition::Prerelease.holds(&facts(Some(&pre), None)));
        assert!(!Condition::Release.holds(&facts(None, None)));
    }

    #[test]
    fn branch_is_a_regex_search() {
        let c = Condition::Branch(Regex::new("main").unwrap());
        assert!(c.holds(&facts(None, Some("not-main-really"))));
        let c = Condition::Branch(Regex::new("^main$").unwrap());
        assert!(!c.holds(&facts(None, Some("not-main-really"))));
        assert!(!c.holds(&facts(None, None)));
    }

    #[test]
    fn version_requirements_exclude_prereleases_and_zero() {
        let c = Condition::Version(VersionReq::parse(">=1").unwrap());
        assert!(c.holds(&facts(Some(&Version::parse("1.0.0").unwrap()), None)));
        assert!(!c.holds(&facts(Some(&Version::parse("0.9.0").unwrap()), None)));
        assert!(!c.holds(&facts(Some(&Version::parse("2.0.0-rc.1").unwrap()), None)));
    }
}
