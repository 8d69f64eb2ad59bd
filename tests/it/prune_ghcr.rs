//! `tagguard prune` on GHCR, which has no OCI delete: versions are deleted through GitHub's
//! Packages API. The real registry process serves the OCI side (reads, placeholders, records);
//! a stub of the Packages API in front of it (`support/github_packages.rs`) lists its manifests
//! as versions and deletes a version by deleting that manifest from the registry — so skopeo
//! proves afterwards that every kept tag still copies whole.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::prune::{
    GONE, POLICY, REPO, assert_kept_whole, checkout, copies_whole, image_tags, kept_tags, retag,
    scene, strings, verdicts,
};
use crate::support::cmd::{Run, tagguard};
use crate::support::git::Repo;
use crate::support::github_packages::{GitHubPackages, Packages};
use crate::support::registry::{Image, Mode, Registry};

const TOKEN: &str = "ghs_stub-token-with-packages-write";
const READ_ONLY: &str = "ghs_stub-token-read-only";

fn packages(
    r: &Registry,
    repository: &str,
    kind: &'static str,
    page_size: usize,
) -> GitHubPackages {
    GitHubPackages::start(Packages {
        registry: r.host.clone(),
        kind,
        repository: repository.to_owned(),
        page_size,
        token: TOKEN.into(),
        read_only: Some(READ_ONLY.into()),
    })
}

/// `tagguard prune --image <image>` with the registry host taken for GHCR and the stub as the
/// GitHub API; `token` as GITHUB_TOKEN (none: unset).
fn prune_ghcr(
    dir: &Repo,
    r: &Registry,
    api: &GitHubPackages,
    image: &str,
    token: Option<&str>,
    extra: &[&str],
) -> Run {
    let base = api.api();
    let mut t = tagguard(dir.path())
        .args(["prune", "--image", image, "--format", "json"])
        .args(extra)
        .envs([
            ("TAGGUARD_GHCR_HOSTS", r.host.as_str()),
            ("GITHUB_API_URL", base.as_str()),
        ]);
    if let Some(token) = token {
        t = t.env("GITHUB_TOKEN", token);
    }
    let run = t.run();
    for secret in [TOKEN, READ_ONLY] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a token in the output: {}{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

fn deleted_tags(run: &Run) -> BTreeSet<String> {
    run.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some(format!("{}:{}", d["image"].as_str()?, d["tag"].as_str()?)))
        .collect()
}

#[test]
fn ghcr_prune_removes_exactly_the_tags_of_deleted_branches_through_the_packages_api() {
    let s = scene();
    let api = packages(&s.r, REPO, "orgs", 100);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", s.r.host);

    let plan = prune_ghcr(&dir, &s.r, &api, &image, Some(TOKEN), &[]).code(0);
    let delete: BTreeSet<String> = GONE.map(|t| format!("{image}:{t}")).into();
    assert_eq!(strings(&plan.json()["delete"]), delete);
    assert_eq!(verdicts(&plan)["br-feature-live"], "keep");
    assert!(api.server.requests().is_empty(), "the plan asks no API");
    assert_eq!(s.r.tags_of(REPO).len(), 9);

    let applied = prune_ghcr(&dir, &s.r, &api, &image, Some(TOKEN), &["--apply"]).code(0);
    assert_eq!(deleted_tags(&applied), delete, "{}", applied.stdout);
    assert!(applied.json()["not_deleted"].as_array().unwrap().is_empty());
    let manifests: BTreeSet<String> = applied.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["tag"].is_null())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(manifests, BTreeSet::from([s.alone.clone()]));
    assert_kept_whole(&s);
    // Every manifest delete the registry saw came from a package-version delete: the alone
    // image, and one placeholder for each tag sharing a kept manifest.
    assert_eq!(api.deletes().len(), 3, "{:?}", api.deletes());
    assert_eq!(s.r.requests_with(&["DELETE"]).len(), api.deletes().len());
    assert!(
        api.deletes()
            .iter()
            .all(|d| d.starts_with("DELETE /orgs/acme/packages/container/app/versions/"))
    );

    let again = prune_ghcr(&dir, &s.r, &api, &image, Some(TOKEN), &["--apply"]).code(0);
    assert!(again.json()["delete"].as_array().unwrap().is_empty());
    assert!(again.json()["deleted"].as_array().unwrap().is_empty());
    assert_eq!(api.deletes().len(), 3, "a second run deletes nothing");
    assert_kept_whole(&s);
}

/// A user's package (the organisation path answers 404), nested (`tools/app` travels as
/// `tools%2Fapp`), listed over several pages.
#[test]
fn ghcr_user_packages_nested_names_and_several_pages_of_versions() {
    let r = Registry::start_deleting(Mode::Plain);
    let repo = "acme/tools/app";
    let release = Image::random();
    r.seed(&release, repo, "1.0.0");
    r.seed(&release, repo, "br-gone-shared");
    let mut gone = vec!["br-gone-shared".to_owned()];
    for i in 0..5 {
        let tag = format!("br-gone-{i}");
        r.seed(&Image::random(), repo, &tag);
        gone.push(tag);
    }
    r.seed(&Image::random(), repo, "br-feature-live");
    let api = packages(&r, repo, "users", 2);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{repo}", r.host);

    let applied = prune_ghcr(&dir, &r, &api, &image, Some(TOKEN), &["--apply"]).code(0);
    let expected: BTreeSet<String> = gone.iter().map(|t| format!("{image}:{t}")).collect();
    assert_eq!(deleted_tags(&applied), expected, "{}", applied.stdout);
    let left: BTreeSet<String> = r
        .tags_of(repo)
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    assert_eq!(
        left,
        BTreeSet::from(["1.0.0".to_owned(), "br-feature-live".to_owned()])
    );
    assert_eq!(r.digest_of(repo, "1.0.0"), Some(release.digest.clone()));
    let requests = api.server.requests();
    assert!(
        requests
            .iter()
            .any(|q| q.method == "GET" && q.path().starts_with("/orgs/acme/")),
        "the organisation is asked first"
    );
    let pages: BTreeMap<String, usize> = requests
        .iter()
        .filter(|q| q.method == "GET" && q.path().starts_with("/users/acme/"))
        .filter_map(|q| q.query().into_iter().find(|(k, _)| k == "page"))
        .fold(BTreeMap::new(), |mut m, (_, p)| {
            *m.entry(p).or_default() += 1;
            m
        });
    assert!(pages.len() >= 4, "several pages: {pages:?}");
    assert!(
        api.deletes()
            .iter()
            .all(|d| d.starts_with("DELETE /users/acme/packages/container/tools%2Fapp/versions/")),
        "{:?}",
        api.deletes()
    );
}

#[test]
fn ghcr_without_packages_write_is_refused_saying_what_to_do() {
    let s = scene();
    let api = packages(&s.r, REPO, "orgs", 100);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", s.r.host);

    // No token at all: refused before any request to the API.
    let none = prune_ghcr(&dir, &s.r, &api, &image, None, &["--apply"]).code(1);
    let f = &none.json()["findings"][0];
    assert_eq!(f["code"], "tagguard::prune::unsupported", "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("GITHUB_TOKEN is not set"),
        "{f}"
    );
    assert!(
        f["help"]
            .as_str()
            .unwrap()
            .contains("permissions: packages: write"),
        "{f}"
    );
    assert!(api.server.requests().is_empty());

    // A token that may read but not delete: the API's 403, and what to grant.
    let denied = prune_ghcr(&dir, &s.r, &api, &image, Some(READ_ONLY), &["--apply"]).code(1);
    let j = denied.json();
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("answered 403"))
        .unwrap_or_else(|| panic!("a 403 finding: {}", denied.stdout));
    assert_eq!(f["code"], "tagguard::prune::failed");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("Must have admin rights to Repository."),
        "{f}"
    );
    assert!(
        f["help"]
            .as_str()
            .unwrap()
            .contains("permissions: packages: write"),
        "{f}"
    );
    assert_eq!(
        strings(&j["not_deleted"]),
        GONE.map(|t| format!("{image}:{t}")).into()
    );
    assert!(api.deletes().is_empty());
    assert!(s.r.requests_with(&["DELETE"]).is_empty());
    let everything: BTreeSet<String> = GONE
        .map(str::to_owned)
        .into_iter()
        .chain(kept_tags())
        .collect();
    assert_eq!(image_tags(&s.r), everything);
}

#[test]
fn a_ghcr_prune_killed_mid_apply_is_finished_by_the_next_one() {
    let s = scene();
    let mut gone: Vec<String> = GONE.map(str::to_owned).into();
    for i in 0..10 {
        let tag = format!("br-old-{i}");
        if i % 2 == 0 {
            s.r.seed(&Image::random(), REPO, &tag);
        } else {
            retag(&s.r, &s.release, &tag);
        }
        gone.push(tag);
    }
    let api = packages(&s.r, REPO, "orgs", 100);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", s.r.host);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagguard"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TAGGUARD_GHCR_HOSTS", &s.r.host)
        .env("GITHUB_API_URL", api.api())
        .env("GITHUB_TOKEN", TOKEN)
        .args(["prune", "--apply", "--concurrency", "1", "--image", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while api.deletes().is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before any delete"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no delete came");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        image_tags(&s.r).len() > kept_tags().len(),
        "the kill came after the last delete"
    );

    let again = prune_ghcr(&dir, &s.r, &api, &image, Some(TOKEN), &["--apply"]).code(0);
    assert!(again.json()["not_deleted"].as_array().unwrap().is_empty());
    assert_kept_whole(&s);
    assert_eq!(s.r.requests_with(&["DELETE"]).len(), api.deletes().len());
}

/// Tags that share a kept manifest go onto placeholders one by one: with a token that may not
/// delete, one tag is left on its placeholder (which the next run deletes), not all of them.
#[test]
fn ghcr_a_refused_placeholder_delete_stops_after_the_first_tag() {
    let r = Registry::start_deleting(Mode::Plain);
    let release = Image::random();
    r.seed(&release, REPO, "1.0.0");
    let shared = ["br-gone-a", "br-gone-b", "br-gone-c"];
    for tag in shared {
        r.seed(&release, REPO, tag);
    }
    let api = packages(&r, REPO, "orgs", 100);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", r.host);

    let denied = prune_ghcr(&dir, &r, &api, &image, Some(READ_ONLY), &["--apply"]).code(1);
    assert_eq!(
        strings(&denied.json()["not_deleted"]),
        shared.map(|t| format!("{image}:{t}")).into()
    );
    let on_release: Vec<&str> = shared
        .into_iter()
        .filter(|t| r.digest_of(REPO, t).as_deref() == Some(release.digest.as_str()))
        .collect();
    assert_eq!(on_release.len(), 2, "one tag went onto its placeholder");
    assert_eq!(r.digest_of(REPO, "1.0.0"), Some(release.digest.clone()));

    let done = prune_ghcr(&dir, &r, &api, &image, Some(TOKEN), &["--apply"]).code(0);
    assert!(done.json()["not_deleted"].as_array().unwrap().is_empty());
    assert_eq!(image_tags(&r), BTreeSet::from(["1.0.0".to_owned()]));
    assert_eq!(r.digest_of(REPO, "1.0.0"), Some(release.digest.clone()));
    copies_whole(&r, &format!("{REPO}:1.0.0"));
}
