//! The record of what a prune deleted, beside the image, as push records what it wrote: one
//! small OCI artifact per deleted digest whose `subject` is the image the tags held and whose
//! annotations name the tags and the time. Registries with the referrers API list it under the
//! image; for those without (CNCF distribution 2.8), the image's fallback tag
//! (`sha256-<hex>`) lists it — which keeps it findable after the image itself is deleted.
//! `audit` reads only push records (their own artifact type), so these never become findings.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::audit::record::{
    INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Subject, artifact, fallback_tag,
};
use tagguard_registry::{Digest, RegistryClient};

pub const ARTIFACT_TYPE: &str = "application/vnd.tagguard.prune.v1+json";
/// The tags a prune removed from the subject, comma-separated.
pub const DELETED: &str = "io.tagguard.prune.deleted";

/// The image the deleted tags held, as a descriptor needs it.
pub type Held = Subject;

/// The record of `tags` removed from `held` at `time`: bytes exactly as put.
pub fn manifest(held: &Held, tags: &[String], time: DateTime<Utc>) -> Vec<u8> {
    artifact(
        ARTIFACT_TYPE,
        held,
        json!({
            DELETED: tags.join(","),
            "org.opencontainers.image.created": time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "io.tagguard.record.tool": format!("tagguard {}", env!("CARGO_PKG_VERSION")),
        }),
    )
}

/// Writes the record of `tags` removed from `held`; the error says why it could not be.
pub async fn write(
    client: &RegistryClient,
    repository: &str,
    held: &Held,
    tags: &[String],
    time: DateTime<Utc>,
) -> Result<(), String> {
    crate::audit::record::prepare(client, repository, &[]).await;
    let bytes = manifest(held, tags, time);
    let digest = Digest::sha256_of(&bytes);
    client
        .put_manifest(repository, &digest.to_string(), MANIFEST_MEDIA_TYPE, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    let api = client
        .referrers(repository, &held.digest, Some(ARTIFACT_TYPE))
        .await
        .map_err(|e| e.to_string())?;
    if api.is_some() {
        return Ok(());
    }
    let tag = fallback_tag(&held.digest);
    let existing = client
        .get_manifest(repository, &tag)
        .await
        .map_err(|e| e.to_string())?;
    let mut index: Value = match existing {
        Some(m) => serde_json::from_slice(&m.bytes)
            .map_err(|e| format!("the fallback index {tag} is not JSON: {e}"))?,
        None => json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}),
    };
    let Some(list) = index["manifests"].as_array_mut() else {
        return Err(format!(
            "{tag} holds something other than an index; leave it to whoever wrote it"
        ));
    };
    let annotations: Value =
        serde_json::from_slice::<Value>(&bytes).expect("JSON")["annotations"].clone();
    list.push(json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest.to_string(),
        "size": bytes.len(),
        "artifactType": ARTIFACT_TYPE,
        "annotations": annotations,
    }));
    client
        .put_manifest(
            repository,
            &tag,
            INDEX_MEDIA_TYPE,
            index.to_string().as_bytes(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
