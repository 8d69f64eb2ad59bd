//! Carrying out one repository's deletes. Order, so that an interruption at any point leaves
//! nothing a kept tag needs harmed and a second run finishes the job:
//!
//! 1. each tag to delete is looked up again; one that moved since the plan is decided again
//!    (kept: it was written meanwhile) and one already gone is done;
//! 2. the manifests nothing staying reaches are deleted by digest, children before their index
//!    (on CNCF distribution this also removes the tags on them) — after a look at the tags that
//!    appeared since the plan;
//! 3. each tag still there is removed as a tag: the registry's tag delete where it has one, else
//!    the tag is pointed at a tiny placeholder manifest and the placeholder deleted by digest
//!    (a run killed in between leaves the tag on the placeholder, which the next run deletes).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use super::placeholder;
use super::reach::Deletes;
use crate::audit::record::prepare;
use crate::finding::{Finding, Severity, code};
use tagguard_registry::{Deleted, Digest, RegistryClient, RegistryError};

/// What applying one repository's deletes did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Tags removed by this run (or found gone).
    pub tags: Vec<(String, Digest)>,
    /// Manifests deleted by digest.
    pub digests: Vec<Digest>,
    pub findings: Vec<Finding>,
}

enum Now {
    Gone,
    At(Digest),
}

/// One repository's planned deletes: what [`apply`] (and, on GHCR, `ghcr::apply`) carries out.
pub struct Target<'a> {
    pub client: &'a RegistryClient,
    pub image: &'a str,
    pub repository: &'a str,
    pub deletes: &'a Deletes,
    /// Every tag the plan saw (a tag not among them appeared since).
    pub planned: &'a HashSet<String>,
    /// The time placeholders are stamped with.
    pub time: DateTime<Utc>,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
}

pub async fn apply(target: &Target<'_>) -> Applied {
    let &Target {
        client,
        image,
        repository,
        deletes,
        planned,
        time,
        concurrency,
    } = target;
    let mut out = Applied::default();
    // 1. Look each tag up again.
    let (still, moved) =
        look_again(client, image, repository, deletes, concurrency, &mut out).await;
    let mut failed_digests = HashSet::new();
    // 2. Manifests nothing staying reaches, once the tags that appeared or moved meanwhile are
    //    known: what they hold now stays.
    if !deletes.digests.is_empty() {
        let unchanged: HashSet<String> = planned
            .iter()
            .filter(|t| !moved.contains(t.as_str()))
            .cloned()
            .collect();
        match newcomers(client, repository, &unchanged, concurrency).await {
            Ok(new) => {
                for wave in [&deletes.children, &deletes.digests] {
                    let wave: Vec<&Digest> = wave.iter().filter(|d| !new.contains(*d)).collect();
                    let wave = delete_digests(client, image, repository, &wave, concurrency).await;
                    out.findings.extend(wave.findings);
                    out.digests.extend(wave.deleted);
                    if wave.unsupported {
                        return out;
                    }
                    failed_digests.extend(wave.failed);
                }
            }
            Err(e) => out
                .findings
                .push(failed(client.host(), image, "listing the tags again", &e)),
        }
    }
    // 3. The tags still there, as tags (but those on a manifest whose delete failed: it stays
    //    tagged, so that the next run finds it).
    let still: Vec<(String, Digest)> = still
        .into_iter()
        .filter(|(_, d)| !failed_digests.contains(d))
        .collect();
    untag_all(
        client,
        image,
        repository,
        &still,
        time,
        concurrency,
        &mut out,
    )
    .await;
    out
}

/// Looks every tag to delete up again: the ones still where the plan saw them, and the names of
/// those that moved (kept, with a warning); gone ones are done, failures said.
pub(super) async fn look_again(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    deletes: &Deletes,
    concurrency: usize,
    out: &mut Applied,
) -> (Vec<(String, Digest)>, HashSet<String>) {
    let looked = lookups(client, repository, &deletes.tags, concurrency).await;
    let (mut still, mut moved) = (Vec::new(), HashSet::new());
    for ((tag, planned_at), now) in deletes.tags.iter().zip(looked) {
        let subject = format!("{image}:{tag}");
        match now {
            Ok(Now::Gone) => out.tags.push((tag.clone(), planned_at.clone())),
            Ok(Now::At(d)) if &d == planned_at => still.push((tag.clone(), d)),
            Ok(Now::At(d)) => {
                moved.insert(tag.clone());
                out.findings
                    .push(moved_finding(&subject, &d, "since the plan"));
            }
            Err(e) => out
                .findings
                .push(failed(client.host(), &subject, "looking it up again", &e)),
        }
    }
    (still, moved)
}

pub(super) fn moved_finding(subject: &str, now: &Digest, when: &str) -> Finding {
    Finding::new(
        code::PRUNE_MOVED,
        Severity::Warning,
        format!("{subject} moved to {now} {when}: it was written again, so it is kept"),
    )
    .about(subject.to_owned())
}

/// What deleting one wave of manifests did.
#[derive(Default)]
struct Wave {
    deleted: Vec<Digest>,
    failed: Vec<Digest>,
    findings: Vec<Finding>,
    /// The registry does not delete: nothing more is tried.
    unsupported: bool,
}

/// Deletes one wave of manifests by digest, at once.
async fn delete_digests(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    wave: &[&Digest],
    concurrency: usize,
) -> Wave {
    let deletes =
        futures_util::stream::iter(wave.iter().map(|d| async move {
            (*d, client.delete_manifest(repository, &d.to_string()).await)
        }))
        .buffer_unordered(concurrency);
    let mut deletes = std::pin::pin!(deletes);
    let mut out = Wave::default();
    while let Some((d, r)) = deletes.next().await {
        match r {
            Ok(Deleted::Done | Deleted::Absent) => out.deleted.push(d.clone()),
            Ok(Deleted::Unsupported { status, detail }) => {
                if !out.unsupported {
                    out.findings
                        .push(unsupported(client.host(), image, &said(status, &detail)));
                }
                out.unsupported = true;
            }
            Err(e) => {
                let subject = format!("{image}@{d}");
                out.findings
                    .push(failed(client.host(), &subject, "deleting it", &e));
                out.failed.push(d.clone());
            }
        }
    }
    out
}

/// Removes each tag of `still` as a tag.
async fn untag_all(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    still: &[(String, Digest)],
    time: DateTime<Utc>,
    concurrency: usize,
    out: &mut Applied,
) {
    let by_tag = AtomicBool::new(true);
    let one = tokio::sync::Mutex::new(false);
    let untags = futures_util::stream::iter(still.iter().map(|(tag, at)| {
        let (by_tag, one) = (&by_tag, &one);
        async move {
            let r = untag(client, repository, tag, at, time, by_tag, one).await;
            (tag, at, r)
        }
    }))
    .buffer_unordered(concurrency);
    let mut untags = std::pin::pin!(untags);
    while let Some((tag, at, r)) = untags.next().await {
        let subject = format!("{image}:{tag}");
        match r {
            Ok(()) => out.tags.push((tag.clone(), at.clone())),
            Err(Untag::Unsupported(status, detail)) => {
                out.findings
                    .push(unsupported(client.host(), &subject, &said(status, &detail)))
            }
            Err(Untag::Failed(e)) => {
                out.findings
                    .push(failed(client.host(), &subject, "removing the tag", &e))
            }
            Err(Untag::Moved(d)) => {
                out.findings
                    .push(moved_finding(&subject, &d, "while it was being removed"));
            }
        }
    }
}

async fn lookups(
    client: &RegistryClient,
    repository: &str,
    tags: &[(String, Digest)],
    concurrency: usize,
) -> Vec<Result<Now, RegistryError>> {
    futures_util::stream::iter(tags.iter().map(|(tag, _)| async move {
        let h = client.head_manifest(repository, tag).await?;
        Ok(h.map_or(Now::Gone, |h| Now::At(h.digest)))
    }))
    .buffered(concurrency)
    .collect()
    .await
}

/// The digests of the tags (and, for an index, its children) that were not there when the plan
/// was made: deleting one of those by digest would take a new tag with it.
pub(super) async fn newcomers(
    client: &RegistryClient,
    repository: &str,
    planned: &HashSet<String>,
    concurrency: usize,
) -> Result<HashSet<Digest>, RegistryError> {
    let tags = client.list_tags(repository).await?;
    let new: Vec<String> = tags.into_iter().filter(|t| !planned.contains(t)).collect();
    let mut reads = futures_util::stream::iter(
        new.iter()
            .map(|t| async move { client.get_manifest(repository, t).await }),
    )
    .buffer_unordered(concurrency);
    let mut out = HashSet::new();
    while let Some(m) = reads.next().await {
        let Some(m) = m? else { continue };
        if let Ok(parts) = tagguard_registry::parse_manifest(&m.bytes) {
            out.extend(parts.manifests.into_iter().map(|c| c.digest));
        }
        out.insert(m.digest);
    }
    Ok(out)
}

pub(super) enum Untag {
    Unsupported(u16, String),
    Failed(Box<RegistryError>),
    Moved(Digest),
}

/// Whether `tag` still holds `at` (`false`: it is gone); a tag that moved is an error.
pub(super) async fn still_at(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    at: &Digest,
) -> Result<bool, Untag> {
    match client.head_manifest(repository, tag).await {
        Err(e) => Err(Untag::Failed(Box::new(e))),
        Ok(None) => Ok(false),
        Ok(Some(h)) if &h.digest != at => Err(Untag::Moved(h.digest)),
        Ok(Some(_)) => Ok(true),
    }
}

/// Removes `tag` (at `at` a moment ago) as a tag.
async fn untag(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    at: &Digest,
    time: DateTime<Utc>,
    by_tag: &AtomicBool,
    one: &tokio::sync::Mutex<bool>,
) -> Result<(), Untag> {
    if !still_at(client, repository, tag, at).await? {
        return Ok(());
    }
    if by_tag.load(Ordering::Relaxed) {
        match client
            .delete_manifest(repository, tag)
            .await
            .map_err(|e| Untag::Failed(Box::new(e)))?
        {
            Deleted::Done | Deleted::Absent => return Ok(()),
            Deleted::Unsupported { .. } => by_tag.store(false, Ordering::Relaxed),
        }
    }
    // One placeholder at a time: CNCF distribution 2.8 deletes a manifest, then looks for the
    // tags on it by reading every tag's link; a tag link being written at that moment fails the
    // lookup after the manifest is gone, and leaves its tag dangling (listed, with no manifest).
    let mut blob_ready = one.lock().await;
    if !*blob_ready {
        prepare(client, repository, &[]).await;
        *blob_ready = true;
    }
    if !still_at(client, repository, tag, at).await? {
        return Ok(());
    }
    let bytes = placeholder::manifest(tag, time);
    let p = client
        .put_manifest(repository, tag, placeholder::MEDIA_TYPE, &bytes)
        .await
        .map_err(|e| Untag::Failed(Box::new(e)))?;
    match client
        .delete_manifest(repository, &p.to_string())
        .await
        .map_err(|e| Untag::Failed(Box::new(e)))?
    {
        Deleted::Done | Deleted::Absent => Ok(()),
        Deleted::Unsupported { status, detail } => Err(Untag::Unsupported(status, detail)),
    }
}

pub(super) fn failed(host: &str, subject: &str, doing: &str, e: &RegistryError) -> Finding {
    if let RegistryError::Refused { rule, .. } = e {
        return Finding::new(
            code::PRUNE_REFUSED,
            Severity::Error,
            format!("{subject}: {doing} was refused: {e}"),
        )
        .about(subject.to_owned())
        .help(format!(
            "this is the registry's own protection ({rule}), and tagguard does not work around it: the tag is still there and nothing a kept tag needs was touched; exempt these temporary tags from it at the registry, or retire them with {}",
            lifecycle(&refusing(host, rule))
        ));
    }
    Finding::new(code::PRUNE_FAILED, Severity::Error, format!("{subject}: {doing} failed: {e}"))
        .about(subject.to_owned())
        .help("nothing a kept tag needs was touched; run `tagguard prune --apply` again once the registry answers: it picks up where this run stopped")
}

/// A registry's answer in a few words: its status and message (`detail` as
/// `tagguard_registry::error::describe` gives it: empty, or `: CODE: message`).
fn said(status: u16, detail: &str) -> String {
    format!("{status}{detail}")
}

/// The registry does not delete: say so, and name its own way to retire tags.
pub fn unsupported(host: &str, subject: &str, why: &str) -> Finding {
    Finding::new(
        code::PRUNE_UNSUPPORTED,
        Severity::Error,
        format!("{host} does not delete here ({why}): nothing more was deleted in {subject}"),
    )
    .about(subject.to_owned())
    .help(format!("not supported here: use {}", lifecycle(host)))
}

/// Whether tagguard knows `host` has no OCI delete at all and deletes through an API tagguard
/// does not speak (Docker Hub, ECR), so that `--apply` says so before sending anything. GHCR
/// has none either; its deletes go through GitHub's Packages API (`ghcr`).
pub fn without_oci_delete(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&h.as_str())
        || (h.ends_with(".amazonaws.com") && h.contains(".dkr.ecr."))
}

/// The host to name the way out by: the one whose refusal rule (`tagguard_registry`'s table)
/// says which registry it is, else `host` itself.
fn refusing(host: &str, rule: &str) -> String {
    let known = [
        ("ACR", "registry.azurecr.io"),
        ("Harbor", "harbor"),
        ("Quay", "quay.io"),
        ("GitLab", "gitlab"),
        ("ECR", "registry.dkr.ecr.amazonaws.com"),
        ("Docker Hub", "docker.io"),
    ];
    known
        .iter()
        .find(|(name, _)| rule.starts_with(name))
        .map_or_else(|| host.to_owned(), |(_, h)| (*h).to_owned())
}

/// The registry's own way of retiring tags, for a registry tagguard cannot delete on.
pub fn lifecycle(host: &str) -> &'static str {
    let h = host.to_ascii_lowercase();
    if h == "ghcr.io" {
        "GitHub's package settings or the Packages API (actions/delete-package-versions): GHCR has no OCI delete"
    } else if ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&h.as_str()) {
        "Docker Hub's tag management (Hub → repository → Tags, or its API)"
    } else if h.ends_with(".amazonaws.com") {
        "an ECR lifecycle policy"
    } else if h.ends_with(".azurecr.io") {
        "ACR's retention policy or `acr purge`"
    } else if h == "gcr.io" || h.ends_with(".gcr.io") || h.ends_with("-docker.pkg.dev") {
        "Artifact Registry cleanup policies"
    } else if h.contains("harbor") {
        "Harbor's tag retention rules (Project → Policy → Tag Retention), which immutability rules do not hold back"
    } else if h == "quay.io" {
        "Quay's tag expiration"
    } else if h.contains("gitlab") {
        "GitLab's container registry cleanup policy"
    } else {
        "the registry's own retention feature (CNCF distribution: `storage: delete: enabled: true` in its configuration)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_without_an_oci_delete_are_named_with_their_way_out() {
        for host in ["docker.io", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"] {
            assert!(without_oci_delete(host), "{host}");
        }
        for host in [
            "127.0.0.1:5000",
            "harbor.example.com",
            "quay.io",
            "registry.gitlab.com",
        ] {
            assert!(!without_oci_delete(host), "{host}");
        }
        assert!(lifecycle("ghcr.io").contains("Packages API"));
        assert!(
            lifecycle("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
                .contains("ECR lifecycle policy")
        );
        assert!(lifecycle("registry.example.com").contains("delete: enabled: true"));
        // A refusal names the registry its rule recognised, whatever host it came from.
        let refused = RegistryError::Refused {
            request: tagguard_registry::RequestId {
                host: "127.0.0.1:5000".into(),
                method: "DELETE".into(),
                path: "/v2/a/b/manifests/br-x".into(),
            },
            repository: "a/b".into(),
            tag: Some("br-x".into()),
            rule: "ACR lock (write or delete disabled)",
            status: 405,
            code: "REGISTRY_DISALLOWED_OPERATION".into(),
            message: "The operation is disallowed on this registry, repository or image.".into(),
        };
        let f = failed("127.0.0.1:5000", "r/a/b:br-x", "removing the tag", &refused);
        assert_eq!(f.code, code::PRUNE_REFUSED);
        assert!(
            f.message.contains("DELETE /v2/a/b/manifests/br-x"),
            "{}",
            f.message
        );
        assert!(f.message.contains("refuses to delete"), "{}", f.message);
        assert!(f.help.unwrap().contains("ACR's retention policy"));
        let f = unsupported("ghcr.io", "ghcr.io/a/b", "405");
        assert_eq!(f.code, code::PRUNE_UNSUPPORTED);
        assert!(
            f.help
                .unwrap()
                .starts_with("not supported here: use GitHub's")
        );
    }
}
