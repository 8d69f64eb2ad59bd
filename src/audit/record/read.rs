//! Reading records back: the referrers of each image that holds an immutable tag (referrers
//! API), and every fallback tag (`sha256-<hex>`) the repository lists — which also finds the
//! records of images no tag names any more, on registries without the API.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use serde_json::Value;

use super::{ARTIFACT_TYPE, Recorded, fallback_tag, parse_annotations, subject_of_fallback_tag};
use crate::audit::error::AuditError;
use tagguard_registry::{Digest, RegistryClient};

/// tagguard's records of one image `digest` in `repository`: through the referrers API, or
/// the image's fallback tag on a registry without it. One round trip (two without the API).
pub async fn of_image(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<Vec<Recorded>, String> {
    let listings = match client
        .referrers(repository, digest, Some(ARTIFACT_TYPE))
        .await
        .map_err(|e| format!("reading tagguard's records of {digest}: {e}"))?
    {
        Some(pages) => pages,
        None => client
            .get_manifest(repository, &fallback_tag(digest))
            .await
            .map_err(|e| format!("reading tagguard's records of {digest}: {e}"))?
            .map(|m| m.bytes)
            .filter(|b| serde_json::from_slice::<Value>(b).is_ok_and(|v| v["manifests"].is_array()))
            .into_iter()
            .collect(),
    };
    let mut out = Vec::new();
    for body in listings {
        let found = entries(client, repository, repository, digest, &body)
            .await
            .map_err(|e| e.to_string())?;
        out.extend(found.into_iter().map(|(_, r)| r));
    }
    Ok(out)
}

/// Per tag, what tagguard's records say it wrote in `repository`. `image` names the repository
/// in errors.
pub async fn read_records(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    subjects: &[Digest],
    fallback_tags: &[String],
    concurrency: usize,
) -> Result<HashMap<String, Vec<Recorded>>, AuditError> {
    let mut listings: Vec<(Digest, Vec<u8>)> = Vec::new();
    if let Some((first, rest)) = subjects.split_first() {
        let probe = client
            .referrers(repository, first, Some(ARTIFACT_TYPE))
            .await
            .map_err(AuditError::registry(image))?;
        if let Some(pages) = probe {
            listings.extend(pages.into_iter().map(|p| (first.clone(), p)));
            let mut more = futures_util::stream::iter(rest.iter().map(|d| async move {
                let pages = client.referrers(repository, d, Some(ARTIFACT_TYPE)).await;
                (d, pages)
            }))
            .buffer_unordered(concurrency);
            while let Some((d, pages)) = more.next().await {
                let pages = pages
                    .map_err(AuditError::registry(image))?
                    .unwrap_or_default();
                listings.extend(pages.into_iter().map(|p| (d.clone(), p)));
            }
        }
    }
    let mut fallbacks = futures_util::stream::iter(fallback_tags.iter().filter_map(|tag| {
        let subject = subject_of_fallback_tag(tag)?;
        Some(async move { (subject, client.get_manifest(repository, tag).await) })
    }))
    .buffer_unordered(concurrency);
    while let Some((subject, index)) = fallbacks.next().await {
        // The spec: a fallback tag that holds no index means no referrers.
        if let Some(index) = index.map_err(AuditError::registry(image))?
            && serde_json::from_slice::<Value>(&index.bytes)
                .is_ok_and(|v| v["manifests"].is_array())
        {
            listings.push((subject, index.bytes));
        }
    }

    let mut records: HashMap<String, Vec<Recorded>> = HashMap::new();
    for (subject, body) in listings {
        for (tags, record) in entries(client, image, repository, &subject, &body).await? {
            for tag in tags {
                let list = records.entry(tag).or_default();
                if !list.contains(&record) {
                    list.push(record.clone());
                }
            }
        }
    }
    Ok(records)
}

/// tagguard's records among one listing of referrers (an index).
async fn entries(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    subject: &Digest,
    body: &[u8],
) -> Result<Vec<(Vec<String>, Recorded)>, AuditError> {
    let what = || format!("the referrers of {subject}");
    let index: Value = serde_json::from_slice(body)
        .map_err(|e| AuditError::content(image, what(), format!("not JSON: {e}")))?;
    let Some(manifests) = index["manifests"].as_array() else {
        return Err(AuditError::content(image, what(), "not an index"));
    };
    let mut out = Vec::new();
    for m in manifests
        .iter()
        .filter(|m| m["artifactType"] == ARTIFACT_TYPE)
    {
        if let Some(found) = parse_annotations(subject, &m["annotations"]) {
            out.push(found);
            continue;
        }
        // A registry may list a referrer without its annotations: read the record itself.
        let Some(digest) = m["digest"].as_str() else {
            continue;
        };
        let record = client
            .get_manifest(repository, digest)
            .await
            .map_err(AuditError::registry(image))?;
        let Some(record) = record else { continue };
        let v: Value = serde_json::from_slice(&record.bytes)
            .map_err(|e| AuditError::content(image, format!("record {digest}"), e.to_string()))?;
        out.extend(parse_annotations(subject, &v["annotations"]));
    }
    Ok(out)
}
