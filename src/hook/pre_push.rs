//! The pre-push decisions: which pushed release tags to refuse, and why.
//!
//! Two steps, both pure: [`review_refs`] looks at the ref updates alone (naming, moving,
//! deleting) and lists the new releases; the binary then asks the registry about those
//! releases' immutable image tags and [`review_registry`] judges what it saw.

use semver::Version;

use super::issue::Issue;
use super::pushed_ref::{PushedRef, RemoteOid};
use crate::policy::{RegistryCheck, ReleasePattern};
use crate::release;
use crate::report::{Finding, Severity};

/// A valid release tag the push creates, to be checked against the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub tag: String,
    pub version: Version,
    /// The object pushed: a commit, or an annotated tag object to peel.
    pub object: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    pub findings: Vec<Finding>,
    pub releases: Vec<NewRelease>,
}

/// True when any ref update is a tag: only then is the policy worth loading.
pub fn pushes_tags(refs: &[PushedRef]) -> bool {
    refs.iter().any(|r| r.tag().is_some())
}

/// Judges the pushed tags that look like release tags of `pattern`; branches and other tags
/// pass untouched.
pub fn review_refs(pattern: &ReleasePattern, refs: &[PushedRef]) -> Review {
    let mut review = Review::default();
    for pushed in refs {
        let Some(tag) = pushed.tag() else { continue };
        if pattern.version_text(tag).is_none() {
            continue;
        }
        let refuse = |issue: Issue| issue.finding(tag, Severity::Refusal);
        let Some(local) = &pushed.local_oid else {
            if let RemoteOid::Present(oid) = &pushed.remote_oid {
                review
                    .findings
                    .push(refuse(Issue::Deletes { oid: oid.clone() }));
            }
            continue;
        };
        let version = match release::find(pattern, &[tag.to_owned()]) {
            Ok(Some(found)) => found.version,
            Ok(None) => continue,
            Err(invalid) => {
                review.findings.push(refuse(Issue::InvalidVersion {
                    reason: invalid.reason,
                    example: invalid.example,
                }));
                continue;
            }
        };
        match &pushed.remote_oid {
            RemoteOid::Present(remote) if remote == local => {}
            RemoteOid::Present(remote) => review.findings.push(refuse(Issue::Moves {
                from: remote.clone(),
                to: local.clone(),
            })),
            RemoteOid::Absent | RemoteOid::Unknown => review.releases.push(NewRelease {
                tag: tag.to_owned(),
                version,
                object: local.clone(),
            }),
        }
    }
    review
}

/// What the registry said about one immutable image tag of a new release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseImage {
    pub tag: String,
    /// `image:tag`, or what could not be looked up.
    pub reference: String,
    /// The commit the release tag points at.
    pub commit: String,
    pub lookup: Lookup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Absent,
    /// The image exists; its config's `org.opencontainers.image.revision` label, if any.
    Found {
        revision: Option<String>,
    },
    Failed {
        error: String,
    },
}

/// An image built from the same commit is fine (a re-pushed tag, or images built before
/// tagging); one from another commit refuses the push. Lookups that failed, and images that do
/// not say their commit, refuse only in `strict` mode.
pub fn review_registry(mode: RegistryCheck, observations: &[ReleaseImage]) -> Vec<Finding> {
    if mode == RegistryCheck::Off {
        return Vec::new();
    }
    let doubt = if mode == RegistryCheck::Strict {
        Severity::Refusal
    } else {
        Severity::Warning
    };
    observations
        .iter()
        .filter_map(|o| {
            let (severity, issue) = match &o.lookup {
                Lookup::Absent => return None,
                Lookup::Found { revision: Some(r) } if same_commit(r, &o.commit) => return None,
                Lookup::Found { revision } => (
                    if revision.is_some() {
                        Severity::Refusal
                    } else {
                        doubt
                    },
                    Issue::ImageExists {
                        reference: o.reference.clone(),
                        commit: o.commit.clone(),
                        revision: revision.clone(),
                    },
                ),
                Lookup::Failed { error } => (
                    doubt,
                    Issue::RegistryUnreachable {
                        what: o.reference.clone(),
                        error: error.clone(),
                    },
                ),
            };
            Some(issue.finding(&o.tag, severity))
        })
        .collect()
}

/// Labels may hold an abbreviated hash; a prefix of at least 7 digits counts as the same.
fn same_commit(label: &str, commit: &str) -> bool {
    let label = label.trim().to_ascii_lowercase();
    label.len() >= 7 && commit.to_ascii_lowercase().starts_with(&label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::code;
    use crate::hook::pushed_ref::parse_lines;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn review(lines: &str) -> Review {
        review_refs(&ReleasePattern::default(), &parse_lines(lines).unwrap())
    }

    fn codes(r: &Review) -> Vec<&str> {
        r.findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn branches_and_other_tags_pass_untouched() {
        let r = review(&format!(
            "refs/heads/main {A} refs/heads/main {B}\nrefs/tags/nightly {A} refs/tags/nightly {B}\n(delete) {Z} refs/tags/very-old {B}"
        ));
        assert_eq!(r, Review::default());
    }

    #[test]
    fn a_new_valid_release_goes_to_the_registry_check() {
        let r = review(&format!("refs/tags/v1.2.3 {A} refs/tags/v1.2.3 {Z}"));
        assert!(r.findings.is_empty());
        assert_eq!(r.releases[0].tag, "v1.2.3");
        assert_eq!(r.releases[0].version, Version::new(1, 2, 3));
        assert_eq!(r.releases[0].object, A);
    }

    #[test]
    fn invalid_semver_is_refused_with_the_reason() {
        let r = review(&format!(
            "refs/tags/v1.2 {A} refs/tags/v1.2 {Z}\nrefs/tags/v01.2.3 {A} refs/tags/v01.2.3 {Z}"
        ));
        assert!(r.releases.is_empty());
        assert!(r.findings.iter().all(|f| f.severity == Severity::Refusal));
        assert_eq!(codes(&r), [code::INVALID_VERSION; 2]);
        assert_eq!(
            r.findings[0].to_string(),
            "release tag v1.2 is not valid SemVer 2.0: \"1.2\" has 2 of the 3 numbers MAJOR.MINOR.PATCH"
        );
        assert!(r.findings[0].help.as_ref().unwrap().contains("e.g. v1.4.2"));
        assert!(
            r.findings[1].to_string().contains("leading zero"),
            "{}",
            r.findings[1]
        );
    }

    #[test]
    fn moving_a_published_release_tag_is_refused() {
        let r = review(&format!("refs/tags/v1.2.3 {A} refs/tags/v1.2.3 {B}"));
        assert_eq!(codes(&r), [code::TAG_MOVES]);
        assert_eq!(r.findings[0].subject.as_deref(), Some("v1.2.3"));
        assert_eq!(
            r.findings[0].to_string(),
            "release tag v1.2.3 would move on the remote from 222222222222 to 111111111111"
        );
        assert!(r.releases.is_empty());
    }

    #[test]
    fn deleting_a_published_release_tag_is_refused() {
        let r = review(&format!("(delete) {Z} refs/tags/v1.2.3 {B}"));
        assert_eq!(codes(&r), [code::TAG_DELETED]);
        assert!(
            r.findings[0].message.contains(&B[..12]),
            "{}",
            r.findings[0]
        );
    }

    #[test]
    fn pushing_a_release_tag_the_remote_already_has_is_a_no_op() {
        let r = review(&format!("refs/tags/v1.2.3 {A} refs/tags/v1.2.3 {A}"));
        assert_eq!(r, Review::default());
    }

    #[test]
    fn monorepo_patterns_only_guard_their_own_tags() {
        let pattern = ReleasePattern::parse("api/v{version}").unwrap();
        let refs = parse_lines(&format!(
            "refs/tags/web/v1.2 {A} refs/tags/web/v1.2 {Z}\nrefs/tags/api/v1.2 {A} refs/tags/api/v1.2 {Z}"
        ))
        .unwrap();
        let r = review_refs(&pattern, &refs);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].subject.as_deref(), Some("api/v1.2"));
    }

    #[test]
    fn only_tag_pushes_need_the_policy() {
        let refs = parse_lines(&format!("refs/heads/main {A} refs/heads/main {B}")).unwrap();
        assert!(!pushes_tags(&refs));
        let refs = parse_lines(&format!("(delete) {Z} refs/tags/x {B}")).unwrap();
        assert!(pushes_tags(&refs));
    }

    fn seen(lookup: Lookup) -> ReleaseImage {
        ReleaseImage {
            tag: "v1.2.3".into(),
            reference: "registry.example/app:1.2.3".into(),
            commit: A.into(),
            lookup,
        }
    }

    #[test]
    fn registry_images_from_the_same_commit_pass() {
        for mode in RegistryCheck::ALL {
            let obs = [
                seen(Lookup::Absent),
                seen(Lookup::Found {
                    revision: Some(A.into()),
                }),
                seen(Lookup::Found {
                    revision: Some(A[..7].into()),
                }),
            ];
            assert_eq!(review_registry(mode, &obs), []);
        }
    }

    #[test]
    fn registry_images_from_another_commit_are_refused_unless_off() {
        let obs = [seen(Lookup::Found {
            revision: Some(B.into()),
        })];
        for mode in [RegistryCheck::Strict, RegistryCheck::Warn] {
            let f = review_registry(mode, &obs);
            assert_eq!(f[0].severity, Severity::Refusal);
            assert_eq!(f[0].code, code::IMAGE_EXISTS);
            assert_eq!(
                f[0].to_string(),
                "release tag v1.2.3: image registry.example/app:1.2.3 already exists, built from commit 222222222222, not 111111111111"
            );
        }
        assert_eq!(review_registry(RegistryCheck::Off, &obs), []);
    }

    #[test]
    fn doubt_refuses_only_when_strict() {
        let obs = [
            seen(Lookup::Failed {
                error: "connection refused".into(),
            }),
            seen(Lookup::Found { revision: None }),
        ];
        let strict = review_registry(RegistryCheck::Strict, &obs);
        assert!(strict.iter().all(|f| f.severity == Severity::Refusal));
        let warn = review_registry(RegistryCheck::Warn, &obs);
        assert_eq!(warn.len(), 2);
        assert!(warn.iter().all(|f| f.severity == Severity::Warning));
        assert!(warn.iter().all(|f| f.help.is_none()));
        assert_eq!(
            warn[0].to_string(),
            "release tag v1.2.3: could not ask the registry about registry.example/app:1.2.3: connection refused"
        );
    }
}
