//! `tagguard prune` against the real registry with deletes enabled: the plan changes nothing,
//! `--apply` removes exactly the temporary tags whose retention is over, and everything a kept
//! tag needs (shared digests, the platforms of a multi-arch release) still copies whole.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cmd::{Run, tagguard};
use crate::support::git::Repo;
use crate::support::http::{Response, Server};
use crate::support::registry::{Image, Mode, Registry, pulls_back};

pub(crate) const REPO: &str = "acme/app";

pub(crate) const POLICY: &str = r#"version: 1
tags:
  - template: "{{ version }}"
    when: release
  - template: latest
    when: stable-release
    floating: latest
  - template: "sha-{{ short_sha }}"
  - template: "br-{{ branch }}"
    when: { branch: "." }
    immutable: false
    retain: { while: branch-exists }
"#;

/// A checkout whose `origin` has the branches `main` and `feature/live`.
pub(crate) fn checkout(policy: &str) -> (Repo, Repo) {
    let upstream = Repo::new();
    upstream.branch("feature/live").commit("live work");
    upstream.git(&["checkout", "-q", "main"]);
    let checkout = upstream.shallow_clone("main");
    checkout.write(".tagguard.yml", policy);
    (upstream, checkout)
}

pub(crate) fn prune(dir: &Repo, image: &str, extra: &[&str]) -> Run {
    tagguard(dir.path())
        .args(["prune", "--image", image, "--format", "json"])
        .args(extra)
        .run()
}

pub(crate) fn verdicts(run: &Run) -> BTreeMap<String, String> {
    run.json()["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["tag"].as_str().unwrap().to_owned(),
                d["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(crate) fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The raw manifest at `reference` (`repo:tag` or `repo@digest`), read with skopeo.
pub(crate) fn raw(r: &Registry, reference: &str) -> Option<Value> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/{reference}", r.host))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// The platform manifests of the index `digest`.
fn platforms_of(r: &Registry, digest: &str) -> Vec<String> {
    raw(r, &format!("{REPO}@{digest}")).unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Tags `digest` (already in the repository) as `tag`.
fn retag(r: &Registry, digest: &str, tag: &str) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{}/{REPO}@{digest}", r.host))
        .arg(format!("docker://{}/{REPO}:{tag}", r.host))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn copies_whole(r: &Registry, reference: &str) {
    let home = tempfile::tempdir().unwrap();
    pulls_back(&format!("{}/{reference}", r.host), home.path());
}

/// The repository of the issue: a live branch tag sharing its digest with an immutable `sha-`
/// tag; three tags of deleted branches (alone, sharing release 1.0.0's digest, on a platform of
/// the multi-arch release 1.1.0); `latest`; a tag matching no rule.
pub(crate) struct Scene {
    pub r: Registry,
    pub alone: String,
    pub release: String,
    pub platforms: Vec<String>,
    pub index: String,
}

pub(crate) fn scene() -> Scene {
    let r = Registry::start_deleting(Mode::Plain);
    let live = Image::random();
    r.seed(&live, REPO, "sha-abcdef1");
    r.seed(&live, REPO, "br-feature-live");
    let alone = r.seed(&Image::random(), REPO, "br-gone-alone");
    let release = Image::random();
    r.seed(&release, REPO, "1.0.0");
    r.seed(&release, REPO, "br-gone-release");
    let index = r.seed_index(REPO, "1.1.0");
    retag(&r, &index, "latest");
    let platforms = platforms_of(&r, &index);
    retag(&r, &platforms[0], "br-gone-platform");
    r.seed(&Image::random(), REPO, "nightly-of-someone");
    Scene {
        alone,
        release: release.digest,
        platforms,
        index,
        r,
    }
}

pub(crate) const GONE: [&str; 3] = ["br-gone-alone", "br-gone-platform", "br-gone-release"];

pub(crate) fn kept_tags() -> BTreeSet<String> {
    [
        "1.0.0",
        "1.1.0",
        "br-feature-live",
        "latest",
        "nightly-of-someone",
        "sha-abcdef1",
    ]
    .map(str::to_owned)
    .into()
}

/// The tags of the repository but the fallback tags that list records (`sha256-<hex>`).
pub(crate) fn image_tags(r: &Registry) -> BTreeSet<String> {
    r.tags_of(REPO)
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect()
}

pub(crate) fn assert_kept_whole(s: &Scene) {
    assert_eq!(image_tags(&s.r), kept_tags());
    assert_eq!(
        s.r.digest_of(REPO, "1.0.0").as_deref(),
        Some(s.release.as_str())
    );
    assert_eq!(
        s.r.digest_of(REPO, "1.1.0").as_deref(),
        Some(s.index.as_str())
    );
    copies_whole(&s.r, &format!("{REPO}:1.0.0"));
    for p in &s.platforms {
        copies_whole(&s.r, &format!("{REPO}@{p}"));
    }
}

#[test]
fn prune_plans_then_removes_exactly_the_tags_of_deleted_branches() {
    let s = scene();
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", s.r.host);
    let before = s.r.requests_with(&["PUT", "DELETE", "POST", "PATCH"]).len();

    let plan = prune(&dir, &image, &[]).code(0);
    let v = verdicts(&plan);
    let expected: BTreeMap<String, String> = [
        ("1.0.0", "protect"),
        ("1.1.0", "protect"),
        ("br-feature-live", "keep"),
        ("br-gone-alone", "delete"),
        ("br-gone-platform", "delete"),
        ("br-gone-release", "delete"),
        ("latest", "protect"),
        ("nightly-of-someone", "protect"),
        ("sha-abcdef1", "protect"),
    ]
    .map(|(t, v)| (t.to_owned(), v.to_owned()))
    .into();
    assert_eq!(v, expected, "{}", plan.stdout);
    let delete: BTreeSet<String> = GONE.map(|t| format!("{image}:{t}")).into();
    assert_eq!(strings(&plan.json()["delete"]), delete);
    assert!(plan.json()["deleted"].as_array().unwrap().is_empty());
    assert!(
        plan.stderr.contains("nothing was deleted"),
        "{}",
        plan.stderr
    );
    let j = plan.json();
    let live = j["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["tag"] == "br-feature-live")
        .unwrap();
    assert_eq!(live["reason"], "branch feature/live exists");
    // The plan wrote nothing.
    assert_eq!(
        s.r.requests_with(&["PUT", "DELETE", "POST", "PATCH"]).len(),
        before
    );
    assert_eq!(s.r.tags_of(REPO).len(), 9);

    let applied = prune(&dir, &image, &["--apply"]).code(0);
    let deleted: BTreeSet<String> = applied.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some(format!("{}:{}", d["image"].as_str()?, d["tag"].as_str()?)))
        .collect();
    assert_eq!(deleted, delete, "{}", applied.stdout);
    assert!(applied.json()["not_deleted"].as_array().unwrap().is_empty());
    // The image no kept tag needs is gone by digest; the shared ones stay.
    let manifests: BTreeSet<String> = applied.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["tag"].is_null())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(manifests, BTreeSet::from([s.alone.clone()]));
    assert!(raw(&s.r, &format!("{REPO}@{}", s.alone)).is_none());
    assert_kept_whole(&s);
    // What was deleted is recorded beside each image the tags held (the fallback tag here).
    for (digest, tag) in [
        (&s.alone, "br-gone-alone"),
        (&s.release, "br-gone-release"),
        (&s.platforms[0], "br-gone-platform"),
    ] {
        let index =
            raw(&s.r, &format!("{REPO}:sha256-{}", &digest[7..])).expect("a fallback index");
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["artifactType"],
            "application/vnd.tagguard.prune.v1+json"
        );
        assert_eq!(entry["annotations"]["io.tagguard.prune.deleted"], tag);
    }
    // audit finds nothing wrong with what prune left.
    tagguard(dir.path())
        .args(["audit", "--image", &image])
        .run()
        .code(0);

    let again = prune(&dir, &image, &["--apply"]).code(0);
    let deletes_before = s.r.requests_with(&["DELETE"]).len();
    assert!(again.json()["delete"].as_array().unwrap().is_empty());
    assert!(again.json()["deleted"].as_array().unwrap().is_empty());
    assert_eq!(s.r.requests_with(&["DELETE"]).len(), deletes_before);
    assert_kept_whole(&s);
}

#[test]
fn a_prune_killed_mid_apply_is_finished_by_the_next_one() {
    let s = scene();
    // More tags of deleted branches, each alone or beside a kept tag, so the apply takes a while
    // at one request at a time.
    let mut gone: Vec<String> = GONE.map(str::to_owned).into();
    for i in 0..12 {
        let tag = format!("br-old-{i}");
        if i % 2 == 0 {
            s.r.seed(&Image::random(), REPO, &tag);
        } else {
            retag(&s.r, &s.release, &tag);
        }
        gone.push(tag);
    }
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", s.r.host);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagguard"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["prune", "--apply", "--concurrency", "1", "--image", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while s.r.requests_with(&["DELETE"]).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before any delete"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no delete came");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = image_tags(&s.r).len();
    assert!(
        left > kept_tags().len(),
        "the kill came after the last delete"
    );

    let again = prune(&dir, &image, &["--apply"]).code(0);
    assert!(again.json()["not_deleted"].as_array().unwrap().is_empty());
    assert_kept_whole(&s);
}

const PR_POLICY: &str = r#"version: 1
tags:
  - template: "pr-{{ pr_number }}"
    when: pull-request
    immutable: false
    retain: { while: pr-open }
  - template: "build-{{ build_number }}"
    when: ci
    immutable: false
    retain: { newest: 2, younger-than: 30d }
"#;

#[test]
fn pull_request_tags_live_while_the_pull_request_is_open() {
    let r = Registry::start_deleting(Mode::Plain);
    for n in [7, 8] {
        r.seed(&Image::random(), REPO, &format!("pr-{n}"));
    }
    // Two pages: a full one of other pull requests, then the one that keeps pr-7.
    let forge = Server::start(|req| {
        assert_eq!(req.path(), "/repos/acme/app/pulls");
        assert_eq!(req.header("authorization"), Some("Bearer gh-token"));
        let page = req
            .query()
            .into_iter()
            .find(|(k, _)| k == "page")
            .unwrap()
            .1;
        match page.as_str() {
            "1" => Response::new(200).json((1000..1100).map(|n| json!({ "number": n })).collect()),
            _ => Response::new(200).json(json!([{ "number": 7 }])),
        }
    });
    let (_upstream, dir) = checkout(PR_POLICY);
    let image = format!("{}/{REPO}", r.host);
    let api = format!("http://{}", forge.host());
    let run = tagguard(dir.path())
        .args(["prune", "--image", &image, "--format", "json"])
        .envs([
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_API_URL", api.as_str()),
            ("GITHUB_TOKEN", "gh-token"),
        ])
        .run()
        .code(0);
    let v = verdicts(&run);
    assert_eq!(v["pr-7"], "keep");
    assert_eq!(v["pr-8"], "delete");
    assert!(!run.stdout.contains("gh-token") && !run.stderr.contains("gh-token"));
    assert_eq!(forge.requests().len(), 2);

    // GitLab: merge requests by their project-scoped number, with the job token.
    let gitlab = Server::start(|req| {
        assert_eq!(req.path(), "/api/v4/projects/42/merge_requests");
        assert_eq!(req.header("job-token"), Some("job-secret"));
        Response::new(200).json(json!([{ "iid": 8, "id": 9999 }]))
    });
    let api = format!("http://{}/api/v4", gitlab.host());
    let run = tagguard(dir.path())
        .args(["prune", "--image", &image, "--format", "json"])
        .envs([
            ("CI_API_V4_URL", api.as_str()),
            ("CI_PROJECT_ID", "42"),
            ("CI_JOB_TOKEN", "job-secret"),
        ])
        .run()
        .code(0);
    let v = verdicts(&run);
    assert_eq!((v["pr-7"].as_str(), v["pr-8"].as_str()), ("delete", "keep"));

    // Without a forge to ask, every pull request tag is kept, and the reason says why.
    let run = prune(&dir, &image, &[]).code(0);
    let d = &run.json()["decisions"][1];
    assert_eq!(d["verdict"], "keep");
    assert_eq!(d["why"], json!(["liveness-unknown"]));
    assert!(d["reason"].as_str().unwrap().contains("no forge"), "{d}");
    assert_eq!(
        run.json()["findings"][0]["code"],
        "tagguard::prune::liveness_unknown"
    );
    assert_eq!(run.json()["findings"][0]["severity"], "warning");
}

#[test]
fn newest_and_age_count_from_the_images_created_time() {
    let r = Registry::start_deleting(Mode::Plain);
    let days = |n: u32| format!("2026-01-{n:02}T00:00:00Z");
    // build-1 is oldest; build-4 newest. At 2026-02-10, 30 days back is 2026-01-11.
    for (n, created) in [(1, days(1)), (2, days(5)), (3, days(20)), (4, days(25))] {
        r.seed(&Image::created(&created), REPO, &format!("build-{n}"));
    }
    let undated = Image::random();
    r.seed(&undated, REPO, "build-9");
    let (_upstream, dir) = checkout(PR_POLICY);
    let image = format!("{}/{REPO}", r.host);
    let run = prune(&dir, &image, &["--now", "2026-02-10T00:00:00Z"]).code(0);
    let v = verdicts(&run);
    assert_eq!(v["build-4"], "keep"); // newest and young
    assert_eq!(v["build-3"], "keep"); // second newest and young
    assert_eq!(v["build-2"], "delete"); // third, and older than 30 days
    assert_eq!(v["build-1"], "delete");
    assert_eq!(v["build-9"], "keep"); // no `created`: age unknown, kept
    let applied = prune(&dir, &image, &["--now", "2026-02-10T00:00:00Z", "--apply"]).code(0);
    assert_eq!(applied.json()["not_deleted"], json!([]));
    let tags: Vec<String> = r
        .tags_of(REPO)
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    assert_eq!(tags, ["build-3", "build-4", "build-9"]);
}

#[test]
fn a_registry_that_does_not_delete_says_so_and_names_the_way_out() {
    let r = Registry::start(Mode::Plain);
    r.seed(&Image::random(), REPO, "br-gone");
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", r.host);
    let run = prune(&dir, &image, &["--apply"]).code(1);
    let j = run.json();
    assert_eq!(j["status"], "failed");
    assert_eq!(j["not_deleted"], json!([format!("{image}:br-gone")]));
    let f = &j["findings"][0];
    assert_eq!(f["code"], "tagguard::prune::unsupported");
    assert!(
        f["help"]
            .as_str()
            .unwrap()
            .starts_with("not supported here: use "),
        "{f}"
    );
    assert_eq!(r.tags_of(REPO), ["br-gone"]);
}

#[test]
fn help_text() {
    let dir = tempfile::tempdir().unwrap();
    let run = tagguard(dir.path())
        .args(["prune", "--help"])
        .run()
        .success();
    insta::assert_snapshot!("help-prune", run.stdout);
}

const AGE_POLICY: &str = r#"version: 1
tags:
  - template: "br-{{ branch }}"
    when: { branch: "." }
    immutable: false
    retain: { younger-than: 10d }
"#;

#[test]
fn age_counts_from_tagguards_record_of_the_write_before_the_images_created() {
    let r = Registry::start_deleting(Mode::Plain);
    let (_upstream, dir) = checkout(AGE_POLICY);
    dir.git(&["checkout", "-q", "-b", "topic"]);
    let image = format!("{}/{REPO}", r.host);
    // Built long after it was pushed, says its config: the record of the push wins.
    let digest = r.seed(&Image::created("2026-03-01T00:00:00Z"), "acme/build", "b");
    let source = format!("{}/acme/build@{digest}", r.host);
    let push = tagguard(dir.path())
        .args([
            "push", "--image", &image, "--source", &source, "--format", "json",
        ])
        .args(["--timestamp=2026-01-01T00:00:00Z"])
        .run()
        .success();
    assert_eq!(
        push.json()["findings"],
        json!([]),
        "recorded: {}",
        push.stdout
    );

    let young = prune(&dir, &image, &["--now", "2026-01-05T00:00:00Z"]).code(0);
    assert_eq!(verdicts(&young)["br-topic"], "keep");
    assert_eq!(young.json()["images"][0]["records"], 1);
    let old = prune(&dir, &image, &["--now", "2026-01-20T00:00:00Z", "--apply"]).code(0);
    let d = &old.json()["decisions"][0];
    assert_eq!(d["verdict"], "delete", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("from 2026-01-01T00:00:00Z"),
        "{d}"
    );
    // The fallback tag that lists the push's record stays (a referrer tag), now listing the
    // prune's record too.
    let fallback = format!("sha256-{}", &digest[7..]);
    assert_eq!(r.tags_of(REPO), std::slice::from_ref(&fallback));
    let index = raw(&r, &format!("{REPO}:{fallback}")).unwrap();
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.tagguard.record.v1+json",
            "application/vnd.tagguard.prune.v1+json"
        ]
    );
}

#[test]
fn a_multi_arch_image_only_a_deleted_tag_held_goes_with_its_platforms() {
    let r = Registry::start_deleting(Mode::Plain);
    let index = r.seed_index(REPO, "br-gone-multi");
    let platforms = platforms_of(&r, &index);
    // One platform is also an immutable tag's image: it stays.
    retag(&r, &platforms[1], "sha-1234567");
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", r.host);
    let run = prune(&dir, &image, &["--apply"]).code(0);
    let manifests: BTreeSet<String> = run.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["tag"].is_null())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        manifests,
        BTreeSet::from([index.clone(), platforms[0].clone()])
    );
    assert!(raw(&r, &format!("{REPO}@{index}")).is_none());
    assert!(raw(&r, &format!("{REPO}@{}", platforms[0])).is_none());
    assert_eq!(image_tags(&r), BTreeSet::from(["sha-1234567".to_owned()]));
    copies_whole(&r, &format!("{REPO}:sha-1234567"));
}
