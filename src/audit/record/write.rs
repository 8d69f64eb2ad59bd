//! Writing records after a push. Everything a record needs is asked at once (the empty blob, the
//! referrers API, the images' descriptors, their fallback indexes), then the records are put by
//! digest, then — only on registries without the referrers API — the fallback indexes. A record
//! that cannot be written is reported; it never undoes the push.

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::{
    ARTIFACT_TYPE, EMPTY_CONTENT, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, RecordMeta, Subject,
    fallback_tag, manifest,
};
use crate::registry::{Digest, RegistryClient, RegistryError};

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

/// Records that tagguard wrote each `(tag, digest)` of `written` in `repository`: one record
/// per digest. Call it after the push read its tags back; every failure is in the report.
pub async fn write_records(
    client: &RegistryClient,
    repository: &str,
    written: &[(String, Digest)],
    meta: &RecordMeta,
) -> RecordReport {
    let mut groups: Vec<(Digest, Vec<String>)> = Vec::new();
    for (tag, digest) in written {
        match groups.iter_mut().find(|(d, _)| d == digest) {
            Some((_, tags)) => tags.push(tag.clone()),
            None => groups.push((digest.clone(), vec![tag.clone()])),
        }
    }
    let mut report = RecordReport::default();
    let Some((first, _)) = groups.first() else {
        return report;
    };
    let (empty, api, looked_up) = tokio::join!(
        ensure_empty_blob(client, repository),
        client.referrers(repository, first, Some(ARTIFACT_TYPE)),
        join_all(groups.iter().map(|(d, _)| look_up(client, repository, d))),
    );
    let shared = empty
        .and(api.map(|a| a.is_some()))
        .map_err(|e| e.to_string());
    let mut ready = Vec::new();
    for ((subject, tags), found) in groups.into_iter().zip(looked_up) {
        match (&shared, found) {
            (Ok(api), Ok(found)) => ready.push((tags, found, *api)),
            (Err(reason), _) => report.failed.push(RecordFailure {
                subject,
                tags,
                reason: reason.clone(),
            }),
            (_, Err(reason)) => report.failed.push(RecordFailure {
                subject,
                tags,
                reason,
            }),
        }
    }
    let outcomes = join_all(
        ready
            .iter()
            .map(|(tags, found, api)| put(client, repository, tags, found, *api, meta)),
    )
    .await;
    for ((tags, found, _), outcome) in ready.into_iter().zip(outcomes) {
        match outcome {
            Ok((record, fallback_tag)) => report.written.push(RecordWritten {
                subject: found.subject.digest,
                record,
                tags,
                fallback_tag,
            }),
            Err(reason) => report.failed.push(RecordFailure {
                subject: found.subject.digest,
                tags,
                reason,
            }),
        }
    }
    report
}

/// What one image's record needs read first.
struct Found {
    subject: Subject,
    /// The fallback index as it is now (`None`: no such tag yet).
    fallback: Option<Value>,
}

async fn look_up(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<Found, String> {
    let (by_digest, fallback_tag) = (digest.to_string(), fallback_tag(digest));
    let (head, fallback) = tokio::join!(
        client.head_manifest(repository, &by_digest),
        client.get_manifest(repository, &fallback_tag),
    );
    let subject = match head.map_err(|e| e.to_string())? {
        Some(h) if h.media_type.is_some() && h.size.is_some() => Subject {
            digest: h.digest,
            media_type: h.media_type.unwrap_or_default(),
            size: h.size.unwrap_or_default(),
        },
        _ => {
            let m = client
                .get_manifest(repository, &digest.to_string())
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("image {digest} is gone from {repository}"))?;
            Subject {
                size: m.bytes.len() as u64,
                media_type: if m.media_type.is_empty() {
                    MANIFEST_MEDIA_TYPE.to_owned()
                } else {
                    m.media_type
                },
                digest: m.digest,
            }
        }
    };
    let fallback = fallback
        .map_err(|e| e.to_string())?
        .map(|m| serde_json::from_slice::<Value>(&m.bytes))
        .transpose()
        .map_err(|e| format!("its fallback index {fallback_tag} is not JSON: {e}"))?;
    Ok(Found { subject, fallback })
}

/// The record's config and layer, `{}`, must be in the repository before the record.
async fn ensure_empty_blob(client: &RegistryClient, repository: &str) -> Result<(), RegistryError> {
    let digest = Digest::sha256_of(EMPTY_CONTENT);
    if client.blob_exists(repository, &digest).await? {
        return Ok(());
    }
    let session = client.start_upload(repository).await?;
    client
        .finish_upload(
            repository,
            session,
            &digest,
            Bytes::from_static(EMPTY_CONTENT),
        )
        .await
}

/// Puts the record by digest, then (without the referrers API) the fallback index listing it.
async fn put(
    client: &RegistryClient,
    repository: &str,
    tags: &[String],
    found: &Found,
    api: bool,
    meta: &RecordMeta,
) -> Result<(Digest, Option<String>), String> {
    let bytes = manifest(&found.subject, tags, meta);
    let digest = Digest::sha256_of(&bytes);
    client
        .put_manifest(repository, &digest.to_string(), MANIFEST_MEDIA_TYPE, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    if api {
        return Ok((digest, None));
    }
    let record: Value = serde_json::from_slice(&bytes).expect("the record is JSON");
    let entry = json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest.to_string(),
        "size": bytes.len(),
        "artifactType": ARTIFACT_TYPE,
        "annotations": record["annotations"],
    });
    let tag = fallback_tag(&found.subject.digest);
    let index = with_entry(found.fallback.as_ref(), entry).map_err(|e| format!("{tag}: {e}"))?;
    client
        .put_manifest(repository, &tag, INDEX_MEDIA_TYPE, &index)
        .await
        .map_err(|e| e.to_string())?;
    Ok((digest, Some(tag)))
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
