//! Reading one repository for an audit: its tags, where each tag the policy has a say about
//! points, the labels of the images that carry version and commit tags, and tagguard's records.
//! Tag pages are streamed: a page's tags are looked up while the next page is read. Requests
//! run concurrently (bounded); each manifest and config is read once per digest.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use futures_util::StreamExt as _;
use serde_json::Value;

use super::error::AuditError;
use super::finding::{Labels, Observed, TagState};
use super::record;
use super::rules::{Role, Rules, is_fallback_tag};
use crate::registry::{Digest, RegistryClient, RegistryError, manifest};

/// The most of an image config that is read: real ones are a few KiB.
const MAX_CONFIG_BYTES: usize = 1 << 20;

pub const VERSION_LABEL: &str = "org.opencontainers.image.version";
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// What was read, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub tags: usize,
    pub audited: usize,
    pub records: usize,
}

pub async fn observe(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    rules: &Rules,
    concurrency: usize,
) -> Result<(Observed, Counts), AuditError> {
    // Tags are looked up as their page arrives; only the fallback tags are kept aside.
    let seen = RefCell::new((0usize, Vec::<String>::new()));
    let heads = client
        .tag_pages(repository)
        .flat_map(|page| {
            let items: Vec<Result<(String, Role), Box<RegistryError>>> = match page {
                Ok(tags) => {
                    let mut seen = seen.borrow_mut();
                    seen.0 += tags.len();
                    tags.into_iter()
                        .filter_map(|tag| {
                            if is_fallback_tag(&tag) {
                                seen.1.push(tag);
                                return None;
                            }
                            rules.role(&tag).map(|role| Ok((tag, role)))
                        })
                        .collect()
                }
                Err(e) => vec![Err(Box::new(e))],
            };
            futures_util::stream::iter(items)
        })
        .map(|item| async move {
            let (tag, role) = item?;
            let head = client
                .head_manifest(repository, &tag)
                .await
                .map_err(Box::new)?;
            Ok::<_, Box<RegistryError>>((tag, role, head))
        })
        .buffer_unordered(concurrency);
    let mut states = Vec::new();
    {
        let mut heads = std::pin::pin!(heads);
        while let Some(found) = heads.next().await {
            let (tag, role, head) = found.map_err(|e| AuditError::registry(image)(*e))?;
            // A tag deleted since the listing has nothing left to audit.
            if let Some(head) = head {
                states.push(TagState {
                    tag,
                    digest: head.digest,
                    role,
                });
            }
        }
    }
    let (tag_count, fallback_tags) = seen.into_inner();
    states.sort_by(|a, b| a.tag.cmp(&b.tag));

    let labelled: BTreeSet<&Digest> = states
        .iter()
        .filter(|s| s.role.version.is_some() || s.role.commit.is_some())
        .map(|s| &s.digest)
        .collect();
    let labels = labels(client, image, repository, &labelled, concurrency).await?;
    let subjects: Vec<Digest> = states
        .iter()
        .filter(|s| s.role.immutable)
        .map(|s| s.digest.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let records = record::read_records(
        client,
        image,
        repository,
        &subjects,
        &fallback_tags,
        concurrency,
    )
    .await?;
    let counts = Counts {
        tags: tag_count,
        audited: states.len(),
        records: records.values().map(Vec::len).sum(),
    };
    Ok((
        Observed {
            tags: states,
            labels,
            records,
        },
        counts,
    ))
}

/// The labels of every image in `digests`: its config's, or every platform's for an index.
async fn labels(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digests: &BTreeSet<&Digest>,
    concurrency: usize,
) -> Result<HashMap<Digest, Labels>, AuditError> {
    // Manifest digest → config digests (through the children of an index).
    let tops = read_manifests(
        client,
        image,
        repository,
        digests.iter().copied(),
        concurrency,
    )
    .await?;
    let children: BTreeSet<&Digest> = tops.values().flat_map(|p| &p.manifests).collect();
    let children =
        read_manifests(client, image, repository, children.into_iter(), concurrency).await?;
    let configs_of = |d: &Digest| -> Vec<Digest> {
        let parts = &tops[d];
        parts
            .config
            .iter()
            .cloned()
            .chain(
                parts
                    .manifests
                    .iter()
                    .filter_map(|c| children.get(c)?.config.clone()),
            )
            .collect()
    };
    let wanted: BTreeSet<Digest> = digests.iter().flat_map(|d| configs_of(d)).collect();
    let mut read = futures_util::stream::iter(wanted.into_iter().map(|d| async move {
        let labels = read_config(client, image, repository, &d).await;
        (d, labels)
    }))
    .buffer_unordered(concurrency);
    let mut configs: HashMap<Digest, Labels> = HashMap::new();
    while let Some((d, labels)) = read.next().await {
        configs.insert(d, labels?);
    }
    Ok(digests
        .iter()
        .map(|d| {
            let mut all = Labels::default();
            for c in configs_of(d) {
                if let Some(l) = configs.get(&c) {
                    all.versions.extend(l.versions.iter().cloned());
                    all.revisions.extend(l.revisions.iter().cloned());
                }
            }
            ((*d).clone(), all)
        })
        .collect())
}

/// What each manifest refers to: its config, or its children.
struct Refs {
    config: Option<Digest>,
    manifests: Vec<Digest>,
}

async fn read_manifests<'a>(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digests: impl Iterator<Item = &'a Digest>,
    concurrency: usize,
) -> Result<HashMap<Digest, Refs>, AuditError> {
    let mut read = futures_util::stream::iter(
        digests.map(|d| async move { (d, client.get_manifest(repository, &d.to_string()).await) }),
    )
    .buffer_unordered(concurrency);
    let mut out = HashMap::new();
    while let Some((d, m)) = read.next().await {
        let Some(m) = m.map_err(AuditError::registry(image))? else {
            continue;
        };
        let parts = manifest::parse(&m.bytes)
            .map_err(|e| AuditError::content(image, format!("manifest {d}"), e))?;
        out.insert(
            d.clone(),
            Refs {
                config: parts.config,
                manifests: parts.manifests.into_iter().map(|c| c.digest).collect(),
            },
        );
    }
    Ok(out)
}

/// An image config's version and revision labels, read with a bound and checked against its
/// digest.
async fn read_config(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digest: &Digest,
) -> Result<Labels, AuditError> {
    let what = || format!("image config {digest}");
    let mut response = client
        .get_blob(repository, digest)
        .await
        .map_err(AuditError::registry(image))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AuditError::content(image, what(), format!("reading it: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(AuditError::content(
                image,
                what(),
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if digest.recompute(&bytes).is_some_and(|d| &d != digest) {
        return Err(AuditError::content(
            image,
            what(),
            "its bytes do not match its digest",
        ));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AuditError::content(image, what(), format!("not JSON: {e}")))?;
    let label = |k: &str| -> Vec<String> {
        v["config"]["Labels"][k]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .into_iter()
            .collect()
    };
    Ok(Labels {
        versions: label(VERSION_LABEL),
        revisions: label(REVISION_LABEL),
    })
}
