//! Findings: the places where a repository no longer matches what the policy promises. Pure: a
//! function of the tags, their digests, the images' labels and tagguard's records.

use std::collections::{BTreeMap, HashMap};

use semver::Version;
use serde::Serialize;

use super::record::Recorded;
use super::rules::Role;
use crate::policy::Floating;
use crate::registry::Digest;

/// What kind of broken promise a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A floating tag is not at the newest stable release of its scope.
    FloatingBehind,
    /// A version tag's image says (`org.opencontainers.image.version`) it is another version.
    VersionLabel,
    /// A commit tag's image says (`org.opencontainers.image.revision`) it is another commit.
    RevisionLabel,
    /// An immutable tag points elsewhere than where tagguard wrote it.
    Moved,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::FloatingBehind => "floating-behind",
            Kind::VersionLabel => "version-label",
            Kind::RevisionLabel => "revision-label",
            Kind::Moved => "moved",
        }
    }
}

/// One broken promise, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub image: String,
    pub tag: String,
    pub kind: Kind,
    pub expected: String,
    pub found: String,
    pub help: String,
}

/// One tag as the registry holds it, with what the policy says about it.
#[derive(Debug, Clone)]
pub struct TagState {
    pub tag: String,
    pub digest: Digest,
    pub role: Role,
}

/// The labels of an image (every platform's config, for an index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub versions: Vec<String>,
    pub revisions: Vec<String>,
}

/// Everything read about one repository.
#[derive(Debug, Default)]
pub struct Observed {
    pub tags: Vec<TagState>,
    pub labels: HashMap<Digest, Labels>,
    /// Per tag, what tagguard's records say it wrote.
    pub records: HashMap<String, Vec<Recorded>>,
}

/// Every finding in one repository, in tag order.
pub fn findings(image: &str, observed: &Observed) -> Vec<Finding> {
    let mut out = floating_behind(image, &observed.tags);
    for state in &observed.tags {
        let labels = observed.labels.get(&state.digest);
        if let (Some(version), Some(labels)) = (&state.role.version, labels)
            && let Some(found) = labels.versions.iter().find(|l| !same_version(l, version))
        {
            out.push(Finding {
                image: image.to_owned(),
                tag: state.tag.clone(),
                kind: Kind::VersionLabel,
                expected: version.to_string(),
                found: found.clone(),
                help: format!(
                    "{image}:{} holds an image built as version {found}: it was written outside the release of {version}. Find the build of {version} and put it back under this tag, and find out who wrote this one (the registry's audit log)",
                    state.tag
                ),
            });
        }
        if let (Some(commit), Some(labels)) = (&state.role.commit, labels)
            && let Some(found) = labels.revisions.iter().find(|r| !same_commit(r, commit))
        {
            out.push(Finding {
                image: image.to_owned(),
                tag: state.tag.clone(),
                kind: Kind::RevisionLabel,
                expected: commit.clone(),
                found: found.clone(),
                help: format!(
                    "{image}:{} holds an image built from commit {found}, not {commit}: a commit tag must name the commit its image was built from. Rebuild {commit} with tagguard push, or remove the tag if that commit was never built",
                    state.tag
                ),
            });
        }
        if let Some(finding) = moved(image, state, &observed.records) {
            out.push(finding);
        }
    }
    out.sort_by(|a, b| (&a.tag, a.kind).cmp(&(&b.tag, b.kind)));
    out
}

fn moved(
    image: &str,
    state: &TagState,
    records: &HashMap<String, Vec<Recorded>>,
) -> Option<Finding> {
    let recorded = records.get(&state.tag).filter(|r| !r.is_empty())?;
    if !state.role.immutable || recorded.iter().any(|r| r.digest == state.digest) {
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
    Some(Finding {
        image: image.to_owned(),
        tag: state.tag.clone(),
        kind: Kind::Moved,
        expected: expected.join(", "),
        found: state.digest.to_string(),
        help: format!(
            "immutable tag {image}:{} was overwritten after {provenance}. Restore it with `skopeo copy docker://{image}@{} docker://{image}:{}` once you know who moved it (the registry's audit log), and turn on the registry's tag immutability if it has one",
            state.tag, last.digest, state.tag
        ),
    })
}

/// Floating tags not at the newest stable release of their scope, by digest.
fn floating_behind(image: &str, tags: &[TagState]) -> Vec<Finding> {
    // Stable releases by precedence (build metadata does not count), with their tags.
    let mut releases: BTreeMap<(u64, u64, u64), Vec<&TagState>> = BTreeMap::new();
    for t in tags {
        if let Some(v) = t.role.version.as_ref().filter(|v| v.pre.is_empty()) {
            releases
                .entry((v.major, v.minor, v.patch))
                .or_default()
                .push(t);
        }
    }
    let mut out = Vec::new();
    for t in tags {
        let Some((kind, major, minor)) = t.role.floating else {
            continue;
        };
        let in_scope = |&(ma, mi, _): &(u64, u64, u64)| match kind {
            Floating::Latest => true,
            Floating::Major => Some(ma) == major,
            Floating::Minor => Some(ma) == major && Some(mi) == minor,
        };
        let Some((_, newest)) = releases.iter().rev().find(|(k, _)| in_scope(k)) else {
            continue;
        };
        if newest.iter().any(|r| r.digest == t.digest) {
            continue;
        }
        let target = newest[0];
        out.push(Finding {
            image: image.to_owned(),
            tag: t.tag.clone(),
            kind: Kind::FloatingBehind,
            expected: format!("{}@{}", target.tag, target.digest),
            found: t.digest.to_string(),
            help: format!(
                "floating tag {image}:{} ({}) should point at {}, the newest stable release in its scope. If {} is the release you want, move the tag with `skopeo copy docker://{image}:{} docker://{image}:{}` (or re-run its release with tagguard push); if {} should not exist, deal with it first",
                t.tag,
                kind.name(),
                target.tag,
                target.tag,
                target.tag,
                t.tag,
                target.tag
            ),
        });
    }
    out
}

/// A version label names `version` (a leading `v` and `_` for `+` tolerated).
fn same_version(label: &str, version: &Version) -> bool {
    let text = label.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    Version::parse(&text.replace('_', "+")).is_ok_and(|v| &v == version)
}

/// A revision label names `commit`: one is a prefix of the other, at least 7 hex digits long.
fn same_commit(label: &str, commit: &str) -> bool {
    let label = label.trim().to_ascii_lowercase();
    label.len() >= 7 && (label.starts_with(commit) || commit.starts_with(&label))
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

    fn kinds(f: &[Finding]) -> Vec<(&str, Kind)> {
        f.iter().map(|f| (f.tag.as_str(), f.kind)).collect()
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
        assert_eq!(
            kinds(&findings("r/app", &o)),
            [("1.0", Kind::FloatingBehind)]
        );
        let f = &findings("r/app", &o)[0];
        assert_eq!(f.expected, format!("1.0.1@{}", d(2)));
        assert_eq!(f.found, d(1).to_string());
    }

    #[test]
    fn a_floating_tag_with_no_release_in_scope_is_no_finding() {
        let o = observed(&[("latest", 1), ("7", 2), ("sha-abcdef0", 1)]);
        assert!(findings("r/app", &o).is_empty());
    }

    #[test]
    fn labels_must_name_the_tags_version_and_commit() {
        let mut o = observed(&[("1.0.0", 1), ("sha-deadbee", 2), ("sha-abcdef0", 3)]);
        o.labels.insert(
            d(1),
            Labels {
                versions: vec!["v1.0.0".into()],
                revisions: vec![],
            },
        );
        o.labels.insert(
            d(2),
            Labels {
                versions: vec![],
                revisions: vec!["0123456789abcdef0123456789abcdef01234567".into()],
            },
        );
        o.labels.insert(
            d(3),
            Labels {
                versions: vec![],
                revisions: vec!["ABCDEF0123456789abcdef0123456789abcdef01".into()],
            },
        );
        assert_eq!(
            kinds(&findings("r/app", &o)),
            [("sha-deadbee", Kind::RevisionLabel)]
        );
        o.labels
            .get_mut(&d(1))
            .unwrap()
            .versions
            .push("2.9.9".into());
        assert_eq!(
            kinds(&findings("r/app", &o)),
            [
                ("1.0.0", Kind::VersionLabel),
                ("sha-deadbee", Kind::RevisionLabel)
            ]
        );
    }

    #[test]
    fn an_immutable_tag_away_from_its_records_moved_a_floating_one_did_not() {
        let mut o = observed(&[("1.0.0", 2), ("latest", 2), ("sha-abcdef0", 1)]);
        let rec = |n: u8| Recorded {
            digest: d(n),
            time: "2026-11-30T12:00:00Z".into(),
            commit: Some("abcdef0".into()),
            ci_run: None,
        };
        for tag in ["1.0.0", "latest", "sha-abcdef0"] {
            o.records.insert(tag.into(), vec![rec(1)]);
        }
        let f = findings("r/app", &o);
        assert_eq!(kinds(&f), [("1.0.0", Kind::Moved)]);
        assert_eq!(f[0].expected, d(1).to_string());
        assert!(f[0].help.contains("from commit abcdef0"), "{}", f[0].help);
    }
}
