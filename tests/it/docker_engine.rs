//! `tagguard push --source docker:IMAGE` with the real Docker engine: `docker build` of a
//! `FROM scratch` image (nothing to pull), `docker login` to a loopback htpasswd registry, the
//! push, then `docker pull` of every tag and a comparison of image IDs.
//!
//! These tests need the engine. `.ci/run` checks first that it is there and can reach a
//! loopback registry; when it cannot, it says so in one unmistakable line and leaves these
//! tests out, rather than letting them pass or skip silently.

use std::path::Path;
use std::process::Command;

use crate::support::cmd::{self, Run};
use crate::support::git::Repo;
use crate::support::registry::{Mode, PASSWORD, Registry, USER};

fn docker(config: &Path, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds a distinct `FROM scratch` image; returns its name.
fn build(dir: &Path, config: &Path, content: &str) -> String {
    let context = dir.join(format!("ctx-{}", fastrand::u32(..)));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("hello.txt"), content).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let name = format!("tagguard-test-{:08x}", fastrand::u32(..));
    let out = Command::new("docker")
        // --no-cache: the legacy builder's cache lookup fails when a concurrent `docker rmi`
        // (other tests) removes an image it walks.
        .args(["build", "-q", "--no-cache", "-t", &name])
        .arg(&context)
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build runs");
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

struct Cleanup(Vec<String>, std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", image])
                .env("DOCKER_CONFIG", &self.1)
                .output();
        }
    }
}

fn push(repo: &Repo, config: &Path, image: &str, source: &str, version: &str) -> Run {
    cmd::push(repo, image, source)
        .args(["--git-tag", version, "--format", "json"])
        .env("DOCKER_CONFIG", config)
        .run()
}

/// `docker login` to `registry` with `config` as the Docker config.
fn login(registry: &Registry, config: &Path) {
    let login = Command::new("docker")
        .args([
            "login",
            &registry.host,
            "--username",
            USER,
            "--password-stdin",
        ])
        .env("DOCKER_CONFIG", config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
            child.wait_with_output()
        })
        .expect("docker login runs");
    assert!(
        login.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
}

#[test]
fn docker_engine_push_login_pull_and_compare_image_ids() {
    let registry = Registry::start(Mode::Basic);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    login(&registry, &config);

    let built = build(dir.path(), &config, "one");
    let target = format!("{}/acme/app", registry.host);
    let mut cleanup = Cleanup(vec![built.clone()], config.clone());
    let local_id = docker(
        &config,
        &["image", "inspect", "--format", "{{.Id}}", &built],
    );

    let repo = Repo::new();
    let run = push(
        &repo,
        &config,
        &target,
        &format!("docker:{built}"),
        "v1.2.0",
    )
    .success();
    let report = run.json();
    assert_eq!(report["verified"], true);
    let tags: Vec<String> = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["tag"].as_str().unwrap().to_owned())
        .collect();
    let sha = format!("sha-{}", &repo.head()[..7]);
    // Written in phases: immutable tags first, floating tags last.
    assert_eq!(tags, ["1.2.0", sha.as_str(), "1.2", "1", "latest"]);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    // Recorded for `audit`, though only the engine knew the image's digest before the writes:
    // the fallback tag of the image (this registry has no referrers API) lists the record.
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    let digest = report["written"][0]["digest"].as_str().unwrap();
    let fallback = format!("sha256-{}", &digest["sha256:".len()..]);
    let index = registry
        .digest_of("acme/app", &fallback)
        .expect("the fallback tag exists");
    assert!(index.starts_with("sha256:"), "{index}");

    // Pull every tag fresh from the registry and compare image IDs.
    for tag in &tags {
        let reference = format!("{target}:{tag}");
        cleanup.0.push(reference.clone());
        docker(&config, &["rmi", &reference]);
        docker(&config, &["pull", "-q", &reference]);
        let pulled = docker(
            &config,
            &["image", "inspect", "--format", "{{.Id}}", &reference],
        );
        assert_eq!(pulled, local_id, "{reference}");
    }

    // The same local image again: every tag unchanged (compared by config digest), no push.
    let writes_before = registry.requests_with(&["PUT", "POST", "PATCH"]).len();
    let run = push(
        &repo,
        &config,
        &target,
        &format!("docker:{built}"),
        "v1.2.0",
    )
    .success();
    let report = run.json();
    assert!(
        report["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["action"] == "unchanged"),
        "{report}"
    );
    assert_eq!(
        registry.requests_with(&["PUT", "POST", "PATCH"]).len(),
        writes_before
    );

    let other = build(dir.path(), &config, "two");
    cleanup.0.push(other.clone());
    second_builds(&repo, &registry, &config, &target, &other, digest);
}

/// After a push of release v1.2.0 at `first` (its 1.2.0 digest): another build of the same
/// commit (a CI re-run, no labels) keeps the first, another commit's is refused; neither
/// writes.
fn second_builds(
    repo: &Repo,
    registry: &Registry,
    config: &Path,
    target: &str,
    other: &str,
    first: &str,
) {
    let writes_before = registry.requests_with(&["PUT", "POST", "PATCH"]).len();
    let sha = format!("sha-{}", &repo.head()[..7]);
    // A fresh build of the same commit (a CI re-run, no labels): tagguard's record of the
    // first push proves its commit, so the first build is kept and nothing is written.
    let push_other = |repo: &Repo| push(repo, config, target, &format!("docker:{other}"), "v1.2.0");
    let run = push_other(repo).success();
    let report = run.json();
    let kept: Vec<&str> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "keep")
        .map(|d| d["tag"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["1.2.0", sha.as_str()], "{report}");
    assert_eq!(report["decisions"][0]["revision"]["from"], "record");
    assert_eq!(
        registry.requests_with(&["PUT", "POST", "PATCH"]).len(),
        writes_before
    );

    // Another commit's build for the same release is refused, nothing moves, and the message
    // calls what would be pushed "this build".
    repo.commit("another commit");
    let run = push_other(repo).code(3);
    assert!(
        run.stderr.contains(&format!(
            "refusing to move immutable tag {target}:1.2.0 from {first} to this build"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        registry.requests_with(&["PUT", "POST", "PATCH"]).len(),
        writes_before
    );
}

/// A registry that stalls docker's uploads: the engine retries and counts down ("Retrying in N
/// seconds") for ever; `--docker-push-deadline` stops the push, which names the deadline.
#[test]
fn a_docker_push_to_a_stalled_registry_is_stopped_at_its_deadline() {
    use crate::support::fault_proxy::{Fault, FaultProxy, Rule};

    let registry = Registry::start(Mode::Plain);
    let proxy = FaultProxy::start(&registry.host, &[]);
    // tagguard's own requests pass; the engine's layer uploads (PATCH) are never answered.
    proxy.rule(Rule::new(
        Some("PATCH"),
        "/v2/acme/app/blobs/uploads/.*",
        Fault::Stall,
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let built = build(dir.path(), &config, "stalled");
    let _cleanup = Cleanup(vec![built.clone()], config.clone());
    let repo = Repo::new();
    let start = std::time::Instant::now();
    let image = format!("{}/acme/app", proxy.host());
    let run = cmd::push(&repo, &image, &format!("docker:{built}"))
        .args(["--git-tag", "v1.0.0"])
        .args(["--docker-push-deadline", "6", "--format", "json"])
        .env("DOCKER_CONFIG", &config)
        .run()
        .code(1);
    let took = start.elapsed();
    let report = run.json();
    let message = report["findings"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("reached their deadline of 6s (--docker-push-deadline)"),
        "{report}"
    );
    // The deadline is the promise: 6 s for every docker push of the run together (one per
    // tag), with room for the plan and the engine's own start.
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    assert!(proxy.count("PATCH", "/v2/acme/app/blobs/uploads/.*") >= 1);
    assert_eq!(report["written"], serde_json::json!([]));
}
