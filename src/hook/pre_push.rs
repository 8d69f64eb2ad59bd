//! The pre-push decisions: which pushed release tags to refuse, and why.
//!
//! Two steps, both pure: [`review_refs`] looks at the ref updates alone (naming, moving,
//! deleting) and lists the new releases; the binary then asks the registry about those
//! releases' immutable image tags and [`review_registry`] judges what it saw.

use semver::Version;

use super::issue::Issue;
use super::pushed_ref::{PushedRef, RemoteOid};
use crate::finding::{Finding, Severity};
use crate::policy::{OnConflict, RegistryCheck, ReleasePattern};
use crate::release;
use crate::revision::Evidence;

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
    /// What the tag's rule says an existing image of it means.
    pub on_conflict: OnConflict,
    pub lookup: Lookup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Absent,
    /// The image exists; what says which commit it was built from, if anything
    /// ([`crate::revision::built`]: its revision label, else tagguard's record).
    Found {
        revision: Option<Evidence>,
    },
    Failed {
        error: String,
    },
}

/// The verdict CI's push would give the release's image tag, on the same evidence and in the
/// same order (see [`crate::revision`]): an image of this commit is fine where the rule keeps
/// it (`on-conflict: keep-same-revision`; under `refuse` CI's build must be that very image: a
/// warning); an image of another commit, or one nothing says the commit of, refuses the push.
/// Lookups that failed refuse only in `strict` mode.
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
                Lookup::Found { revision: Some(r) } if r.names(&o.commit) => {
                    if o.on_conflict == OnConflict::KeepSameRevision {
                        return None;
                    }
                    (
                        Severity::Warning,
                        Issue::NotKept {
                            reference: o.reference.clone(),
                        },
                    )
                }
                Lookup::Found { revision } => (
                    Severity::Refusal,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::code;
    use crate::hook::pushed_ref::parse_lines;
    use crate::revision::EvidenceFrom;

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
            on_conflict: OnConflict::KeepSameRevision,
            lookup,
        }
    }

    fn says(commit: &str, from: EvidenceFrom) -> Lookup {
        Lookup::Found {
            revision: Some(Evidence {
                commit: commit.into(),
                from,
                ci_run: None,
            }),
        }
    }

    #[test]
    fn registry_images_from_the_same_commit_pass_where_the_rule_keeps_them() {
        for mode in RegistryCheck::ALL {
            let obs = [
                seen(Lookup::Absent),
                seen(says(A, EvidenceFrom::Label)),
                seen(says(&A[..7], EvidenceFrom::Label)),
                seen(says(A, EvidenceFrom::Record)),
            ];
            assert_eq!(review_registry(mode, &obs), []);
        }
        let refusing = ReleaseImage {
            on_conflict: OnConflict::Refuse,
            ..seen(says(A, EvidenceFrom::Record))
        };
        let f = review_registry(RegistryCheck::Warn, &[refusing]);
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            (code::IMAGE_NOT_KEPT, Severity::Warning)
        );
    }

    #[test]
    fn registry_images_from_another_commit_are_refused_unless_off() {
        let obs = [seen(says(B, EvidenceFrom::Label))];
        for mode in [RegistryCheck::Strict, RegistryCheck::Warn] {
            let f = review_registry(mode, &obs);
            assert_eq!(f[0].severity, Severity::Refusal);
            assert_eq!(f[0].code, code::IMAGE_EXISTS);
            assert_eq!(
                f[0].to_string(),
                format!(
                    "release tag v1.2.3: image registry.example/app:1.2.3 already exists, built from commit 222222222222, not 111111111111 (its org.opencontainers.image.revision label says {B})"
                )
            );
        }
        assert_eq!(review_registry(RegistryCheck::Off, &obs), []);
    }

    #[test]
    fn an_image_nothing_says_the_commit_of_is_refused_as_ci_refuses_it() {
        let obs = [seen(Lookup::Found { revision: None })];
        for mode in [RegistryCheck::Strict, RegistryCheck::Warn] {
            let f = review_registry(mode, &obs);
            assert_eq!(
                (f[0].code.as_str(), f[0].severity),
                (code::IMAGE_UNLABELLED, Severity::Refusal)
            );
        }
    }

    #[test]
    fn no_answer_refuses_only_when_strict() {
        let obs = [seen(Lookup::Failed {
            error: "connection refused".into(),
        })];
        let strict = review_registry(RegistryCheck::Strict, &obs);
        assert!(strict.iter().all(|f| f.severity == Severity::Refusal));
        let warn = review_registry(RegistryCheck::Warn, &obs);
        assert_eq!(warn.len(), 1);
        assert!(warn.iter().all(|f| f.severity == Severity::Warning));
        assert!(warn.iter().all(|f| f.help.is_none()));
        assert_eq!(
            warn[0].to_string(),
            "release tag v1.2.3: could not ask the registry about registry.example/app:1.2.3: connection refused"
        );
    }
}
