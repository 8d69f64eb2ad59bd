//! Releases: which release, if any, this build is (the release tags at HEAD read as SemVer
//! 2.0); which version an image tag names; and which releases a floating tag's scope holds.
//! `plan` (forward-only floating tags), `audit` (floating tags behind) and `apply` all ask here.

use semver::Version;

use crate::policy::{Floating, ReleasePattern};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The git tag, e.g. `v1.4.2` or `api/v1.4.2`.
    pub git_tag: String,
    pub version: Version,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic, PartialEq, Eq)]
#[error("release tag `{git_tag}` is not valid SemVer 2.0: {reason}")]
#[diagnostic(
    code(tagguard::release::invalid_semver),
    help(
        "a release version is MAJOR.MINOR.PATCH with optional -PRERELEASE and +BUILD, no leading zeros (e.g. {example}); fix or delete the tag"
    )
)]
pub struct InvalidVersion {
    pub git_tag: String,
    pub reason: String,
    pub example: String,
}

/// The release among `tags` (tags at HEAD, and the CI's tag): the highest SemVer version of
/// those that have the pattern's shape. A tag with the shape but not valid SemVer is an error
/// rather than silently not a release.
pub fn find(pattern: &ReleasePattern, tags: &[String]) -> Result<Option<Release>, InvalidVersion> {
    let mut best: Option<Release> = None;
    for tag in tags {
        let Some(text) = pattern.version_text(tag) else {
            continue;
        };
        let version = parse(text).map_err(|reason| InvalidVersion {
            git_tag: tag.clone(),
            reason,
            example: pattern.git_tag("1.4.2"),
        })?;
        if best.as_ref().is_none_or(|b| version > b.version) {
            best = Some(Release {
                git_tag: tag.clone(),
                version,
            });
        }
    }
    Ok(best)
}

/// The longest version tagguard releases, so that every tag made from one has a known
/// length (`template::length`); SemVer itself sets no limit.
pub const MAX_VERSION_LEN: usize = 80;

fn parse(text: &str) -> Result<Version, String> {
    if text.len() > MAX_VERSION_LEN {
        return Err(format!(
            "its version is {} characters long; tagguard releases versions of up to {MAX_VERSION_LEN}, so that every tag made from one fits in 128",
            text.len()
        ));
    }
    Version::parse(text).map_err(|e| {
        let parts = text
            .split(['-', '+'])
            .next()
            .unwrap_or(text)
            .split('.')
            .count();
        if parts < 3 {
            format!("{text:?} has {parts} of the 3 numbers MAJOR.MINOR.PATCH")
        } else {
            e.to_string()
        }
    })
}

/// The version as it may appear in a tag: OCI tags cannot hold `+`, so build metadata is
/// joined with `_` (as Helm does for charts in OCI registries): `1.2.3+build.7` → `1.2.3_build.7`.
pub fn tag_text(version: &Version) -> String {
    version.to_string().replace('+', "_")
}

/// The version an image tag names, if it reads as one: SemVer 2.0 with an optional leading `v`,
/// `_` read as `+` (the way [`tag_text`] writes build metadata). `1.2.3`, `v1.2.3-rc.1` and
/// `1.2.3_b.7` do; `1.2`, `latest` and `sha-0123456` do not. Every tag in a repository that
/// reads as a version counts as a release, whoever wrote it.
pub fn version_of_tag(tag: &str) -> Option<Version> {
    let text = tag.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    Version::parse(&text.replace('_', "+")).ok()
}

/// SemVer precedence: build metadata does not count.
pub fn cmp_precedence(a: &Version, b: &Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

/// The releases a floating tag follows: every stable release (`latest`), one major line (`1`:
/// 1.x.y) or one minor line (`1.4`: 1.4.y). Pre-releases are in no scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub kind: Floating,
    /// The major version, for `major` and `minor` scopes.
    pub major: Option<u64>,
    /// The minor version, for `minor` scopes.
    pub minor: Option<u64>,
}

impl Scope {
    /// The scope of kind `kind` that `version` belongs to.
    pub fn of(kind: Floating, version: &Version) -> Scope {
        Scope {
            kind,
            major: Some(version.major),
            minor: Some(version.minor),
        }
    }

    pub fn contains(&self, v: &Version) -> bool {
        v.pre.is_empty()
            && match self.kind {
                Floating::Latest => true,
                Floating::Major => self.major == Some(v.major),
                Floating::Minor => self.major == Some(v.major) && self.minor == Some(v.minor),
            }
    }
}

/// Every stable release in `scope` among `tags` (see [`version_of_tag`]), newest first, each
/// with its tag.
pub fn releases_in_scope<'a>(
    scope: &Scope,
    tags: impl IntoIterator<Item = &'a str>,
) -> Vec<(Version, &'a str)> {
    let mut found: Vec<(Version, &str)> = tags
        .into_iter()
        .filter_map(|t| {
            version_of_tag(t)
                .filter(|v| scope.contains(v))
                .map(|v| (v, t))
        })
        .collect();
    found.sort_by(|a, b| cmp_precedence(&b.0, &a.0));
    found
}

/// The newest stable release in `scope` among `tags` (a repository's tags, see
/// [`version_of_tag`]): its version and every tag that names it (build metadata aside, `1.2.3`
/// and `v1.2.3_b.2` name the same release). `None` when no tag is a release in the scope.
pub fn newest_in_scope<'a>(
    scope: &Scope,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<(Version, Vec<&'a str>)> {
    let mut newest: Option<(Version, Vec<&'a str>)> = None;
    for tag in tags {
        let Some(v) = version_of_tag(tag).filter(|v| scope.contains(v)) else {
            continue;
        };
        match &mut newest {
            Some((best, tags)) => match cmp_precedence(&v, best) {
                std::cmp::Ordering::Greater => newest = Some((v, vec![tag])),
                std::cmp::Ordering::Equal => tags.push(tag),
                std::cmp::Ordering::Less => {}
            },
            None => newest = Some((v, vec![tag])),
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_that_name_versions() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(version_of_tag("1.2.3"), Some(v("1.2.3")));
        assert_eq!(version_of_tag("v1.2.3-rc.1"), Some(v("1.2.3-rc.1")));
        assert_eq!(version_of_tag("1.2.3_b.7"), Some(v("1.2.3+b.7")));
        for not in ["1.2", "1", "latest", "sha-0123456", "v", "01.2.3"] {
            assert_eq!(version_of_tag(not), None, "{not}");
        }
    }

    #[test]
    fn the_newest_release_of_a_scope_with_every_tag_naming_it() {
        let repo = [
            "2.0.0",
            "2.0",
            "latest",
            "1.9.0",
            "1.9.1",
            "v1.9.1_b.2",
            "3.0.0-rc.1",
            "sha-abc",
        ];
        let newest = |kind, major, minor| {
            newest_in_scope(&Scope { kind, major, minor }, repo)
                .map(|(v, tags)| (v.to_string(), tags))
        };
        assert_eq!(
            newest(Floating::Latest, None, None),
            Some(("2.0.0".into(), vec!["2.0.0"]))
        );
        assert_eq!(
            newest(Floating::Major, Some(1), None),
            Some(("1.9.1".into(), vec!["1.9.1", "v1.9.1_b.2"]))
        );
        assert_eq!(newest(Floating::Minor, Some(1), Some(8)), None);
        assert_eq!(newest(Floating::Major, Some(3), None), None, "pre-releases");
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn picks_the_highest_matching_release() {
        let p = ReleasePattern::default();
        let r = find(&p, &tags(&["v1.2.3", "v1.10.0", "other", "v1.10.0-rc.1"]))
            .unwrap()
            .unwrap();
        assert_eq!(r.git_tag, "v1.10.0");
    }

    #[test]
    fn invalid_semver_says_why() {
        let p = ReleasePattern::default();
        let e = find(&p, &tags(&["v1.2"])).unwrap_err();
        assert_eq!(e.reason, "\"1.2\" has 2 of the 3 numbers MAJOR.MINOR.PATCH");
        let e = find(&p, &tags(&["v01.2.3"])).unwrap_err();
        assert!(e.reason.contains("leading zero"), "{}", e.reason);
    }

    #[test]
    fn tags_without_the_shape_are_not_releases() {
        let p = ReleasePattern::parse("api/v{version}").unwrap();
        assert_eq!(
            find(&p, &tags(&["v1.2.3", "web/v1.0.0", "api/vnext"])).unwrap(),
            None
        );
    }

    #[test]
    fn versions_have_a_longest() {
        let p = ReleasePattern::default();
        let at_most = format!("v1.2.3-{}", "a".repeat(MAX_VERSION_LEN - 6));
        assert!(find(&p, &tags(&[&at_most])).unwrap().is_some());
        let e = find(&p, &tags(&[&format!("{at_most}b")])).unwrap_err();
        assert!(
            e.reason.starts_with("its version is 81 characters long"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn build_metadata_becomes_underscore() {
        assert_eq!(
            tag_text(&Version::parse("1.2.3-rc.1+build.7").unwrap()),
            "1.2.3-rc.1_build.7"
        );
    }

    #[test]
    fn the_releases_of_a_scope_newest_first_and_the_one_an_image_holds() {
        let repo = [
            "1.2.0",
            "1.2.7",
            "v1.3.0",
            "1.2.3",
            "2.0.0",
            "1.2.9-rc.1",
            "latest",
        ];
        let v = |s: &str| Version::parse(s).unwrap();
        let found = |kind| {
            releases_in_scope(&Scope::of(kind, &v("1.2.3")), repo)
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found(Floating::Latest),
            ["2.0.0", "v1.3.0", "1.2.7", "1.2.3", "1.2.0"]
        );
        assert_eq!(found(Floating::Minor), ["1.2.7", "1.2.3", "1.2.0"]);
        let newest = |kind, holding: &[&'static str]| {
            newest_in_scope(&Scope::of(kind, &v("1.2.3")), holding.iter().copied()).map(|(v, _)| v)
        };
        assert_eq!(
            newest(Floating::Latest, &["1.2.7", "latest"]),
            Some(v("1.2.7"))
        );
        assert_eq!(
            newest(Floating::Latest, &["1.2.3_b.2"]),
            Some(v("1.2.3+b.2"))
        );
        // Another line's release is no release of a minor tag's scope.
        assert_eq!(newest(Floating::Minor, &["1.3.0"]), None);
        assert_eq!(newest(Floating::Latest, &["sha-abc", "2.0.0-rc.1"]), None);
    }
}
