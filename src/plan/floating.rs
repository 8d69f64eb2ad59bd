//! Floating tags only move forward: `latest`, `1` and `1.4` follow the highest stable release in
//! their scope, so patching an old release line never steals them back.

use semver::Version;

use super::decision::SkipReason;
use crate::policy::Floating;

/// Whether a floating tag of kind `kind` must stay where it is for release `version`, given the
/// tags already in the repository; with the newer release that holds it.
///
/// A repository tag counts as a release when it is SemVer (an optional leading `v`; `_` read as
/// `+`, the way tagguard writes build metadata): that is what `{{ version }}` rules produce.
pub fn hold(
    kind: Floating,
    version: &Version,
    existing: &[String],
) -> Option<(SkipReason, Option<Version>)> {
    if !version.pre.is_empty() {
        return Some((SkipReason::Prerelease, None));
    }
    existing
        .iter()
        .filter_map(|t| release_of(t))
        .filter(|v| v.pre.is_empty() && in_scope(kind, version, v))
        .filter(|v| cmp_precedence(v, version).is_gt())
        .max_by(cmp_precedence)
        .map(|v| (SkipReason::NewerRelease, Some(v)))
}

/// The stable releases among `tags` in the scope of a `kind` floating tag of release `version`,
/// highest first, each with its tag.
pub fn releases<'t>(
    kind: Floating,
    version: &Version,
    tags: &'t [String],
) -> Vec<(Version, &'t str)> {
    let mut found: Vec<(Version, &str)> = tags
        .iter()
        .filter_map(|t| release_of(t).map(|v| (v, t.as_str())))
        .filter(|(v, _)| v.pre.is_empty() && in_scope(kind, version, v))
        .collect();
    found.sort_by(|a, b| cmp_precedence(&b.0, &a.0));
    found
}

/// Which release an image that a `kind` floating tag holds belongs to, given the tags that hold
/// the same image (`holding`): the highest stable release of the scope among them, and how it
/// compares with `version` (build metadata does not count). `None`: no release of the scope.
pub fn placed(
    kind: Floating,
    version: &Version,
    holding: &[String],
) -> Option<(Version, std::cmp::Ordering)> {
    releases(kind, version, holding)
        .into_iter()
        .next()
        .map(|(v, _)| {
            let order = cmp_precedence(&v, version);
            (v, order)
        })
}

/// Whether release `v` is in the scope of a `kind` floating tag of release `version`.
fn in_scope(kind: Floating, version: &Version, v: &Version) -> bool {
    match kind {
        Floating::Latest => true,
        Floating::Major => v.major == version.major,
        Floating::Minor => v.major == version.major && v.minor == version.minor,
    }
}

/// SemVer precedence: build metadata does not count.
fn cmp_precedence(a: &Version, b: &Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

fn release_of(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    Version::parse(&text.replace('_', "+")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn patching_an_old_line_keeps_latest_and_major_on_the_new_one() {
        let repo = tags(&[
            "2.0.0", "2.0", "2", "latest", "1.9.0", "1.9", "1", "sha-abc",
        ]);
        let held = hold(Floating::Latest, &v("1.9.1"), &repo).unwrap();
        assert_eq!(held, (SkipReason::NewerRelease, Some(v("2.0.0"))));
        assert_eq!(hold(Floating::Major, &v("1.9.1"), &repo), None);
        assert_eq!(hold(Floating::Minor, &v("1.9.1"), &repo), None);
    }

    #[test]
    fn minor_scope_is_its_own_line() {
        let repo = tags(&["1.4.3", "1.5.0"]);
        assert_eq!(
            hold(Floating::Minor, &v("1.4.2"), &repo).unwrap().1,
            Some(v("1.4.3"))
        );
        assert_eq!(
            hold(Floating::Major, &v("1.4.9"), &repo).unwrap().1,
            Some(v("1.5.0"))
        );
        assert_eq!(hold(Floating::Minor, &v("1.4.9"), &repo), None);
    }

    #[test]
    fn prereleases_never_move_and_never_hold() {
        assert_eq!(
            hold(Floating::Latest, &v("3.0.0-rc.1"), &[]).unwrap().0,
            SkipReason::Prerelease
        );
        assert_eq!(
            hold(Floating::Latest, &v("2.0.0"), &tags(&["3.0.0-rc.1"])),
            None
        );
    }

    #[test]
    fn the_same_release_again_and_build_metadata() {
        assert_eq!(hold(Floating::Latest, &v("2.0.0"), &tags(&["2.0.0"])), None);
        assert_eq!(
            hold(Floating::Latest, &v("2.0.0+b.2"), &tags(&["2.0.0_b.1"])),
            None
        );
        assert!(hold(Floating::Latest, &v("2.0.0"), &tags(&["v2.0.1"])).is_some());
    }

    #[test]
    fn the_release_a_floating_tag_holds_and_how_it_compares() {
        let repo = tags(&[
            "1.2.0",
            "1.2.7",
            "v1.3.0",
            "1.2.3",
            "2.0.0",
            "1.2.9-rc.1",
            "latest",
        ]);
        let found = |kind| {
            releases(kind, &v("1.2.3"), &repo)
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found(Floating::Latest),
            ["2.0.0", "v1.3.0", "1.2.7", "1.2.3", "1.2.0"]
        );
        assert_eq!(found(Floating::Minor), ["1.2.7", "1.2.3", "1.2.0"]);
        use std::cmp::Ordering::*;
        let on = |kind, holding: &[&str]| placed(kind, &v("1.2.3"), &tags(holding));
        assert_eq!(
            on(Floating::Latest, &["1.2.7", "latest"]),
            Some((v("1.2.7"), Greater))
        );
        assert_eq!(
            on(Floating::Latest, &["1.2.3_b.2"]),
            Some((v("1.2.3+b.2"), Equal))
        );
        assert_eq!(
            on(Floating::Latest, &["1.2.0", "1.2"]),
            Some((v("1.2.0"), Less))
        );
        // Another line's release is no release of a minor tag's scope.
        assert_eq!(on(Floating::Minor, &["1.3.0"]), None);
        assert_eq!(on(Floating::Latest, &["sha-abc", "2.0.0-rc.1"]), None);
    }
}
