//! Reading one repository for a prune: every tag and the manifest it holds (what it links to:
//! an index's children, a referrer's subject), tagguard's records of when each tag was written,
//! and — for tags whose age matters and that no record dates — the image's `created`. Tag pages
//! are streamed: a page's tags are read while the next page comes. Requests run concurrently
//! (bounded), each manifest and config once per digest.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::decide::{Seen, is_referrer_tag, needs_age};
use super::error::PruneError;
use super::placeholder;
use super::reach::Links;
use super::record::Held;
use crate::audit::AuditError;
use crate::audit::record::is_fallback_tag;
use crate::audit::record::read_records;
use crate::audit::rules::Rules;
use crate::policy::Policy;
use crate::revision::{self, ConfigError, Next};
use tagguard_registry::{Digest, RegistryClient, RegistryError};

/// What was read in one repository.
#[derive(Debug, Default)]
pub struct Observed {
    pub seen: Vec<Seen>,
    pub links: HashMap<Digest, Links>,
    /// Each tag's manifest as a descriptor needs it, for the records of what prune deleted.
    pub held: HashMap<Digest, Held>,
    /// Records of tagguard's writes found.
    pub records: usize,
}

/// One tag's manifest, as far as prune needs it.
struct Read {
    tag: String,
    digest: Digest,
    media_type: String,
    size: u64,
    links: Links,
    next: Option<Next>,
    placeholder: bool,
}

pub async fn observe(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    policy: &Policy,
    rules: &Rules,
    concurrency: usize,
) -> Result<Observed, PruneError> {
    let read = read_tags(client, image, repository, concurrency).await?;
    let aged: Vec<&Read> = read
        .iter()
        .filter(|r| {
            !is_referrer_tag(&r.tag)
                && rules
                    .rule_of(&r.tag)
                    .is_some_and(|(i, _)| needs_age(&policy.rules[i]))
        })
        .collect();
    let subjects: Vec<Digest> = aged
        .iter()
        .map(|r| r.digest.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let fallback: Vec<String> = read
        .iter()
        .filter(|r| is_fallback_tag(&r.tag))
        .map(|r| r.tag.clone())
        .collect();
    let records = if aged.is_empty() {
        HashMap::new()
    } else {
        read_records(client, image, repository, &subjects, &fallback, concurrency)
            .await
            .map_err(|e| match e {
                AuditError::Registry { source, .. } => PruneError::registry(image)(*source),
                e => PruneError::content(image, "tagguard's records", e.to_string()),
            })?
    };
    let written = |r: &Read| -> Option<DateTime<Utc>> {
        records
            .get(&r.tag)?
            .iter()
            .filter(|rec| rec.digest == r.digest)
            .filter_map(|rec| DateTime::parse_from_rfc3339(&rec.time).ok())
            .map(|t| t.with_timezone(&Utc))
            .max()
    };
    let undated: Vec<(Digest, Next)> = aged
        .iter()
        .filter(|r| written(r).is_none() && !r.placeholder)
        .filter_map(|r| Some((r.digest.clone(), r.next.clone()?)))
        .collect::<HashMap<_, _>>()
        .into_iter()
        .collect();
    let created = created(client, image, repository, undated, concurrency).await?;
    let aged: BTreeSet<&str> = aged.iter().map(|r| r.tag.as_str()).collect();
    let mut out = Observed {
        records: records.values().map(Vec::len).sum(),
        ..Observed::default()
    };
    for r in &read {
        let dated = aged.contains(r.tag.as_str());
        out.seen.push(Seen {
            tag: r.tag.clone(),
            digest: r.digest.clone(),
            written: written(r).filter(|_| dated),
            created: created.get(&r.digest).copied().filter(|_| dated),
            placeholder: r.placeholder,
        });
    }
    for r in read {
        let held = Held {
            digest: r.digest.clone(),
            media_type: r.media_type,
            size: r.size,
        };
        out.held.insert(r.digest.clone(), held);
        out.links.insert(r.digest, r.links);
    }
    out.seen.sort_by(|a, b| a.tag.cmp(&b.tag));
    Ok(out)
}

/// Every tag and its manifest, read as the tag pages arrive.
async fn read_tags(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    concurrency: usize,
) -> Result<Vec<Read>, PruneError> {
    let failed = RefCell::new(None::<RegistryError>);
    let reads = client
        .tag_pages(repository)
        .flat_map(|page| {
            let tags = match page {
                Ok(tags) => tags,
                Err(e) => {
                    *failed.borrow_mut() = Some(e);
                    Vec::new()
                }
            };
            futures_util::stream::iter(tags)
        })
        .map(|tag| async move {
            let m = client.get_manifest(repository, &tag).await;
            (tag, m)
        })
        .buffer_unordered(concurrency);
    let mut out = Vec::new();
    {
        let mut reads = std::pin::pin!(reads);
        while let Some((tag, m)) = reads.next().await {
            // A tag deleted since the listing has nothing left to decide.
            let Some(m) = m.map_err(PruneError::registry(image))? else {
                continue;
            };
            let what = || format!("the manifest of {tag} ({})", m.digest);
            let v: Value = serde_json::from_slice(&m.bytes)
                .map_err(|e| PruneError::content(image, what(), format!("not JSON: {e}")))?;
            let parts = tagguard_registry::parse_manifest(&m.bytes)
                .map_err(|e| PruneError::content(image, what(), e))?;
            let subject = v["subject"]["digest"].as_str().and_then(|d| d.parse().ok());
            out.push(Read {
                placeholder: placeholder::is_placeholder(&v),
                next: revision::next(&m.bytes).ok(),
                links: Links {
                    children: parts.manifests.into_iter().map(|c| c.digest).collect(),
                    subject,
                },
                tag,
                media_type: m.media_type,
                size: m.bytes.len() as u64,
                digest: m.digest,
            });
        }
    }
    if let Some(e) = failed.into_inner() {
        return Err(PruneError::registry(image)(e));
    }
    Ok(out)
}

/// The `created` of each image (an index: its linux/amd64 platform's, else its first's).
async fn created(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    images: Vec<(Digest, Next)>,
    concurrency: usize,
) -> Result<HashMap<Digest, DateTime<Utc>>, PruneError> {
    let mut reads = futures_util::stream::iter(images.into_iter().map(|(d, next)| async move {
        let c = created_of(client, image, repository, &d, next).await;
        (d, c)
    }))
    .buffer_unordered(concurrency);
    let mut out = HashMap::new();
    while let Some((d, c)) = reads.next().await {
        if let Some(t) = c? {
            out.insert(d, t);
        }
    }
    Ok(out)
}

async fn created_of(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digest: &Digest,
    mut next: Next,
) -> Result<Option<DateTime<Utc>>, PruneError> {
    for _ in 0..2 {
        match next {
            Next::Config(config) => {
                let Ok(config) = config.parse::<Digest>() else {
                    return Ok(None);
                };
                let bytes = image_config(client, image, repository, &config).await?;
                let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                return Ok(v["created"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)));
            }
            Next::Manifest(child) => {
                let m = client
                    .get_manifest(repository, &child)
                    .await
                    .map_err(PruneError::registry(image))?;
                let Some(m) = m else { return Ok(None) };
                let Ok(n) = revision::next(&m.bytes) else {
                    return Ok(None);
                };
                next = n;
            }
        }
    }
    log::debug!("{image}@{digest}: an index inside an index has no one `created`");
    Ok(None)
}

/// An image config ([`revision::read_config`]: bounded, checked against its digest).
async fn image_config(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digest: &Digest,
) -> Result<Vec<u8>, PruneError> {
    revision::read_config(client, repository, digest)
        .await
        .map_err(|e| match e {
            ConfigError::Registry(e) => PruneError::registry(image)(e),
            ConfigError::Content { detail, .. } => {
                PruneError::content(image, format!("image config {digest}"), detail)
            }
        })
}
