//! Deciding: a pure function of the computed tags, the source image and what was observed.

use semver::Version;

use crate::docker::IdKind;
use crate::registry::Digest;
use crate::revision;
use crate::source::SourceImage;
use crate::tags::Computed;

use super::decision::{Action, Decision, Seen, SkipReason, decide_one, same_digest};
use super::floating;
use super::observe::Observed;

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
    let commit = computed
        .labels
        .get("org.opencontainers.image.revision")
        .map(String::as_str);
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
                    revision: read.map(|b| b.revision.as_deref()),
                    same_revision: read
                        .and_then(|b| b.revision.as_deref())
                        .zip(commit)
                        .is_some_and(|(label, commit)| revision::names_commit(label, commit)),
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
                revision: read.map(|b| b.revision.as_deref()),
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
    floating::hold(kind, version, existing)
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
