//! Which release, if any, this build is: the release tags at HEAD read as SemVer 2.0.

use semver::Version;

use crate::policy::ReleasePattern;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
