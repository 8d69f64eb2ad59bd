//! Tag writes in phases: immutable tags of every image first, then mutable tags, then floating
//! tags. A phase starts only after every write of the phase before landed and read back; a
//! refusal, a failure or a race in a phase leaves every later phase unwritten.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use crate::finding::{Finding, Severity, code};
use crate::plan::{Action, Decision, Held, SkipReason};
use crate::report::Written;
use tagguard_registry::{Digest, Reference, RegistryError};

use super::tag_write::{Look, Outcome, Writer};
use super::verify::{holds, race};
use super::{Applied, Progress};
use super::{forward, verify};

/// Which phase writes a tag: 0 immutable, 1 mutable, 2 floating.
pub fn phase_of(d: &Decision) -> usize {
    match (d.floating, d.immutable) {
        (Some(_), _) => 2,
        (None, true) => 0,
        (None, false) => 1,
    }
}

/// The writes, grouped by phase in the order they run; empty phases are left out.
pub fn order(decisions: &[Decision], writes: &[usize]) -> Vec<Vec<usize>> {
    (0..3)
        .map(|p| {
            writes
                .iter()
                .copied()
                .filter(|i| phase_of(&decisions[*i]) == p)
                .collect::<Vec<_>>()
        })
        .filter(|phase| !phase.is_empty())
        .collect()
}

/// What a push wrote, told as soon as no more writes will be sent.
#[derive(Debug, Clone)]
pub struct Wrote {
    /// Every tag this push wrote, or found already holding its image (`unchanged`): what its
    /// records cover, so that a re-run after a killed push records what the killed one wrote.
    /// Image, tag and the digest it holds.
    pub covered: Vec<(String, String, Digest)>,
    /// The manifests the tags were written with ([`Applied::manifests`]).
    pub manifests: Vec<(Digest, String, u64)>,
}

impl Wrote {
    pub(super) fn of(applied: &Applied) -> Wrote {
        let mut covered: Vec<(String, String, Digest)> = applied
            .written
            .iter()
            .map(|w| (w.image.clone(), w.tag.clone(), w.digest.clone()))
            .collect();
        for d in &applied.decisions {
            if let (Action::Unchanged, Some(at)) = (d.action, &d.current)
                && !covered.iter().any(|(i, t, _)| *i == d.image && *t == d.tag)
            {
                covered.push((d.image.clone(), d.tag.clone(), at.clone()));
            }
        }
        Wrote {
            covered,
            manifests: applied.manifests.clone(),
        }
    }
}

/// Told what was written once no more writes will be sent.
pub type WritesDone = tokio::sync::oneshot::Sender<Wrote>;

/// A write that landed, waiting to be read back.
pub(super) struct Landed {
    pub index: usize,
    pub digest: Digest,
    /// From the last lookup that found the tag as decided to the write's acknowledgement;
    /// unknown for a Docker engine push.
    pub window: Option<Duration>,
    pub ack: Instant,
}

/// Writes the phases in order. `known`: when the plan's lookups (sent at that instant) are the
/// last ones before the first phase's writes (nothing was copied in between), so they stand
/// for the first phase's re-check.
///
/// `done` is told what was written as soon as no more writes will be sent: after the last
/// phase's writes were answered (before their read-back), or when a phase stops the run.
pub async fn run(
    writer: &Writer<'_>,
    refs: &[&Reference],
    writes: &[usize],
    known: Option<Instant>,
    applied: &mut Applied,
    done: Option<WritesDone>,
) {
    let mut done = done;
    let mut tell = |applied: &Applied| {
        if let Some(tx) = done.take() {
            // The receiver may have gone (recording failed early): nothing to tell.
            let _ = tx.send(Wrote::of(applied));
        }
    };
    let phases = order(&applied.decisions, writes);
    let first = phases.first().map_or(&[][..], Vec::as_slice);
    let mut looks = match known {
        Some(sent) => first
            .iter()
            .map(|i| Look {
                found: applied.decisions[*i].current.clone(),
                sent,
            })
            .map(Ok)
            .collect(),
        None => look_all(writer, refs, first).await,
    };
    for (k, phase) in phases.iter().enumerate() {
        let next = phases.get(k + 1).map_or(&[][..], Vec::as_slice);
        let last = k + 1 == phases.len();
        let mut ended = round(writer, refs, phase, looks, next, applied, &mut tell, last).await;
        // Floating tags found on an older release when read back: moved forward again.
        let mut rounds = 0;
        while ended.go_on && !ended.behind.is_empty() {
            let behind = std::mem::take(&mut ended.behind);
            if rounds == forward::ROUNDS {
                forward::still_behind(applied, &behind);
                ended.go_on = false;
                break;
            }
            rounds += 1;
            let again = look_all(writer, refs, &behind).await;
            let more = round(writer, refs, &behind, again, &[], applied, &mut tell, last).await;
            ended = Ended {
                next_looks: ended.next_looks,
                ..more
            };
        }
        if !ended.go_on {
            not_written(applied, &phases[k + 1..].concat());
            tell(applied);
            return;
        }
        looks = ended.next_looks;
    }
    tell(applied);
}

/// How one round of a phase ended.
struct Ended {
    /// Nothing failed, was refused or raced: the next phase may start.
    go_on: bool,
    /// The next phase's lookups, sent with this round's read-back.
    next_looks: Vec<Result<Look, RegistryError>>,
    /// Floating tags read back on an older release than this push's.
    behind: Vec<usize>,
}

/// One round of writing `items`, found as `looks` right before: decide again where a tag
/// changed, write, settle, read back (with `next`'s lookups), judge.
#[allow(clippy::too_many_arguments)]
async fn round(
    writer: &Writer<'_>,
    refs: &[&Reference],
    items: &[usize],
    looks: Vec<Result<Look, RegistryError>>,
    next: &[usize],
    applied: &mut Applied,
    tell: &mut dyn FnMut(&Applied),
    last: bool,
) -> Ended {
    let held = forward::before_write(writer, refs, items, &looks, applied).await;
    let Some(ready) = redecide(applied, refs, items, looks, held) else {
        return Ended {
            go_on: false,
            next_looks: Vec::new(),
            behind: Vec::new(),
        };
    };
    let (landed, stopped) = write_phase(writer, refs, &ready, applied).await;
    if stopped || last {
        tell(applied);
    }
    let settles = landed
        .iter()
        .any(|l| writer.settles(&applied.decisions[l.index]));
    if settles && !writer.settle.is_zero() {
        let latest = landed
            .iter()
            .map(|l| l.ack)
            .max()
            .unwrap_or_else(Instant::now);
        tokio::time::sleep_until((latest + writer.settle).into()).await;
    }
    let next = if stopped { &[][..] } else { next };
    let (backs, next_looks) = futures_util::future::join(
        verify::read_back(writer, refs, &landed),
        look_all(writer, refs, next),
    )
    .await;
    let (proven, contested) = verify::judge(writer, &landed, backs, applied);
    let behind = forward::place(writer, refs, contested, applied).await;
    Ended {
        go_on: !stopped && proven && behind.is_some(),
        next_looks,
        behind: behind.unwrap_or_default(),
    }
}

async fn look_all(
    writer: &Writer<'_>,
    refs: &[&Reference],
    phase: &[usize],
) -> Vec<Result<Look, RegistryError>> {
    futures_util::stream::iter(phase.iter().map(|i| writer.look(refs[*i])))
        .buffered(writer.registries.concurrency())
        .collect()
        .await
}

/// Decides again for every tag of `items` whose lookup right before the write differs from
/// what it was decided on (`held`: for a moved floating tag, which release it now holds).
/// `None` when nothing must be written: a lookup failed, or an immutable tag was taken
/// meanwhile.
fn redecide(
    applied: &mut Applied,
    refs: &[&Reference],
    items: &[usize],
    looks: Vec<Result<Look, RegistryError>>,
    held: Vec<Option<Result<Held, String>>>,
) -> Option<Vec<(usize, Look)>> {
    let mut ready = Vec::new();
    let mut go = true;
    for ((&i, look), held) in items.iter().zip(looks).zip(held) {
        let decision = &mut applied.decisions[i];
        let failed = |message: String| {
            Finding::new(code::PUSH_FAILED, Severity::Error, message).about(decision.reference())
        };
        let look = match look {
            Ok(look) => look,
            Err(e) => {
                applied.findings.push(failed(format!(
                    "could not look {} up again right before writing it: {e}",
                    refs[i]
                )));
                go = false;
                continue;
            }
        };
        let held = match held.transpose() {
            Ok(held) => held.unwrap_or(Held::Unknown),
            Err(e) => {
                applied.findings.push(
                    failed(format!(
                        "another writer moved {} to {} after this push looked it up, and which release that is could not be read: {e}",
                        decision.reference(),
                        holds(look.found.as_ref())
                    ))
                    .help("run the push again: it decides the floating tag from what it holds then"),
                );
                go = false;
                continue;
            }
        };
        if look.found != decision.current {
            *decision = decision.again(look.found.as_ref(), &held);
            if decision.skip_reason == Some(SkipReason::MovedMeanwhile) {
                applied.findings.push(
                    Finding::new(
                        code::MOVED_MEANWHILE,
                        Severity::Warning,
                        decision.to_string(),
                    )
                    .about(decision.reference()),
                );
            }
            if let Some(refusal) = decision.finding() {
                applied.findings.push(Finding {
                    code: code::TAKEN_MEANWHILE.to_owned(),
                    message: format!(
                        "another writer changed {} after this push looked it up: {}",
                        decision.reference(),
                        refusal.message
                    ),
                    ..refusal
                });
                go = false;
            }
        }
        if decision.action.writes() {
            ready.push((i, look));
        }
    }
    go.then_some(ready)
}

/// Sends the phase's writes at once. Returns what landed, and whether anything did not.
async fn write_phase(
    writer: &Writer<'_>,
    refs: &[&Reference],
    ready: &[(usize, Look)],
    applied: &mut Applied,
) -> (Vec<Landed>, bool) {
    let outcomes: Vec<Outcome> = futures_util::stream::iter(ready.iter().map(|(i, look)| {
        let name = applied.decisions[*i].reference();
        let desired = applied.decisions[*i].desired.clone();
        async move {
            writer
                .write(refs[*i], &name, desired.as_ref(), look.clone())
                .await
        }
    }))
    .buffered(writer.registries.concurrency())
    .collect()
    .await;
    let mut landed = Vec::new();
    let mut stopped = false;
    for ((i, _), outcome) in ready.iter().zip(outcomes) {
        let d = &applied.decisions[*i];
        let subject = d.reference();
        let finding = match outcome {
            Outcome::Landed { digest, since, ack } => {
                log::info!("wrote {subject} -> {digest}");
                (writer.progress)(Progress::Tagged {
                    reference: subject.clone(),
                    digest: digest.clone(),
                });
                let entry = Written {
                    image: d.image.clone(),
                    tag: d.tag.clone(),
                    digest: digest.clone(),
                    verified: false,
                };
                // A floating tag moved forward again is one entry, as of its last write.
                match applied
                    .written
                    .iter_mut()
                    .find(|w| w.image == entry.image && w.tag == entry.tag)
                {
                    Some(w) => *w = entry,
                    None => applied.written.push(entry),
                }
                landed.push(Landed {
                    index: *i,
                    digest,
                    window: since.map(|s| ack.saturating_duration_since(s)),
                    ack,
                });
                continue;
            }
            Outcome::Refused(e) => Finding::new(code::REGISTRY_REFUSED, Severity::Refusal, e.to_string())
                .help("the registry's own tag immutability refused the write; release a new version, or change the registry's rule"),
            Outcome::Failed(e) => Finding::new(code::PUSH_FAILED, Severity::Error, e.to_string())
                .help("nothing after this tag was written; run the push again when the registry is healthy"),
            Outcome::Raced { found } => race(&subject, None, found.as_ref()),
            Outcome::Unsure { write, lookup } => Finding::new(
                code::UNSURE,
                Severity::Error,
                format!("{write}\nthe write's answer was lost, and looking the tag up failed too ({lookup}): it may or may not have landed"),
            )
            .help(format!("look {subject} up before retrying")),
        };
        applied.findings.push(finding.about(subject));
        stopped = true;
    }
    (landed, stopped)
}

/// Records planned writes that were never sent.
pub fn not_written(applied: &mut Applied, indexes: &[usize]) {
    for i in indexes {
        let d = &applied.decisions[*i];
        if !d.action.writes() {
            continue;
        }
        applied.findings.push(
            Finding::new(
                code::NOT_WRITTEN,
                Severity::Warning,
                format!(
                    "{} was not written: the push stopped before its phase",
                    d.reference()
                ),
            )
            .about(d.reference()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Seen, decide_one};
    use crate::policy::Floating;
    use crate::tags::ComputedTag;

    fn decision(tag: &str, immutable: bool, floating: Option<Floating>) -> Decision {
        let tag = ComputedTag {
            tag: tag.into(),
            immutable,
            floating,
            rule: 1,
            rule_line: 1,
            template: String::new(),
            on_conflict: crate::policy::OnConflict::Refuse,
        };
        decide_one("r/app", &tag, "p.yml", Seen::default())
    }

    #[test]
    fn immutable_then_mutable_then_floating_and_empty_phases_left_out() {
        let decisions = [
            decision("latest", false, Some(Floating::Latest)),
            decision("1.2.3", true, None),
            decision("main", false, None),
            decision("1", true, Some(Floating::Major)),
            decision("sha-abc", true, None),
        ];
        assert_eq!(
            order(&decisions, &[0, 1, 2, 3, 4]),
            [vec![1, 4], vec![2], vec![0, 3]]
        );
        assert_eq!(order(&decisions, &[0, 1]), [vec![1], vec![0]]);
        assert!(order(&decisions, &[]).is_empty());
    }
}
