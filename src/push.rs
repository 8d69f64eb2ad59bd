//! `push`: plan (with the source's manifest fetched), apply, report. Nothing is written when
//! anything is refused; what is written goes in phases and is read back (see [`crate::apply`]).

use crate::apply::{self, ApplyOptions};
use crate::audit::{RecordMeta, Subject, write_records};
use crate::plan::{self, Decision};
use crate::registries::Registries;
use crate::registry::{Digest, Reference};
use crate::report::{Finding, Report, Severity, Status, Written, code};
use crate::source::{self, SourceSpec};
use crate::tags::Computed;

/// The whole `push` run, as one report, whatever happened. With `record`, what was written is
/// recorded beside each image for `tagguard audit` ([`crate::audit::write_records`]).
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
    let applied = apply::apply(plan, registries, options).await;
    report.decisions = applied.decisions;
    report.written = applied.written;
    report.findings.extend(applied.findings);
    if let Some(meta) = record.filter(|_| !options.dry_run) {
        let failures = record_writes(&report.written, &applied.manifests, meta, registries).await;
        report.findings.extend(failures);
    }
    report
}

/// Records what was written, one repository at a time in parallel; a record that cannot be
/// written is a warning, never a change to what the push did.
async fn record_writes(
    written: &[Written],
    manifests: &[(Digest, String, u64)],
    meta: &RecordMeta,
    registries: &Registries,
) -> Vec<Finding> {
    let mut images: Vec<&str> = written.iter().map(|w| w.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    let records = images.iter().map(|image| async move {
        let pairs: Vec<(String, Digest)> = written
            .iter()
            .filter(|w| w.image == *image)
            .map(|w| (w.tag.clone(), w.digest.clone()))
            .collect();
        let reference: Reference = match image.parse() {
            Ok(r) => r,
            Err(e) => return vec![failed(image, &format!("{e}"))],
        };
        let client = match registries.client(&reference.registry) {
            Ok(c) => c,
            Err(e) => return vec![failed(image, &e.to_string())],
        };
        // The descriptors the push knows save the record a lookup of each image.
        let known: Vec<Subject> = manifests
            .iter()
            .map(|(digest, media_type, size)| Subject {
                digest: digest.clone(),
                media_type: media_type.clone(),
                size: *size,
            })
            .collect();
        let outcome = write_records(&client, &reference.repository, &pairs, &known, meta).await;
        outcome
            .failed
            .iter()
            .map(|f| {
                failed(
                    image,
                    &format!("{} ({}): {}", f.subject, f.tags.join(", "), f.reason),
                )
            })
            .collect()
    });
    futures_util::future::join_all(records)
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
