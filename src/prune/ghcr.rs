//! Carrying out one repository's deletes on GHCR, which has no OCI delete: its manifests are
//! package versions of GitHub's Packages API (`GET …/packages/container/<name>/versions`: each
//! version's `id`, `name` = the manifest digest, `metadata.container.tags`), and
//! `DELETE …/versions/<id>` removes a manifest with every tag on it. The promise is the OCI
//! path's ([`super::apply`]), in the same order, from the same plan ([`super::reach`]):
//!
//! 1. each tag to delete is looked up again (through the OCI API): one that moved is kept;
//! 2. the versions nothing staying reaches are deleted, children before their index — after the
//!    tags that appeared since the plan are read, and only when every tag the version carries is
//!    one to delete;
//! 3. a tag still there shares its manifest with something that stays: it is pointed at a
//!    placeholder (an OCI push, which GHCR allows), which makes a version holding that tag
//!    alone, and that version is deleted. A run killed in between leaves the tag on the
//!    placeholder, which the next run deletes as `placeholder`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::apply::{self, Applied, Target, Untag};
use super::placeholder;
use crate::audit::record::prepare;
use crate::finding::{Finding, Severity, code};
use tagguard_registry::Secret;
use tagguard_registry::{
    Digest, RegistryClient, TransportConfig, WebClient, WebError, WebToken, encode_segment,
};

/// The most pages of package versions read (100 a page).
pub const MAX_VERSION_PAGES: usize = 500;
/// How often the versions are listed again for placeholders not listed yet, and the first wait.
const RELIST: (u32, Duration) = (3, Duration::from_millis(500));
/// What a token needs to delete package versions, said wherever one is missing or refused.
pub const PERMISSION_HELP: &str = "give the job `permissions: packages: write` and pass GITHUB_TOKEN to tagguard (the repository also needs the Admin role on the package: package settings → Manage Actions access), or use a token with read:packages and delete:packages; nothing a kept tag needs was touched";

/// Where GHCR's package versions are managed: GitHub's REST API.
#[derive(Debug, Clone)]
pub struct GitHubPackages {
    /// The API's base URL (`GITHUB_API_URL`; `https://api.github.com` by default).
    pub api: String,
    /// `GITHUB_TOKEN`: `packages: write` to delete.
    pub token: Option<Secret>,
    /// Registry hosts that are GHCR besides `ghcr.io` (`TAGGUARD_GHCR_HOSTS`, comma-separated:
    /// GitHub Enterprise Server's `containers.<host>`, a test's registry).
    pub hosts: Vec<String>,
}

impl Default for GitHubPackages {
    fn default() -> Self {
        GitHubPackages {
            api: "https://api.github.com".into(),
            token: None,
            hosts: Vec::new(),
        }
    }
}

impl GitHubPackages {
    /// From `GITHUB_API_URL`, `GITHUB_TOKEN` and `TAGGUARD_GHCR_HOSTS`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> GitHubPackages {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        GitHubPackages {
            api: var("GITHUB_API_URL").unwrap_or_else(|| GitHubPackages::default().api),
            token: var("GITHUB_TOKEN").map(Secret::new),
            hosts: var("TAGGUARD_GHCR_HOSTS")
                .map(|h| h.split(',').map(|h| h.trim().to_owned()).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether the registry `host` is GHCR (its deletes go through the Packages API).
    pub fn serves(&self, host: &str) -> bool {
        host.eq_ignore_ascii_case("ghcr.io")
            || self
                .hosts
                .iter()
                .any(|h| !h.is_empty() && h.eq_ignore_ascii_case(host))
    }
}

/// One package version: a manifest, and the tags on it.
#[derive(Debug, Clone)]
struct Version {
    id: u64,
    tags: Vec<String>,
}

/// The package of one repository, as the API names it.
struct Package {
    web: WebClient,
    /// `orgs/<org>` or `users/<user>`, learned on the first listing.
    owner: String,
    name: String,
    scope: Option<String>,
}

impl Package {
    fn versions_path(scope: &str, name: &str) -> String {
        format!(
            "{scope}/packages/container/{}/versions",
            encode_segment(name)
        )
    }

    /// Every version, by digest: the organisation's package, else (404) the user's.
    async fn versions(&mut self) -> Result<HashMap<Digest, Version>, WebError> {
        let scopes = match &self.scope {
            Some(s) => vec![s.clone()],
            None => vec![
                format!("orgs/{}", self.owner),
                format!("users/{}", self.owner),
            ],
        };
        let mut last = None;
        for scope in scopes {
            let path = Package::versions_path(&scope, &self.name);
            match self.web.list(&path, MAX_VERSION_PAGES).await {
                Ok(items) => {
                    self.scope = Some(scope);
                    return Ok(items.iter().filter_map(version).collect());
                }
                Err(e) if e.status() == Some(404) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one scope was asked"))
    }

    /// Deletes a version; `Ok(false)`: it was gone already.
    async fn delete(&self, id: u64) -> Result<bool, WebError> {
        let scope = self.scope.as_deref().expect("versions were listed first");
        let path = format!("{}/{id}", Package::versions_path(scope, &self.name));
        let answer = self.web.delete(&path).await?;
        match answer.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(answer.error()),
        }
    }
}

fn version(v: &Value) -> Option<(Digest, Version)> {
    let digest = v["name"].as_str()?.parse().ok()?;
    let tags = v["metadata"]["container"]["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((
        digest,
        Version {
            id: v["id"].as_u64()?,
            tags,
        },
    ))
}

/// How this run reaches the Packages API, or why it cannot (a finding).
fn package(
    github: &GitHubPackages,
    transport: &TransportConfig,
    image: &str,
    repository: &str,
) -> Result<Package, Finding> {
    let Some(token) = &github.token else {
        return Err(refused(
            image,
            "GHCR deletes through GitHub's Packages API, which needs a token, and GITHUB_TOKEN is not set",
        ));
    };
    let Some((owner, name)) = repository.split_once('/') else {
        return Err(refused(
            image,
            "a GHCR image is named <owner>/<package>; this one names no owner",
        ));
    };
    let web = WebClient::new(
        &github.api,
        Some(&WebToken::Bearer(token.clone())),
        transport,
    )
    .map_err(|e| api_failed(image, "reaching GitHub's Packages API", &e))?
    .accept("application/vnd.github+json");
    Ok(Package {
        web,
        owner: owner.to_owned(),
        name: name.to_owned(),
        scope: None,
    })
}

pub async fn apply(
    target: &Target<'_>,
    github: &GitHubPackages,
    transport: &TransportConfig,
) -> Applied {
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
    let mut package = match package(github, transport, image, repository) {
        Ok(p) => p,
        Err(f) => {
            out.findings.push(f);
            return out;
        }
    };
    // 1. Look each tag up again.
    let (still, moved) =
        apply::look_again(client, image, repository, deletes, concurrency, &mut out).await;
    let versions = match package.versions().await {
        Ok(v) => v,
        Err(e) => {
            out.findings
                .push(api_failed(image, "listing the package's versions", &e));
            return out;
        }
    };
    // 2. The versions nothing staying reaches, but those of tags that appeared or moved since.
    let mut failed_digests = HashSet::new();
    if !deletes.digests.is_empty() {
        let unchanged: HashSet<String> = planned
            .iter()
            .filter(|t| !moved.contains(t.as_str()))
            .cloned()
            .collect();
        let new = match apply::newcomers(client, repository, &unchanged, concurrency).await {
            Ok(new) => new,
            Err(e) => {
                out.findings.push(apply::failed(
                    client.host(),
                    image,
                    "listing the tags again",
                    &e,
                ));
                return out;
            }
        };
        let deletable: HashSet<&str> = deletes.tags.iter().map(|(t, _)| t.as_str()).collect();
        for wave in [&deletes.children, &deletes.digests] {
            let wave: Vec<&Digest> = wave.iter().filter(|d| !new.contains(*d)).collect();
            let ctx = (&package, &versions, &deletable);
            let done = delete_versions(ctx, image, &wave, concurrency, &mut out).await;
            match done {
                Some(failed) => failed_digests.extend(failed),
                None => return out,
            }
        }
    }
    // 3. The tags still there share their manifest with something that stays.
    let still: Vec<(String, Digest)> = still
        .into_iter()
        .filter(|(_, d)| !failed_digests.contains(d))
        .collect();
    untag_all(
        client,
        &mut package,
        image,
        repository,
        &still,
        time,
        &mut out,
    )
    .await;
    out
}

/// Deletes one wave of versions at once: the digests that failed, or `None` when the token was
/// refused (nothing more is tried).
async fn delete_versions(
    (package, versions, deletable): (&Package, &HashMap<Digest, Version>, &HashSet<&str>),
    image: &str,
    wave: &[&Digest],
    concurrency: usize,
    out: &mut Applied,
) -> Option<Vec<Digest>> {
    let mut failed = Vec::new();
    let mut todo = Vec::new();
    for d in wave {
        match versions.get(*d) {
            // Not a version (any more): gone.
            None => out.digests.push((*d).clone()),
            Some(v) => {
                match v.tags.iter().find(|t| !deletable.contains(t.as_str())) {
                    Some(t) => {
                        out.findings.push(
                        Finding::new(code::PRUNE_MOVED, Severity::Warning, format!("{image}@{d} carries the tag {t}, which stays: its version is kept"))
                            .about(format!("{image}@{d}")),
                    );
                        failed.push((*d).clone());
                    }
                    None => todo.push((*d, v.id)),
                }
            }
        }
    }
    let deletes = futures_util::stream::iter(
        todo.into_iter()
            .map(|(d, id)| async move { (d, package.delete(id).await) }),
    )
    .buffer_unordered(concurrency);
    let mut deletes = std::pin::pin!(deletes);
    let mut refused = false;
    while let Some((d, r)) = deletes.next().await {
        match r {
            Ok(_) => out.digests.push(d.clone()),
            Err(e) if matches!(e.status(), Some(401 | 403)) => {
                if !refused {
                    out.findings
                        .push(api_failed(image, "deleting a package version", &e));
                }
                refused = true;
            }
            Err(e) => {
                let subject = format!("{image}@{d}");
                out.findings
                    .push(api_failed(&subject, "deleting its package version", &e));
                failed.push(d.clone());
            }
        }
    }
    (!refused).then_some(failed)
}

/// Removes each tag of `still` as a tag: onto a placeholder of its own, whose version is then
/// deleted. The first tag goes alone, so that a token that may not delete leaves one tag on a
/// placeholder (the next run deletes it), not all of them.
async fn untag_all(
    client: &RegistryClient,
    package: &mut Package,
    image: &str,
    repository: &str,
    still: &[(String, Digest)],
    time: DateTime<Utc>,
    out: &mut Applied,
) {
    let (first, rest) = still.split_at(still.len().min(1));
    for batch in [first, rest] {
        let placed = place(client, image, repository, batch, time, out).await;
        if !delete_placeholders(package, image, placed, out).await {
            return;
        }
    }
}

/// A placeholder put under a tag: the tag, where it was, the placeholder.
type Placed = (String, Digest, Digest);

/// Points each tag of `batch` still where the plan saw it at a placeholder of its own.
async fn place(
    client: &RegistryClient,
    image: &str,
    repository: &str,
    batch: &[(String, Digest)],
    time: DateTime<Utc>,
    out: &mut Applied,
) -> Vec<Placed> {
    let mut placed = Vec::new();
    let mut blob_ready = false;
    for (tag, at) in batch {
        let subject = format!("{image}:{tag}");
        match apply::still_at(client, repository, tag, at).await {
            Ok(false) => {
                out.tags.push((tag.clone(), at.clone()));
                continue;
            }
            Ok(true) => {}
            Err(e) => {
                untag_failed(out, client.host(), &subject, e);
                continue;
            }
        }
        if !blob_ready {
            prepare(client, repository, &[]).await;
            blob_ready = true;
        }
        let bytes = placeholder::manifest(tag, time);
        match client
            .put_manifest(repository, tag, placeholder::MEDIA_TYPE, &bytes)
            .await
        {
            Ok(p) => placed.push((tag.clone(), at.clone(), p)),
            Err(e) => untag_failed(out, client.host(), &subject, Untag::Failed(Box::new(e))),
        }
    }
    placed
}

/// Deletes the version of each placeholder, listing the versions again (a few times, waiting
/// longer each time) while some are not listed yet. False when the token was refused.
async fn delete_placeholders(
    package: &mut Package,
    image: &str,
    mut placed: Vec<Placed>,
    out: &mut Applied,
) -> bool {
    let (rounds, mut wait) = RELIST;
    for round in 0..rounds {
        if placed.is_empty() {
            return true;
        }
        if round > 0 {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        let versions = match package.versions().await {
            Ok(v) => v,
            Err(e) => {
                out.findings
                    .push(api_failed(image, "listing the package's versions", &e));
                return false;
            }
        };
        let mut later = Vec::new();
        for (tag, at, p) in placed {
            let Some(v) = versions.get(&p) else {
                later.push((tag, at, p));
                continue;
            };
            let subject = format!("{image}:{tag}");
            if v.tags.iter().any(|t| t != &tag) {
                let f = Finding::new(
                    code::PRUNE_MOVED,
                    Severity::Warning,
                    format!(
                        "{subject}'s placeholder {p} carries other tags too ({}): it is kept",
                        v.tags.join(", ")
                    ),
                )
                .about(subject);
                out.findings.push(f);
                continue;
            }
            match package.delete(v.id).await {
                Ok(_) => out.tags.push((tag, at)),
                Err(e) => {
                    let refused = matches!(e.status(), Some(401 | 403));
                    out.findings.push(api_failed(
                        &subject,
                        "deleting its placeholder's version",
                        &e,
                    ));
                    if refused {
                        return false;
                    }
                }
            }
        }
        placed = later;
    }
    for (tag, _, p) in placed {
        let subject = format!("{image}:{tag}");
        out.findings.push(
            Finding::new(code::PRUNE_FAILED, Severity::Error, format!("{subject} points at its placeholder {p}, which the Packages API does not list yet"))
                .about(subject)
                .help("run `tagguard prune --apply` again in a minute: it deletes the placeholder (decided `placeholder`)"),
        );
    }
    true
}

fn untag_failed(out: &mut Applied, host: &str, subject: &str, e: Untag) {
    out.findings.push(match e {
        Untag::Failed(e) => apply::failed(host, subject, "removing the tag", &e),
        Untag::Moved(d) => apply::moved_finding(subject, &d, "while it was being removed"),
        // Only a delete answers this, and no OCI delete is sent here.
        Untag::Unsupported(status, detail) => Finding::new(
            code::PRUNE_FAILED,
            Severity::Error,
            format!("{subject}: removing the tag failed: {status} {detail}"),
        )
        .about(subject.to_owned()),
    });
}

/// GHCR cannot be pruned here: the token is missing, or the image cannot be a package.
fn refused(image: &str, why: &str) -> Finding {
    Finding::new(
        code::PRUNE_UNSUPPORTED,
        Severity::Error,
        format!("{image}: {why}; nothing was deleted"),
    )
    .about(image.to_owned())
    .help(PERMISSION_HELP)
}

/// A request to the Packages API failed; a refused token says which permission it needs.
fn api_failed(subject: &str, doing: &str, e: &WebError) -> Finding {
    let f = Finding::new(
        code::PRUNE_FAILED,
        Severity::Error,
        format!("{subject}: {doing} failed: {e}"),
    )
    .about(subject.to_owned());
    match e.status() {
        Some(401 | 403) => f.help(format!("the token may not manage this package: {PERMISSION_HELP}")),
        Some(404) => f.help("check the image's owner and package name, and that the token may see the package (the repository needs access to it: package settings → Manage Actions access); nothing was deleted here"),
        _ => f.help("nothing a kept tag needs was touched; run `tagguard prune --apply` again once GitHub answers: it picks up where this run stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghcr_is_ghcr_io_and_the_hosts_named() {
        let vars = |k: &str| match k {
            "TAGGUARD_GHCR_HOSTS" => Some("127.0.0.1:5000, containers.ghe.example".to_owned()),
            "GITHUB_TOKEN" => Some("t".to_owned()),
            _ => None,
        };
        let g = GitHubPackages::from_vars(vars);
        assert_eq!(g.api, "https://api.github.com");
        for host in [
            "ghcr.io",
            "GHCR.io",
            "127.0.0.1:5000",
            "containers.ghe.example",
        ] {
            assert!(g.serves(host), "{host}");
        }
        assert!(!g.serves("registry.example.com") && !g.serves(""));
        assert!(!format!("{g:?}").contains("\"t\""));
    }

    #[test]
    fn versions_are_read_by_digest_with_their_tags() {
        let d = Digest::sha256_of(b"x");
        let v = serde_json::json!({"id": 42, "name": d.to_string(),
            "metadata": {"package_type": "container", "container": {"tags": ["a", "b"]}}});
        let (digest, read) = version(&v).unwrap();
        assert_eq!((digest, read.id), (d, 42));
        assert_eq!(read.tags, ["a", "b"]);
        let untagged = serde_json::json!({"id": 1, "name": Digest::sha256_of(b"y").to_string(),
            "metadata": {"container": {"tags": []}}});
        assert!(version(&untagged).unwrap().1.tags.is_empty());
        assert!(version(&serde_json::json!({"id": 1, "name": "1.0.0"})).is_none());
    }
}
