//! Observing the registry: where each image × tag points now, and (for forward-only floating
//! tags) which releases each repository already has. Every lookup of a run is in flight at once
//! (bounded), over one connection pool per registry, with one token per scope.

use futures_util::StreamExt as _;

use crate::docker::IdKind;
use crate::policy::OnConflict;
use crate::registries::Registries;
use crate::revision::{self, Built};
use crate::source::SourceImage;
use crate::tags::Computed;
use tagguard_registry::{Digest, Reference, RegistryError, parse_manifest};

use super::{PlanError, Target};

/// What the registry holds, indexed like the targets and the computed tags.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// `current[image][tag]`: where the tag points; `None` when it does not exist.
    pub current: Vec<Vec<Option<Digest>>>,
    /// `existing[image]`: the repository's tags, when floating tags need them.
    pub existing: Vec<Vec<String>>,
    /// `configs[image][tag]`: the config digest an existing tag's image names, fetched only
    /// for a Docker source known by its config digest (the classic image store).
    pub configs: Vec<Vec<Option<Digest>>>,
    /// `revisions[image][tag]`: the image an existing immutable tag holds and the commit it
    /// says it was built from, read only where the rule says `on-conflict: keep-same-revision`
    /// and the tag holds another image than the source.
    pub revisions: Vec<Vec<Option<Built>>>,
    /// Some tag was found absent from its repository's tag list rather than by a lookup (a
    /// list may lag behind a write on some registries: a push looks such tags up again right
    /// before writing them).
    pub listed: bool,
}

/// More images than this make a fan-out: a repository's tag list is read before its tags are
/// looked up. Up to this many, every lookup goes out in the first round trip; past it, one
/// list per repository saves more requests (most fan-outs go to new repositories) than the
/// one round trip it adds for repositories that hold the tags.
pub const FAN_OUT: usize = 4;

/// Looks up every image × tag of `computed` (and lists each repository's tags when a release
/// has floating tags to place).
///
/// In a fan-out (more than [`FAN_OUT`] images), each repository's tag list is read first (one
/// page, one request): a repository that does not exist or holds none of the
/// tags needs no lookup, and only the listed tags are looked up. A list that runs past one
/// page, or that the registry does not serve, falls back to a lookup per tag.
pub async fn observe(
    computed: &Computed,
    targets: &[Target],
    registries: &Registries,
) -> Result<Observed, PlanError> {
    let floating = computed.version.is_some() && computed.tags.iter().any(|t| t.floating.is_some());
    let list_first = targets.len() > FAN_OUT;
    // A fan-out that lists every repository for its floating tags reads the whole list once
    // and uses it for the lookups too.
    let full = floating && list_first;
    let lookups = futures_util::stream::iter(
        targets
            .iter()
            .map(|t| look_up(t, registries, list_first, full)),
    )
    .buffered(registries.concurrency())
    .collect::<Vec<_>>();
    let listings =
        futures_util::stream::iter(targets.iter().filter(|_| floating && !full).map(|t| async {
            match registries
                .client(&t.image.registry)?
                .list_tags(&t.image.repository)
                .await
            {
                Err(RegistryError::UnknownRepository { .. }) => Ok(Vec::new()),
                other => other,
            }
        }))
        .buffered(registries.concurrency())
        .collect::<Vec<_>>();
    let (lookups, listings) = futures_util::future::join(lookups, listings).await;

    let mut current = Vec::with_capacity(targets.len());
    let mut existing = listings.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut listed = false;
    for looked in lookups {
        let looked = looked?;
        current.push(looked.found);
        listed |= looked.from_list;
        if full {
            existing.push(looked.listing.unwrap_or_default());
        }
    }
    existing.resize(targets.len(), Vec::new());
    Ok(Observed {
        current,
        existing,
        configs: Vec::new(),
        revisions: Vec::new(),
        listed,
    })
}

/// One target's tags as observed.
struct Looked {
    /// Where each tag points.
    found: Vec<Option<Digest>>,
    /// Whether a tag list (not a lookup) said some tag is absent.
    from_list: bool,
    /// The repository's tags, when they were read.
    listing: Option<Vec<String>>,
}

/// Observes one target's tags: each looked up, or — `list_first` — only those its tag list
/// (the first page; every page when `full`) holds.
async fn look_up(
    target: &Target,
    registries: &Registries,
    list_first: bool,
    full: bool,
) -> Result<Looked, RegistryError> {
    let client = registries.client(&target.image.registry)?;
    let repository = &target.image.repository;
    let listing = match (list_first, full) {
        (_, true) => match client.list_tags(repository).await {
            Err(RegistryError::UnknownRepository { .. }) => Some(Vec::new()),
            other => Some(other?),
        },
        // Any failure of the list (a registry that does not serve it to these credentials, a
        // malformed page) only means every tag is looked up.
        (true, false) => client.tags_on_one_page(repository).await.ok().flatten(),
        (false, false) => None,
    };
    let wanted = |r: &Reference| {
        listing
            .as_ref()
            .is_none_or(|l| r.tag.as_ref().is_none_or(|t| l.contains(t)))
    };
    let found = futures_util::future::join_all(target.tags.iter().map(|r| {
        let client = &client;
        async move {
            if wanted(r) {
                client.resolve(r).await
            } else {
                Ok(None)
            }
        }
    }))
    .await;
    Ok(Looked {
        found: found.into_iter().collect::<Result<_, _>>()?,
        from_list: listing.is_some() && target.tags.iter().any(|r| !wanted(r)),
        listing,
    })
}

impl Observed {
    /// The image read for `on-conflict: keep-same-revision` at image `i`, tag `t`.
    pub fn revision(&self, i: usize, t: usize) -> Option<&Built> {
        self.revisions.get(i)?.get(t)?.as_ref()
    }

    /// Reads the image (and its revision label) of every existing immutable tag whose rule
    /// says `on-conflict: keep-same-revision` and that holds another image than the source:
    /// a manifest and a config per such tag, all at once.
    pub async fn read_revisions(
        &mut self,
        computed: &Computed,
        source: Option<&SourceImage>,
        targets: &[Target],
        registries: &Registries,
    ) -> Result<(), PlanError> {
        let desired = source.and_then(SourceImage::manifest_digest);
        let mut wanted = Vec::new();
        for (i, (target, row)) in targets.iter().zip(&self.current).enumerate() {
            for (t, (tag, current)) in computed.tags.iter().zip(row).enumerate() {
                let keeps = tag.immutable
                    && tag.floating.is_none()
                    && tag.on_conflict == OnConflict::KeepSameRevision;
                match current {
                    Some(c) if keeps && Some(c) != desired => wanted.push((i, t, target, c)),
                    _ => {}
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let reads =
            futures_util::stream::iter(wanted.iter().map(|&(_, _, target, digest)| async move {
                let client = registries.client(&target.image.registry)?;
                revision::built(&client, &target.image.repository, &digest.to_string())
                    .await
                    .map_err(|detail| PlanError::Revision {
                        reference: format!("{}@{digest}", target.image),
                        detail,
                    })
            }))
            .buffered(registries.concurrency())
            .collect::<Vec<_>>()
            .await;
        self.revisions = self
            .current
            .iter()
            .map(|row| vec![None; row.len()])
            .collect();
        for ((i, t, _, _), read) in wanted.iter().zip(reads) {
            self.revisions[*i][*t] = read?;
        }
        Ok(())
    }

    /// For a Docker source known only by its config digest: which config each existing tag's
    /// image names (one manifest GET per existing tag), so deciding can tell the same image.
    pub async fn compare_configs(
        &mut self,
        source: Option<&SourceImage>,
        targets: &[Target],
        registries: &Registries,
    ) -> Result<(), PlanError> {
        let Some(SourceImage::Docker {
            kind: IdKind::Config,
            ..
        }) = source
        else {
            return Ok(());
        };
        for (t, row) in targets.iter().zip(&self.current) {
            let client = registries.client(&t.image.registry)?;
            let mut configs = Vec::with_capacity(row.len());
            for cur in row {
                let Some(cur) = cur else {
                    configs.push(None);
                    continue;
                };
                let found = client
                    .get_manifest(&t.image.repository, &cur.to_string())
                    .await?;
                configs.push(
                    found
                        .and_then(|m| parse_manifest(&m.bytes).ok())
                        .and_then(|p| p.config),
                );
            }
            self.configs.push(configs);
        }
        Ok(())
    }
}
