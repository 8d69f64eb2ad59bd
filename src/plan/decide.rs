//! Deciding: a pure function of the computed tags, the source image and what was observed.

use crate::docker::IdKind;
use crate::source::SourceImage;
use crate::tags::Computed;

use super::decision::{Decision, Seen, decide_one};
use super::floating;
use super::observe::Observed;

/// One decision per image × tag, image-major, in the policy's order.
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
    let mut decisions = Vec::new();
    for (i, image) in computed.images.iter().enumerate() {
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
            let holder = match (tag.floating, &computed.version) {
                (Some(kind), Some(version)) => {
                    let existing = observed.existing.get(i).map_or(&[][..], Vec::as_slice);
                    floating::hold(kind, version, existing)
                }
                _ => None,
            };
            decisions.push(decide_one(
                image,
                tag,
                &computed.policy,
                Seen {
                    current,
                    desired,
                    same_image,
                    hold: holder.as_ref().map(|(r, v)| (*r, v.as_ref())),
                },
            ));
        }
    }
    decisions
}
