//! Findings: the places where a repository no longer matches what the policy promises, as
//! [`Finding`](crate::finding::Finding)s (codes `tagguard::audit::…`, severity
//! refusal: exit 3). Pure: a function of the tags, their digests, the images' labels and
//! tagguard's records.

use std::collections::HashMap;

use semver::Version;

use super::record::Recorded;
use super::rules::Role;
use crate::finding::{Finding, Severity, code};
use crate::release::{self, Scope};
use crate::revision::{self, Labels};
use tagguard_registry::Digest;

/// One tag as the registry holds it, with what the policy says about it.
#[derive(Debug, Clone)]
pub struct TagState {
    pub tag: String,
    pub digest: Digest,
    pub role: Role,
}

/// Everything read about one repository.
#[derive(Debug, Default)]
pub struct Observed {
    pub tags: Vec<TagState>,
    /// The labels of each image that carries a version or commit tag (every platform's, for an
    /// index).
    pub labels: HashMap<Digest, Vec<Labels>>,
    /// Per tag, what tagguard's records say it wrote.
    pub records: HashMap<String, Vec<Recorded>>,
}

/// Every finding in one repository, in tag order.
pub fn findings(image: &str, observed: &Observed) -> Vec<Finding> {
    let mut out = floating_behind(image, &observed.tags);
    for state in &observed.tags {
        let labels = observed
            .labels
            .get(&state.digest)
            .map_or(&[][..], Vec::as_slice);
        let records = observed
            .records
            .get(&state.tag)
            .map_or(&[][..], Vec::as_slice);
        let reference = format!("{image}:{}", state.tag);
        if let Some(version) = &state.role.version
            && let Some(found) = labels
                .iter()
                .filter_map(|l| l.version.as_deref())
                .find(|l| release::version_of_tag(l).as_ref() != Some(version))
            && !adopted(records, &state.digest)
        {
            out.push(
                Finding::new(
                    code::AUDIT_VERSION_LABEL,
                    Severity::Refusal,
                    format!("{reference} holds an image built as version {found}, not {version}"),
                )
                .about(&reference)
                .help(format!(
                    "it was written outside the release of {version}: no record of tagguard's says a release adopted it. Find the build of {version} and put it back under this tag, and find out who wrote this one (the registry's audit log)"
                )),
            );
        }
        if let Some(commit) = &state.role.commit
            && let Some(found) = labels
                .iter()
                .filter_map(|l| l.revision.as_deref())
                .find(|r| !revision::names_commit(r, commit))
        {
            out.push(
                Finding::new(
                    code::AUDIT_REVISION_LABEL,
                    Severity::Refusal,
                    format!("{reference} holds an image built from commit {found}, not {commit}"),
                )
                .about(&reference)
                .help(format!(
                    "a commit tag must name the commit its image was built from. Rebuild {commit} with tagguard push, or remove the tag if that commit was never built"
                )),
            );
        }
        if let Some(finding) = moved(image, state, records) {
            out.push(finding);
        }
    }
    out.sort_by(|a, b| (&a.subject, &a.code).cmp(&(&b.subject, &b.code)));
    out
}

/// Whether tagguard's records say a push adopted the image `digest` under this tag: a release
/// that kept an earlier build of its commit ("build once, promote"), whose labels name the
/// build it was, not the release.
fn adopted(records: &[Recorded], digest: &Digest) -> bool {
    records.iter().any(|r| r.adopted && r.digest == *digest)
}

fn moved(image: &str, state: &TagState, recorded: &[Recorded]) -> Option<Finding> {
    if recorded.is_empty()
        || !state.role.immutable
        || recorded.iter().any(|r| r.digest == state.digest)
    {
        return None;
    }
    let last = recorded.iter().max_by(|a, b| a.time.cmp(&b.time))?;
    let mut provenance = format!("tagguard wrote it at {}", last.time);
    if let Some(c) = &last.commit {
        provenance.push_str(&format!(" from commit {c}"));
    }
    if let Some(run) = &last.ci_run {
        provenance.push_str(&format!(" in {run}"));
    }
    let mut expected: Vec<String> = recorded.iter().map(|r| r.digest.to_string()).collect();
    expected.dedup();
    let reference = format!("{image}:{}", state.tag);
    Some(
        Finding::new(
            code::AUDIT_MOVED,
            Severity::Refusal,
            format!(
                "immutable tag {reference} holds {}, not {} where {provenance}",
                state.digest,
                expected.join(", ")
            ),
        )
        .about(&reference)
        .help(format!(
            "it was overwritten. Restore it with `skopeo copy docker://{image}@{} docker://{reference}` once you know who moved it (the registry's audit log), and turn on the registry's tag immutability if it has one",
            last.digest
        )),
    )
}

/// Floating tags not at the newest stable release of their scope, by digest. The releases are
/// every tag that reads as a version ([`release::newest_in_scope`]): the rule `push` follows.
fn floating_behind(image: &str, tags: &[TagState]) -> Vec<Finding> {
    let digests: HashMap<&str, &Digest> =
        tags.iter().map(|t| (t.tag.as_str(), &t.digest)).collect();
    let mut out = Vec::new();
    for t in tags {
        let Some((kind, major, minor)) = t.role.floating else {
            continue;
        };
        let scope = Scope { kind, major, minor };
        let Some((newest, named)) =
            release::newest_in_scope(&scope, tags.iter().map(|t| t.tag.as_str()))
        else {
            continue;
        };
        if named.iter().any(|n| digests.get(n) == Some(&&t.digest)) {
            continue;
        }
        out.push(behind(
            image,
            t,
            kind.name(),
            &newest,
            named[0],
            digests[named[0]],
        ));
    }
    out
}

fn behind(
    image: &str,
    t: &TagState,
    kind: &str,
    newest: &Version,
    target: &str,
    at: &Digest,
) -> Finding {
    let reference = format!("{image}:{}", t.tag);
    Finding::new(
        code::AUDIT_FLOATING_BEHIND,
        Severity::Refusal,
        format!(
            "floating tag {reference} ({kind}) holds {}, not {target}@{at}, the newest stable release ({newest}) in its scope",
            t.digest
        ),
    )
    .about(&reference)
    .help(format!(
        "if {target} is the release you want, move the tag with `skopeo copy docker://{image}:{target} docker://{reference}` (or re-run its release with tagguard push); if {target} should not exist, deal with it first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::rules::Rules;
    use crate::policy::Policy;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn observed(tags: &[(&str, u8)]) -> Observed {
        let rules = Rules::new(&Policy::embedded_default());
        Observed {
            tags: tags
                .iter()
                .filter_map(|(t, n)| {
                    Some(TagState {
                        tag: t.to_string(),
                        digest: d(*n),
                        role: rules.role(t)?,
                    })
                })
                .collect(),
            ..Observed::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter()
            .map(|f| {
                let subject = f.subject.as_deref().unwrap();
                (&subject[subject.find(':').unwrap() + 1..], f.code.as_str())
            })
            .collect()
    }

    fn labels(version: Option<&str>, revision: Option<&str>) -> Vec<Labels> {
        vec![Labels {
            version: version.map(str::to_owned),
            revision: revision.map(str::to_owned),
        }]
    }

    #[test]
    fn floating_tags_follow_the_newest_stable_release_of_their_scope() {
        let o = observed(&[
            ("1.0.0", 1),
            ("1.0.1", 2),
            ("1.1.0", 3),
            ("2.0.0-rc.1", 4),
            ("latest", 3),
            ("1", 3),
            ("1.0", 1),
            ("1.1", 3),
        ]);
        let f = findings("r/app", &o);
        assert_eq!(codes(&f), [("1.0", code::AUDIT_FLOATING_BEHIND)]);
        assert!(
            f[0].message.contains(&format!("not 1.0.1@{}", d(2))),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].severity, Severity::Refusal);
    }

    #[test]
    fn any_tag_that_reads_as_a_release_counts_as_push_counts_it() {
        // `v2.0.0` is no tag of the embedded default's rules, but push holds `latest` for it.
        let o = observed(&[("1.0.0", 1), ("v2.0.0", 2), ("latest", 1)]);
        assert_eq!(
            codes(&findings("r/app", &o)),
            [("latest", code::AUDIT_FLOATING_BEHIND)]
        );
    }

    #[test]
    fn a_floating_tag_with_no_release_in_scope_is_no_finding() {
        let o = observed(&[("latest", 1), ("7", 2), ("sha-abcdef0", 1)]);
        assert!(findings("r/app", &o).is_empty());
    }

    #[test]
    fn labels_must_name_the_tags_version_and_commit() {
        let mut o = observed(&[("1.0.0", 1), ("sha-deadbee", 2), ("sha-abcdef0", 3)]);
        o.labels.insert(d(1), labels(Some("v1.0.0"), None));
        o.labels.insert(
            d(2),
            labels(None, Some("0123456789abcdef0123456789abcdef01234567")),
        );
        o.labels.insert(
            d(3),
            labels(None, Some("ABCDEF0123456789abcdef0123456789abcdef01")),
        );
        assert_eq!(
            codes(&findings("r/app", &o)),
            [("sha-deadbee", code::AUDIT_REVISION_LABEL)]
        );
        o.labels.get_mut(&d(1)).unwrap()[0].version = Some("2.9.9".into());
        assert_eq!(
            codes(&findings("r/app", &o)),
            [
                ("1.0.0", code::AUDIT_VERSION_LABEL),
                ("sha-deadbee", code::AUDIT_REVISION_LABEL)
            ]
        );
    }

    #[test]
    fn an_adopted_build_keeps_the_label_of_the_build_it_was() {
        let mut o = observed(&[("1.0.0", 1), ("sha-abcdef0", 1)]);
        o.labels
            .insert(d(1), labels(Some("sha-abcdef0"), Some("abcdef0123")));
        let rec = |adopted| Recorded {
            digest: d(1),
            time: "2026-11-30T12:00:00Z".into(),
            commit: Some("abcdef0123".into()),
            ci_run: None,
            adopted,
        };
        o.records.insert("1.0.0".into(), vec![rec(false)]);
        assert_eq!(
            codes(&findings("r/app", &o)),
            [("1.0.0", code::AUDIT_VERSION_LABEL)]
        );
        o.records.insert("1.0.0".into(), vec![rec(true)]);
        assert!(findings("r/app", &o).is_empty());
    }

    #[test]
    fn an_immutable_tag_away_from_its_records_moved_a_floating_one_did_not() {
        let mut o = observed(&[("1.0.0", 2), ("latest", 2), ("sha-abcdef0", 1)]);
        let rec = |n: u8| Recorded {
            digest: d(n),
            time: "2026-11-30T12:00:00Z".into(),
            commit: Some("abcdef0".into()),
            ci_run: None,
            adopted: false,
        };
        for tag in ["1.0.0", "latest", "sha-abcdef0"] {
            o.records.insert(tag.into(), vec![rec(1)]);
        }
        let f = findings("r/app", &o);
        assert_eq!(codes(&f), [("1.0.0", code::AUDIT_MOVED)]);
        assert!(f[0].message.contains(&d(1).to_string()), "{}", f[0].message);
        assert!(
            f[0].message.contains("from commit abcdef0"),
            "{}",
            f[0].message
        );
    }
}
