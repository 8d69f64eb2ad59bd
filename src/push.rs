//! `push`: plan (with the source's manifest fetched), apply, report. Nothing is written when
//! anything is refused; what is written goes in phases and is read back (see [`crate::apply`]).

use crate::apply::{self, ApplyOptions, Wrote};
use crate::audit::record as audit;
use crate::audit::{RecordMeta, Subject};
use crate::finding::{Finding, Severity, code};
use crate::plan::{self, Action, Decision};
use crate::registries::Registries;
use crate::report::{Report, Status};
use crate::source::{self, SourceSpec};
use crate::tags::Computed;
use tagguard_registry::{Digest, Reference};

/// The whole `push` run, as one report, whatever happened. With `record`, what was written is
/// recorded beside each image for `tagguard audit` ([`crate::audit::record`]).
pub async fn run(
    computed: &Computed,
    source: &SourceSpec,
    registries: &Registries,
    allow_dirty: bool,
    options: &ApplyOptions<'_>,
    record: Option<&RecordMeta>,
) -> Report {
    let mut report = Report {
        dry_run: options.dry_run,
        writes: true,
        findings: plan::precheck(computed, allow_dirty),
        ..Report::default()
    };
    if report.status() != Status::Ok {
        return report;
    }
    let load = source::load(source, registries);
    let plan = match plan::plan(computed, Some(load), registries).await {
        Ok(plan) => plan,
        Err(e) => {
            report.push(Finding::from_error(&e, code::CHECK_FAILED));
            return report;
        }
    };
    report
        .findings
        .extend(plan.decisions.iter().filter_map(Decision::finding));
    let writes = !options.dry_run && !plan.decisions.iter().any(Decision::is_refusal);
    let intents = match record {
        Some(_) if writes => intents(&plan.decisions),
        _ => Vec::new(),
    };
    // The records of an adopted build say so: audit then knows its labels name the build it
    // was (a branch build, say), not this release.
    let record = record.map(|meta| RecordMeta {
        adopted: plan.adopted.iter().map(|m| m.digest.clone()).collect(),
        ..meta.clone()
    });
    let record = record.as_ref();
    let version = computed.version.as_ref();
    let (done, written) = tokio::sync::oneshot::channel();
    // Recording runs beside the writes: what it needs is read while the tags are written, and
    // the records are put while the last phase is read back (see `record`).
    let recording = async {
        match record {
            Some(meta) if !intents.is_empty() => {
                record_writes(&intents, written, meta, registries).await
            }
            _ => Vec::new(),
        }
    };
    let (applied, failures) = tokio::join!(
        apply::apply(plan, version, registries, options, Some(done)),
        recording
    );
    report.decisions = applied.decisions;
    report.written = applied.written;
    report.findings.extend(applied.findings);
    report.findings.extend(failures);
    report
}

/// Each image the plan writes to or finds already holding this push's image (a re-run after
/// a killed push: what it wrote is recorded now), with the images (digests) concerned there.
fn intents(decisions: &[Decision]) -> Vec<(String, Vec<Digest>)> {
    let mut intents: Vec<(String, Vec<Digest>)> = Vec::new();
    let covered = |d: &&Decision| d.action.writes() || d.action == Action::Unchanged;
    for d in decisions.iter().filter(covered) {
        let at = match intents.iter().position(|(image, _)| *image == d.image) {
            Some(at) => at,
            None => {
                intents.push((d.image.clone(), Vec::new()));
                intents.len() - 1
            }
        };
        // A tag found holding the image names its digest even where the source's is not
        // known before pushing (a Docker engine image).
        let digest = match d.action {
            Action::Unchanged => d.current.as_ref(),
            _ => d.desired.as_ref(),
        };
        if let Some(digest) = digest
            && !intents[at].1.contains(digest)
        {
            intents[at].1.push(digest.clone());
        }
    }
    intents
}

/// Records what was written, one repository at a time in parallel, in two steps: while the
/// tags are written, what the records need is read ([`audit::prepare`]); once no more writes
/// will be sent (`written` says what landed), each record is put — during the last phase's
/// read-back — and listed. A record that cannot be written is a warning, never a change to
/// what the push did.
async fn record_writes(
    intents: &[(String, Vec<Digest>)],
    written: tokio::sync::oneshot::Receiver<Wrote>,
    meta: &RecordMeta,
    registries: &Registries,
) -> Vec<Finding> {
    let repositories = intents.iter().map(|(image, digests)| async move {
        let reference: Reference = image.parse().map_err(|e| failed(image, &format!("{e}")))?;
        let client = registries
            .client(&reference.registry)
            .map_err(|e| failed(image, &e.to_string()))?;
        let prepared = audit::prepare(&client, &reference.repository, digests).await;
        Ok::<_, Finding>((image, reference, client, prepared))
    });
    let (prepared, written) = tokio::join!(futures_util::future::join_all(repositories), written);
    // Told nothing: nothing was written.
    let Ok(Wrote { covered, manifests }) = written else {
        return Vec::new();
    };
    // The descriptors the push knows save the record a lookup of each image.
    let known: Vec<Subject> = manifests
        .into_iter()
        .map(|(digest, media_type, size)| Subject {
            digest,
            media_type,
            size,
        })
        .collect();
    let finishes = prepared.into_iter().map(|p| {
        let (covered, known) = (&covered, &known);
        async move {
            let (image, reference, client, prepared) = match p {
                Ok(p) => p,
                Err(f) => return vec![f],
            };
            let pairs: Vec<(String, Digest)> = covered
                .iter()
                .filter(|(i, _, _)| i == image)
                .map(|(_, tag, digest)| (tag.clone(), digest.clone()))
                .collect();
            let (targets, unknown) =
                audit::targets(&client, &reference.repository, &pairs, known).await;
            let mut outcome =
                audit::finish(&client, &reference.repository, prepared, &targets, meta).await;
            outcome.failed.extend(unknown);
            outcome
                .failed
                .iter()
                .map(|f| {
                    failed(
                        image,
                        &format!("{} ({}): {}", f.subject, f.tags.join(", "), f.reason),
                    )
                })
                .collect::<Vec<_>>()
        }
    });
    futures_util::future::join_all(finishes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn failed(image: &str, why: &str) -> Finding {
    Finding::new(
        code::RECORD_FAILED,
        Severity::Warning,
        format!("could not record what this push wrote to {image}: {why}"),
    )
    .about(image.to_owned())
    .help("the push itself stands; `tagguard audit` cannot tell whether these tags move later. Check that the credentials may push to the repository, or set `audit: { record: false }` in the policy")
}
