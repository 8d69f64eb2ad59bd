//! Reading one repository for an audit: its tags, where each tag the policy has a say about
//! points, the labels of the images that carry version and commit tags, and tagguard's records.
//! Tag pages are streamed: a page's tags are looked up while the next page is read. Requests
//! run concurrently (bounded); each manifest and config is read once per digest.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use futures_util::StreamExt as _;

use super::error::AuditError;
use super::finding::{Observed, TagState};
use super::record::{self, is_fallback_tag};
use super::rules::{Role, Rules};
use crate::revision::{self, ConfigError, Labels};
use tagguard_registry::{Digest, RegistryClient, RegistryError, parse_manifest};

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
    let listed = look_up_tags(client, image, repository, rules, concurrency).await?;
    let labelled: BTreeSet<&Digest> = listed
        .states
        .iter()
        .filter(|s| s.role.version.is_some() || s.role.commit.is_some())
        .map(|s| &s.digest)
        .collect();
    let subjects: Vec<Digest> = listed
        .states
        .iter()
        .filter(|s| s.role.immutable)
        .map(|s| s.digest.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The labels and the records are read at the same time: neither needs the other.
    let (labels, records) = futures_util::future::join(
        labels(
            client,
            image,
            repository,
            &labelled,
            listed.refs,
            concurrency,
        ),
        record::read_records(
            client,
            image,
            repository,
            &subjects,
            &listed.fallback_tags,
            concurrency,
        ),
    )
    .await;
    let (labels, records) = (labels?, records?);
    let counts = Counts {
        tags: listed.count,
        audited: listed.states.len(),
        records: records.values().map(Vec::len).sum(),
    };
    Ok((
        Observed {
            tags: listed.states,
            labels,
            records,
        },
        counts,
    ))
}

/// The tags of a repository and where those the policy has a say about point.
struct Listed {
    /// Tags in the repository.
    count: usize,
    states: Vec<TagState>,
    /// The references of the manifests read whole on the way (version and commit tags, whose
    /// labels are needed: a GET instead of a HEAD saves reading them again).
    refs: HashMap<Digest, Refs>,
    /// `sha256-<hex>` tags: the referrers fallback scheme's indexes.
    fallback_tags: Vec<String>,
}

/// Looks every tag the policy has a say about up as its page arrives.
async fn look_up_tags(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    rules: &Rules,
    concurrency: usize,
) -> Result<Listed, AuditError> {
    let seen = RefCell::new((0usize, Vec::<String>::new()));
    let lookups = client
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
            let found = if role.version.is_some() || role.commit.is_some() {
                let m = client.get_manifest(repository, &tag).await;
                m.map_err(Box::new)?.map(|m| (m.digest, Some(m.bytes)))
            } else {
                let h = client.head_manifest(repository, &tag).await;
                h.map_err(Box::new)?.map(|h| (h.digest, None))
            };
            Ok::<_, Box<RegistryError>>((tag, role, found))
        })
        .buffer_unordered(concurrency);
    let mut states = Vec::new();
    let mut refs = HashMap::new();
    {
        let mut lookups = std::pin::pin!(lookups);
        while let Some(found) = lookups.next().await {
            let (tag, role, found) = found.map_err(|e| AuditError::registry(image)(*e))?;
            // A tag deleted since the listing has nothing left to audit.
            let Some((digest, bytes)) = found else {
                continue;
            };
            if let Some(bytes) = bytes
                && !refs.contains_key(&digest)
            {
                refs.insert(digest.clone(), parse_refs(image, &digest, &bytes)?);
            }
            states.push(TagState { tag, digest, role });
        }
    }
    let (count, fallback_tags) = seen.into_inner();
    states.sort_by(|a, b| a.tag.cmp(&b.tag));
    Ok(Listed {
        count,
        states,
        refs,
        fallback_tags,
    })
}

/// The labels of every image in `digests`: its config's, or every platform's for an index.
#[allow(clippy::type_complexity)]
async fn labels(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digests: &BTreeSet<&Digest>,
    mut tops: HashMap<Digest, Refs>,
    concurrency: usize,
) -> Result<HashMap<Digest, Vec<Labels>>, AuditError> {
    // Manifest digest → config digests (through the children of an index).
    let missing = digests.iter().copied().filter(|d| !tops.contains_key(*d));
    let more = read_manifests(client, image, repository, missing, concurrency).await?;
    tops.extend(more);
    let children: BTreeSet<&Digest> = tops.values().flat_map(|p| &p.manifests).collect();
    let children =
        read_manifests(client, image, repository, children.into_iter(), concurrency).await?;
    // A manifest deleted while the audit ran has no labels to read.
    let configs_of = |d: &Digest| -> Vec<Digest> {
        let Some(parts) = tops.get(d) else {
            return Vec::new();
        };
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
        let labels = config_labels(client, image, repository, &d).await;
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
            let all = configs_of(d)
                .iter()
                .filter_map(|c| configs.get(c).cloned())
                .collect();
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
        out.insert(d.clone(), parse_refs(image, d, &m.bytes)?);
    }
    Ok(out)
}

fn parse_refs(image: &str, digest: &Digest, bytes: &[u8]) -> Result<Refs, AuditError> {
    let parts = parse_manifest(bytes)
        .map_err(|e| AuditError::content(image, format!("manifest {digest}"), e))?;
    Ok(Refs {
        config: parts.config,
        manifests: parts.manifests.into_iter().map(|c| c.digest).collect(),
    })
}

/// An image config's version and revision labels ([`revision::read_config`]: bounded, checked
/// against its digest).
async fn config_labels(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    digest: &Digest,
) -> Result<Labels, AuditError> {
    let what = || format!("image config {digest}");
    let bytes = revision::read_config(client, repository, digest)
        .await
        .map_err(|e| match e {
            ConfigError::Registry(e) => AuditError::registry(image)(e),
            ConfigError::Content { detail, .. } => AuditError::content(image, what(), detail),
        })?;
    revision::labels(&bytes).map_err(|e| AuditError::content(image, what(), e))
}
