//! Writing records of a push, in two steps: [`prepare`] reads what the records need (the
//! referrers API probe, each image's fallback index) and makes sure the empty blob is there,
//! while the push's tags are written; [`finish`] puts each record by digest once the last write
//! was answered, then — only on registries without the referrers API — puts the fallback
//! indexes back with the record listed. A record that cannot be written is reported; it never
//! undoes the push.

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::{
    ARTIFACT_TYPE, EMPTY_CONTENT, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, RecordMeta, Subject,
    fallback_tag, manifest, parse_annotations,
};
use tagguard_registry::{Digest, RegistryClient, RegistryError};

/// What writing the records of one push did.
#[derive(Debug, Default)]
pub struct RecordReport {
    pub written: Vec<RecordWritten>,
    pub failed: Vec<RecordFailure>,
}

/// A record in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWritten {
    /// The image the record is about.
    pub subject: Digest,
    /// The record manifest's digest.
    pub record: Digest,
    pub tags: Vec<String>,
    /// The fallback tag updated to list the record (registries without the referrers API).
    pub fallback_tag: Option<String>,
}

/// A record that could not be written. The tags themselves were written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("could not record that tagguard wrote {} at {subject}: {reason}", .tags.join(", "))]
#[diagnostic(
    code(tagguard::audit::record),
    help(
        "the push itself succeeded; `tagguard audit` cannot tell whether these tags move later. Check that the credentials may push to the repository, then push again (an existing tag at the same digest is left as it is and recorded)"
    )
)]
pub struct RecordFailure {
    pub subject: Digest,
    pub tags: Vec<String>,
    /// What went wrong, as the registry client said it.
    pub reason: String,
}

/// One image to record: what it is, and the tags a push wrote at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub subject: Subject,
    pub tags: Vec<String>,
}

/// Records that tagguard wrote each `(tag, digest)` of `written` in `repository`: one record
/// per digest. Call it after the push read its tags back; every failure is in the report. The
/// descriptors of images not in `known` are looked up first (one round trip).
pub async fn write_records(
    client: &RegistryClient,
    repository: &str,
    written: &[(String, Digest)],
    known: &[Subject],
    meta: &RecordMeta,
) -> RecordReport {
    let (targets, failed) = targets(client, repository, written, known).await;
    let mut report = write_records_for(client, repository, &targets, meta).await;
    report.failed.extend(failed);
    report
}

/// What to record for `written` (tag, digest): one target per digest, its descriptor from
/// `known` or else looked up (one round trip); an image that cannot be looked up is a failure.
pub async fn targets(
    client: &RegistryClient,
    repository: &str,
    written: &[(String, Digest)],
    known: &[Subject],
) -> (Vec<Target>, Vec<RecordFailure>) {
    let mut groups: Vec<(Digest, Vec<String>)> = Vec::new();
    for (tag, digest) in written {
        match groups.iter_mut().find(|(d, _)| d == digest) {
            Some((_, tags)) => tags.push(tag.clone()),
            None => groups.push((digest.clone(), vec![tag.clone()])),
        }
    }
    let subjects = join_all(groups.iter().map(|(d, _)| async move {
        match known.iter().find(|s| s.digest == *d) {
            Some(s) => Ok(s.clone()),
            None => subject_of(client, repository, d).await,
        }
    }))
    .await;
    let (mut targets, mut failed) = (Vec::new(), Vec::new());
    for ((digest, tags), subject) in groups.into_iter().zip(subjects) {
        match subject {
            Ok(subject) => targets.push(Target { subject, tags }),
            Err(reason) => failed.push(RecordFailure {
                subject: digest,
                tags,
                reason,
            }),
        }
    }
    (targets, failed)
}

/// Records `targets` in `repository`: [`prepare`] then [`finish`]. Two round trips with the
/// referrers API, three without (plus the upload of the empty blob the first time in a
/// repository). A push overlaps [`prepare`] with its writes and the record's PUT with its
/// read-back, so there it costs one.
pub async fn write_records_for(
    client: &RegistryClient,
    repository: &str,
    targets: &[Target],
    meta: &RecordMeta,
) -> RecordReport {
    let subjects: Vec<Digest> = targets.iter().map(|t| t.subject.digest.clone()).collect();
    let prepared = prepare(client, repository, &subjects).await;
    finish(client, repository, prepared, targets, meta).await
}

/// What recording in one repository needs to know before it writes, read (and the empty blob
/// uploaded) while a push's tags are still being written: whether the registry offers the
/// referrers API, and the fallback index of each image as it is now.
#[derive(Debug)]
pub struct Prepared {
    /// Whether the registry offers the referrers API; `None` when no image was known to ask
    /// about (a Docker engine push): then [`finish`] asks.
    api: Option<Result<bool, String>>,
    indexes: Vec<(Digest, Result<Option<Value>, String>)>,
}

/// Reads what recording the images `subjects` in `repository` needs, at once: the referrers API
/// probe, each image's fallback index, and whether the empty blob (the record's config and
/// layer) is there — uploading it when it is not. One round trip (two more the first time in a
/// repository). Call it only for a push that is going to write: the empty blob is content.
pub async fn prepare(client: &RegistryClient, repository: &str, subjects: &[Digest]) -> Prepared {
    let Some(first) = subjects.first() else {
        // A failure here shows in the record's PUT, which uploads the blob itself then.
        let _ = ensure_empty_blob(client, repository).await;
        return Prepared {
            api: None,
            indexes: Vec::new(),
        };
    };
    let (api, indexes, _) = tokio::join!(
        client.referrers(repository, first, Some(ARTIFACT_TYPE)),
        join_all(
            subjects
                .iter()
                .map(|d| async move { (d.clone(), fallback_index(client, repository, d).await) })
        ),
        // A failure here shows in the record's PUT, which uploads the blob itself then.
        ensure_empty_blob(client, repository),
    );
    Prepared {
        api: Some(has_api(api)),
        indexes,
    }
}

fn has_api(probe: Result<Option<Vec<Vec<u8>>>, RegistryError>) -> Result<bool, String> {
    probe.map(|a| a.is_some()).map_err(|e| {
        format!("the record is in the registry, but whether it is listed is unknown: {e}")
    })
}

/// Writes the records of `targets`, with what [`prepare`] read: each record's PUT (by digest)
/// at once; then, only on a registry without the referrers API, each image's fallback index
/// with the record added (an image `prepare` did not read is read first).
pub async fn finish(
    client: &RegistryClient,
    repository: &str,
    prepared: Prepared,
    targets: &[Target],
    meta: &RecordMeta,
) -> RecordReport {
    let mut report = RecordReport::default();
    let Prepared { api, mut indexes } = prepared;
    // A re-run that finds its tags already holding its image, already recorded (a fallback
    // index lists a record naming them all), writes no second record.
    let (recorded, targets): (Vec<&Target>, Vec<&Target>) = targets
        .iter()
        .partition(|t| recorded_in(&indexes, t).is_some());
    for t in recorded {
        let (record, tag) = recorded_in(&indexes, t).expect("partitioned on it");
        report.written.push(RecordWritten {
            subject: t.subject.digest.clone(),
            record,
            tags: t.tags.clone(),
            fallback_tag: Some(tag),
        });
    }
    let Some(first) = targets.first() else {
        return report;
    };
    let probe = async {
        match api {
            Some(api) => api,
            None => has_api(
                client
                    .referrers(repository, &first.subject.digest, Some(ARTIFACT_TYPE))
                    .await,
            ),
        }
    };
    let (api, puts) = tokio::join!(
        probe,
        join_all(
            targets
                .iter()
                .map(|t| put_record(client, repository, t, meta)),
        )
    );
    let mut listings = Vec::new();
    for (target, record) in targets.iter().zip(puts) {
        let fail = |reason: String| RecordFailure {
            subject: target.subject.digest.clone(),
            tags: target.tags.clone(),
            reason,
        };
        match (record, &api) {
            (Err(reason), _) => report.failed.push(fail(reason)),
            (Ok(_), Err(reason)) => report.failed.push(fail(reason.clone())),
            (Ok((record, _)), Ok(true)) => report.written.push(RecordWritten {
                subject: target.subject.digest.clone(),
                record,
                tags: target.tags.clone(),
                fallback_tag: None,
            }),
            (Ok((record, bytes)), Ok(false)) => {
                let read = indexes
                    .iter()
                    .position(|(d, _)| *d == target.subject.digest)
                    .map(|k| indexes.swap_remove(k).1);
                listings.push((target, record, bytes, read));
            }
        }
    }
    let listed = join_all(
        listings
            .iter()
            .map(|(target, record, bytes, read)| async move {
                let existing = match read {
                    Some(read) => read.clone(),
                    None => fallback_index(client, repository, &target.subject.digest).await,
                }?;
                list_in_fallback(client, repository, target, record, bytes, existing.as_ref()).await
            }),
    )
    .await;
    for ((target, record, _, _), outcome) in listings.into_iter().zip(listed) {
        match outcome {
            Ok(tag) => report.written.push(RecordWritten {
                subject: target.subject.digest.clone(),
                record,
                tags: target.tags.clone(),
                fallback_tag: Some(tag),
            }),
            Err(reason) => report.failed.push(RecordFailure {
                subject: target.subject.digest.clone(),
                tags: target.tags.clone(),
                reason,
            }),
        }
    }
    report
}

/// The record (and its fallback tag) that already names every tag of `target` at its image,
/// as the fallback index read before the push's writes lists it.
fn recorded_in(
    indexes: &[(Digest, Result<Option<Value>, String>)],
    target: &Target,
) -> Option<(Digest, String)> {
    let subject = &target.subject.digest;
    let (_, Ok(Some(index))) = indexes.iter().find(|(d, _)| d == subject)? else {
        return None;
    };
    index["manifests"]
        .as_array()?
        .iter()
        .filter(|m| m["artifactType"] == ARTIFACT_TYPE)
        .find_map(|m| {
            let (tags, _) = parse_annotations(subject, &m["annotations"])?;
            let all = target.tags.iter().all(|t| tags.contains(t));
            all.then(|| m["digest"].as_str()?.parse().ok()).flatten()
        })
        .map(|record| (record, fallback_tag(subject)))
}

/// Uploads the empty blob unless the repository has it.
async fn ensure_empty_blob(client: &RegistryClient, repository: &str) -> Result<(), String> {
    let empty = Digest::sha256_of(EMPTY_CONTENT);
    if client
        .blob_exists(repository, &empty)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let session = client
        .start_upload(repository)
        .await
        .map_err(|e| e.to_string())?;
    client
        .finish_upload(
            repository,
            session,
            &empty,
            Bytes::from_static(EMPTY_CONTENT),
        )
        .await
        .map_err(|e| e.to_string())
}

/// An image's descriptor, from the registry.
async fn subject_of(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<Subject, String> {
    let by_digest = digest.to_string();
    match client
        .head_manifest(repository, &by_digest)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(h) if h.media_type.is_some() && h.size.is_some() => Ok(Subject {
            digest: h.digest,
            media_type: h.media_type.unwrap_or_default(),
            size: h.size.unwrap_or_default(),
        }),
        _ => {
            let m = client
                .get_manifest(repository, &by_digest)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("image {digest} is gone from {repository}"))?;
            Ok(Subject {
                size: m.bytes.len() as u64,
                media_type: if m.media_type.is_empty() {
                    MANIFEST_MEDIA_TYPE.to_owned()
                } else {
                    m.media_type
                },
                digest: m.digest,
            })
        }
    }
}

/// The fallback index of `digest` as it is now (`None`: no such tag yet).
async fn fallback_index(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<Option<Value>, String> {
    let tag = fallback_tag(digest);
    client
        .get_manifest(repository, &tag)
        .await
        .map_err(|e| e.to_string())?
        .map(|m| serde_json::from_slice::<Value>(&m.bytes))
        .transpose()
        .map_err(|e| format!("its fallback index {tag} is not JSON: {e}"))
}

/// Puts the record by digest. When that fails because the empty blob (`{}`, its config and
/// layer) is missing — [`prepare`] uploads it, but it may have failed or been skipped — the blob
/// is uploaded and the record put once more.
async fn put_record(
    client: &RegistryClient,
    repository: &str,
    target: &Target,
    meta: &RecordMeta,
) -> Result<(Digest, Vec<u8>), String> {
    let bytes = manifest(&target.subject, &target.tags, meta);
    let digest = Digest::sha256_of(&bytes);
    let reference = digest.to_string();
    let put = || client.put_manifest(repository, &reference, MANIFEST_MEDIA_TYPE, &bytes);
    if let Err(first) = put().await {
        let empty = Digest::sha256_of(EMPTY_CONTENT);
        if client
            .blob_exists(repository, &empty)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(first.to_string());
        }
        ensure_empty_blob(client, repository).await?;
        put().await.map_err(|e| e.to_string())?;
    }
    Ok((digest, bytes))
}

/// Adds the record to the image's fallback index and puts it back; returns the fallback tag.
async fn list_in_fallback(
    client: &RegistryClient,
    repository: &str,
    target: &Target,
    record: &Digest,
    bytes: &[u8],
    existing: Option<&Value>,
) -> Result<String, String> {
    let manifest: Value = serde_json::from_slice(bytes).expect("the record is JSON");
    let entry = json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": record.to_string(),
        "size": bytes.len(),
        "artifactType": ARTIFACT_TYPE,
        "annotations": manifest["annotations"],
    });
    let tag = fallback_tag(&target.subject.digest);
    let index = with_entry(existing, entry).map_err(|e| format!("{tag}: {e}"))?;
    client
        .put_manifest(repository, &tag, INDEX_MEDIA_TYPE, &index)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tag)
}

/// The fallback index with `entry` added; other referrers (other tools') stay as they were.
fn with_entry(existing: Option<&Value>, entry: Value) -> Result<Vec<u8>, String> {
    let mut index = match existing {
        Some(v) if v["manifests"].is_array() => v.clone(),
        Some(_) => {
            return Err(
                "its fallback tag holds something other than an index; leave it to whoever wrote it"
                    .into(),
            );
        }
        None => json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}),
    };
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("checked to be an array");
    manifests.retain(|m| m["digest"] != entry["digest"]);
    manifests.push(entry);
    Ok(index.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_index_keeps_other_referrers_and_lists_a_record_once() {
        let other = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
            {"digest": "sha256:aa", "artifactType": "application/vnd.other"}]});
        let entry = json!({"digest": "sha256:bb"});
        let once = with_entry(Some(&other), entry.clone()).unwrap();
        let v: Value = serde_json::from_slice(&once).unwrap();
        let twice = with_entry(Some(&v), entry).unwrap();
        let v: Value = serde_json::from_slice(&twice).unwrap();
        let digests: Vec<&str> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, ["sha256:aa", "sha256:bb"]);
        assert!(with_entry(Some(&json!({"config": {}})), json!({})).is_err());
        let fresh: Value = serde_json::from_slice(&with_entry(None, json!({})).unwrap()).unwrap();
        assert_eq!(fresh["mediaType"], INDEX_MEDIA_TYPE);
    }
}
