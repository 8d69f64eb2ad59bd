//! Deciding: a pure function of the computed tags, the source image and what was observed.

use semver::Version;

use crate::docker::IdKind;
use crate::revision::REVISION_LABEL;
use crate::source::SourceImage;
use crate::tags::Computed;
use tagguard_registry::Digest;

use super::decision::{Action, Decision, Seen, SkipReason, decide_one, same_digest};
use super::observe::Observed;
use crate::policy::Floating;
use crate::release::{self, Scope};

/// One decision per image × tag, image-major, in the policy's order.
///
/// An image where an immutable tag is kept (it holds an earlier build of this commit, and its
/// rule says `on-conflict: keep-same-revision`) adopts that build: its other tags are decided
/// for the kept image, not the new one, so `latest` and `1.4` follow what `1.4.2` holds and a
/// re-run completes the earlier run instead of pushing a second image of the same commit.
pub fn decide(
    computed: &Computed,
    source: Option<&SourceImage>,
    observed: &Observed,
) -> Vec<Decision> {
    let desired = source.and_then(SourceImage::manifest_digest);
    let config = match source {
        Some(SourceImage::Docker {
            id,
            kind: IdKind::Config,
            ..
        }) => Some(id),
        _ => None,
    };
    let commit = computed.labels.get(REVISION_LABEL).map(String::as_str);
    let mut decisions = Vec::new();
    for (i, image) in computed.images.iter().enumerate() {
        let mut row = Vec::with_capacity(computed.tags.len());
        for (t, tag) in computed.tags.iter().enumerate() {
            let current = observed.current[i][t].as_ref();
            let same_image = match (current, desired, config) {
                (None, _, _) | (_, None, None) => None,
                (Some(c), Some(d), _) => Some(c == d),
                (Some(_), None, Some(id)) => Some(
                    observed
                        .configs
                        .get(i)
                        .and_then(|row| row[t].as_ref())
                        .is_some_and(|c| c == id),
                ),
            };
            let holder = hold(computed, observed, i, t);
            let read = observed.revision(i, t);
            row.push(decide_one(
                image,
                tag,
                &computed.policy,
                Seen {
                    current,
                    desired,
                    same_image,
                    hold: holder.as_ref().map(|(r, v)| (*r, v.as_ref())),
                    revision: read.map(|b| b.evidence.as_ref()),
                    same_revision: read
                        .and_then(|b| b.evidence.as_ref())
                        .zip(commit)
                        .is_some_and(|(evidence, commit)| evidence.names(commit)),
                },
            ));
        }
        adopt_kept(&mut row, computed, observed, i);
        decisions.extend(row);
    }
    decisions
}

/// When a tag of the image is kept, every other tag is decided again for the kept image.
fn adopt_kept(row: &mut [Decision], computed: &Computed, observed: &Observed, image: usize) {
    let Some(kept) = row
        .iter()
        .find(|d| d.action == Action::Keep)
        .and_then(|d| d.current.clone())
    else {
        return;
    };
    for (t, decision) in row.iter_mut().enumerate() {
        if decision.action == Action::Keep {
            continue;
        }
        let tag = &computed.tags[t];
        let holder = hold(computed, observed, image, t);
        let current = decision.current.clone();
        let read = observed.revision(image, t);
        *decision = decide_one(
            &decision.image,
            tag,
            &computed.policy,
            Seen {
                current: current.as_ref(),
                desired: Some(&kept),
                same_image: same_digest(current.as_ref(), Some(&kept)),
                hold: holder.as_ref().map(|(r, v)| (*r, v.as_ref())),
                revision: read.map(|b| b.evidence.as_ref()),
                same_revision: false,
            },
        );
    }
}

/// Why floating tag `t` of image `i` must stay where it is, if it must: a newer release in its
/// scope is in the repository, or this build is a pre-release.
fn hold(
    computed: &Computed,
    observed: &Observed,
    i: usize,
    t: usize,
) -> Option<(SkipReason, Option<Version>)> {
    let kind = computed.tags[t].floating?;
    let version = computed.version.as_ref()?;
    let existing = observed.existing.get(i).map_or(&[][..], Vec::as_slice);
    hold_for(kind, version, existing)
}

/// Floating tags only move forward: a tag of kind `kind` stays where it is for release
/// `version` when this is a pre-release, or when the repository (`existing`, its tags) holds a
/// newer stable release in the tag's scope ([`release::newest_in_scope`], the rule `audit`
/// checks too) — with that release.
pub fn hold_for(
    kind: Floating,
    version: &Version,
    existing: &[String],
) -> Option<(SkipReason, Option<Version>)> {
    if !version.pre.is_empty() {
        return Some((SkipReason::Prerelease, None));
    }
    let (newest, _) = release::newest_in_scope(
        &Scope::of(kind, version),
        existing.iter().map(String::as_str),
    )?;
    release::cmp_precedence(&newest, version)
        .is_gt()
        .then_some((SkipReason::NewerRelease, Some(newest)))
}

/// The digests the run's decisions adopted from earlier builds, whose manifests the apply
/// stage writes instead of the source's.
pub fn adopted(decisions: &[Decision]) -> Vec<Digest> {
    let mut out: Vec<Digest> = decisions
        .iter()
        .filter(|d| d.action == Action::Keep)
        .filter_map(|d| d.current.clone())
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RefusalReason;
    use crate::tags::ComputedTag;

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
        let held = hold_for(Floating::Latest, &v("1.9.1"), &repo).unwrap();
        assert_eq!(held, (SkipReason::NewerRelease, Some(v("2.0.0"))));
        assert_eq!(hold_for(Floating::Major, &v("1.9.1"), &repo), None);
        assert_eq!(hold_for(Floating::Minor, &v("1.9.1"), &repo), None);
        let repo = tags(&["1.4.3", "1.5.0"]);
        assert_eq!(
            hold_for(Floating::Minor, &v("1.4.2"), &repo).unwrap().1,
            Some(v("1.4.3"))
        );
        assert_eq!(hold_for(Floating::Minor, &v("1.4.9"), &repo), None);
    }

    #[test]
    fn a_build_with_no_digest_yet_reads_as_this_build() {
        let tag = ComputedTag {
            tag: "1.2.3".into(),
            immutable: true,
            floating: None,
            rule: 1,
            rule_line: 1,
            on_conflict: crate::policy::OnConflict::Refuse,
            template: "{{ version }}".into(),
        };
        let r = decide_one(
            "r/app",
            &tag,
            "p.yml",
            Seen {
                current: Some(&Digest::sha256_of(b"a")),
                same_image: Some(false),
                ..Seen::default()
            },
        );
        assert_eq!(r.reason, Some(RefusalReason::PointsElsewhere));
        assert!(r.to_string().contains("to this build ("), "{r}");
    }

    #[test]
    fn prereleases_never_move_and_never_hold_and_build_metadata_does_not_count() {
        assert_eq!(
            hold_for(Floating::Latest, &v("3.0.0-rc.1"), &[]).unwrap().0,
            SkipReason::Prerelease
        );
        assert_eq!(
            hold_for(Floating::Latest, &v("2.0.0"), &tags(&["3.0.0-rc.1"])),
            None
        );
        assert_eq!(
            hold_for(Floating::Latest, &v("2.0.0+b.2"), &tags(&["2.0.0_b.1"])),
            None
        );
        assert!(hold_for(Floating::Latest, &v("2.0.0"), &tags(&["v2.0.1"])).is_some());
    }
}
