//! Tag writes in phases: immutable tags of every image first, then mutable tags, then floating
//! tags. A phase starts only after every write of the phase before landed and read back; a
//! refusal, a failure or a race in a phase leaves every later phase unwritten.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use crate::plan::{Decision, SkipReason};
use crate::registry::{Digest, Reference, RegistryError};
use crate::report::{Finding, Severity, Written, code};

use super::tag_write::{Look, Outcome, Writer};
use super::{Applied, Progress};

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
    pub written: Vec<Written>,
    /// The manifests the tags were written with ([`Applied::manifests`]).
    pub manifests: Vec<(Digest, String, u64)>,
}

/// Told what was written once no more writes will be sent.
pub type WritesDone = tokio::sync::oneshot::Sender<Wrote>;

/// A write that landed, waiting to be read back.
struct Landed {
    index: usize,
    digest: Digest,
    /// From the last lookup that found the tag as decided to the write's acknowledgement;
    /// unknown for a Docker engine push.
    window: Option<Duration>,
    ack: Instant,
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
            let _ = tx.send(Wrote {
                written: applied.written.clone(),
                manifests: applied.manifests.clone(),
            });
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
        let Some(ready) = redecide(applied, refs, phase, looks) else {
            not_written(applied, &phases[k..].concat());
            tell(applied);
            return;
        };
        let (landed, stopped) = write_phase(writer, refs, &ready, applied).await;
        if stopped || k + 1 == phases.len() {
            tell(applied);
        }
        let settles = landed.iter().any(|l| applied.decisions[l.index].immutable);
        if settles && !writer.settle.is_zero() {
            let last = landed
                .iter()
                .map(|l| l.ack)
                .max()
                .unwrap_or_else(Instant::now);
            tokio::time::sleep_until((last + writer.settle).into()).await;
        }
        let next = phases.get(k + 1).filter(|_| !stopped);
        let (backs, next_looks) = futures_util::future::join(
            read_back(writer, refs, &landed),
            look_all(writer, refs, next.map_or(&[][..], Vec::as_slice)),
        )
        .await;
        let proven = judge(writer, &landed, backs, applied);
        if stopped || !proven {
            not_written(applied, &phases[k + 1..].concat());
            return;
        }
        looks = next_looks;
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

/// Decides again for every tag of the phase whose lookup right before the write differs from
/// what the plan saw. `None` when the phase must not be written: a lookup failed, or an
/// immutable tag was taken meanwhile.
fn redecide(
    applied: &mut Applied,
    refs: &[&Reference],
    phase: &[usize],
    looks: Vec<Result<Look, RegistryError>>,
) -> Option<Vec<(usize, Look)>> {
    let mut ready = Vec::new();
    let mut go = true;
    for (&i, look) in phase.iter().zip(looks) {
        let decision = &mut applied.decisions[i];
        let look = match look {
            Ok(look) => look,
            Err(e) => {
                applied.findings.push(
                    Finding::new(
                        code::PUSH_FAILED,
                        Severity::Error,
                        format!(
                            "could not look {} up again right before writing it: {e}",
                            refs[i]
                        ),
                    )
                    .about(decision.reference()),
                );
                go = false;
                continue;
            }
        };
        if look.found != decision.current {
            *decision = decision.again(look.found.as_ref());
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
                applied.written.push(Written {
                    image: d.image.clone(),
                    tag: d.tag.clone(),
                    digest: digest.clone(),
                });
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

async fn read_back(
    writer: &Writer<'_>,
    refs: &[&Reference],
    landed: &[Landed],
) -> Vec<Result<Look, RegistryError>> {
    futures_util::stream::iter(landed.iter().map(|l| writer.look(refs[l.index])))
        .buffered(writer.registries.concurrency())
        .collect()
        .await
}

/// Judges the read-backs of a phase; true when every write is proven.
fn judge(
    writer: &Writer<'_>,
    landed: &[Landed],
    backs: Vec<Result<Look, RegistryError>>,
    applied: &mut Applied,
) -> bool {
    let mut proven = true;
    for (l, back) in landed.iter().zip(backs) {
        let d = &applied.decisions[l.index];
        let subject = d.reference();
        let finding = match back {
            Err(e) => Finding::new(
                code::PUSH_FAILED,
                Severity::Error,
                format!("{subject} was written, but reading it back failed: {e}"),
            )
            .help("look the tag up before retrying"),
            Ok(back) if back.found.as_ref() != Some(&l.digest) => {
                race(&subject, Some(&l.digest), back.found.as_ref())
            }
            Ok(_) if d.immutable && !writer.settle.is_zero() && l.window.is_some_and(|w| w >= writer.settle) => {
                Finding::new(
                    code::UNSETTLED,
                    Severity::Error,
                    format!(
                        "{subject} holds this push's image {}, but {:.1} s passed between looking the tag up and the registry acknowledging the write, more than the settle time of {:.1} s: another push of this tag may have claimed success too",
                        l.digest,
                        l.window.unwrap_or_default().as_secs_f64(),
                        writer.settle.as_secs_f64()
                    ),
                )
                .help("check which image the other job pushed; on a slow registry raise --settle (TAGGUARD_SETTLE)")
            }
            Ok(_) => continue,
        };
        applied.findings.push(finding.about(subject));
        proven = false;
    }
    proven
}

fn race(subject: &str, written: Option<&Digest>, found: Option<&Digest>) -> Finding {
    let found = found.map_or_else(|| "nothing (deleted)".to_owned(), Digest::to_string);
    let what = match written {
        Some(w) => format!("wrote {w}"),
        None => "its write's answer was lost".to_owned(),
    };
    Finding::new(
        code::RACE,
        Severity::Error,
        format!("another writer changed {subject} around this push's write (a race; no registry offers a conditional write): {what}, the registry now holds {found}"),
    )
    .help("turn on the registry's own tag immutability where it has one")
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
