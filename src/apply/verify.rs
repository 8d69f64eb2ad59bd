//! Reading a round's writes back and judging them: this push's digest, read back after the
//! settle time where one applies, is a verified write; anything else is named.

use futures_util::StreamExt as _;

use crate::finding::{Finding, Severity, code};
use crate::plan::Decision;
use tagguard_registry::{Digest, Reference, RegistryError};

use super::Applied;
use super::phases::Landed;
use super::tag_write::{Look, Writer};

pub(super) async fn read_back(
    writer: &Writer<'_>,
    refs: &[&Reference],
    landed: &[Landed],
) -> Vec<Result<Look, RegistryError>> {
    futures_util::stream::iter(landed.iter().map(|l| writer.look(refs[l.index])))
        .buffered(writer.registries.concurrency())
        .collect()
        .await
}

/// A floating tag read back at another image than this push wrote: which release that is
/// decides what happens next ([`place`]).
pub(super) struct Contested {
    pub index: usize,
    pub written: Digest,
    pub found: Digest,
}

/// Judges the read-backs of a round: whether every write is proven, and the floating tags
/// found at another image (left for [`place`] to judge). A verified write is marked so.
pub(super) fn judge(
    writer: &Writer<'_>,
    landed: &[Landed],
    backs: Vec<Result<Look, RegistryError>>,
    applied: &mut Applied,
) -> (bool, Vec<Contested>) {
    let mut proven = true;
    let mut contested = Vec::new();
    for (l, back) in landed.iter().zip(backs) {
        let d = &applied.decisions[l.index];
        let subject = d.reference();
        let slow = !writer.settle.is_zero() && l.window.is_some_and(|w| w >= writer.settle);
        let finding = match back {
            Err(e) => Finding::new(
                code::PUSH_FAILED,
                Severity::Error,
                format!("{subject} was written, but reading it back failed: {e}"),
            )
            .help("look the tag up before retrying"),
            Ok(Look {
                found: Some(found), ..
            }) if found != l.digest && d.floating.is_some() => {
                contested.push(Contested {
                    index: l.index,
                    written: l.digest.clone(),
                    found,
                });
                continue;
            }
            Ok(back) if back.found.as_ref() != Some(&l.digest) => {
                race(&subject, Some(&l.digest), back.found.as_ref())
            }
            Ok(_) if writer.settles(d) && slow => unsettled(writer, l, d),
            Ok(_) => {
                let (image, tag) = (d.image.clone(), d.tag.clone());
                if let Some(w) = applied
                    .written
                    .iter_mut()
                    .find(|w| w.image == image && w.tag == tag)
                {
                    w.verified = true;
                }
                continue;
            }
        };
        applied.findings.push(finding.about(subject));
        proven = false;
    }
    (proven, contested)
}

/// A write acknowledged more than the settle time after its last lookup: another push may
/// have claimed success for what this one overwrote.
fn unsettled(writer: &Writer<'_>, l: &Landed, d: &Decision) -> Finding {
    let subject = d.reference();
    let window = l.window.unwrap_or_default().as_secs_f64();
    let settle = writer.settle.as_secs_f64();
    if d.floating.is_some() {
        return Finding::new(
            code::UNSETTLED,
            Severity::Error,
            format!(
                "{subject} holds this push's image {}, but {window:.1} s passed between looking the floating tag up and the registry acknowledging the write, more than the settle time of {settle:.1} s: a newer release's push may have missed that this write moved the tag back",
                l.digest
            ),
        )
        .help("run `tagguard audit`: a floating tag behind its newest release is named there; on a slow registry raise --settle (TAGGUARD_SETTLE)");
    }
    Finding::new(
        code::UNSETTLED,
        Severity::Error,
        format!(
            "{subject} holds this push's image {}, but {window:.1} s passed between looking the tag up and the registry acknowledging the write, more than the settle time of {settle:.1} s: another push of this tag may have claimed success too",
            l.digest
        ),
    )
    .help("check which image the other job pushed; on a slow registry raise --settle (TAGGUARD_SETTLE)")
}

pub(super) fn holds(found: Option<&Digest>) -> String {
    found.map_or_else(|| "nothing".to_owned(), Digest::to_string)
}

pub(super) fn race(subject: &str, written: Option<&Digest>, found: Option<&Digest>) -> Finding {
    let found = holds(found);
    let message = match written {
        Some(w) => format!(
            "the registry acknowledged the write of {subject} at {w} but now holds {found}: another writer changed it, or the registry did not store it"
        ),
        None => format!(
            "the answer to this push's write of {subject} was lost, and the registry now holds {found}: another writer changed it (a race; no registry offers a conditional write)"
        ),
    };
    Finding::new(code::RACE, Severity::Error, message)
        .help("look the tag up; if another job wrote it, turn on the registry's own tag immutability where it has one; if nobody did, the registry lost the write: check its storage")
}
