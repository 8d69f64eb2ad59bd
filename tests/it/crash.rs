//! A push killed half-way (`kill -9` of the real binary): what it wrote is covered by the
//! records of the re-run, so `tagguard audit` sees a later move of any of its tags.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cmd::{push, tagguard};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, Registry};

const POLICY: &str = r#"version: 1
tags:
  - template: "{{ version }}"
    when: release
  - template: "sha-{{ short_sha }}"
  - template: latest
    floating: latest
    when: stable-release
"#;

/// Polls `done` for up to 20 s.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_tag_written_by_a_killed_push_is_recorded_by_its_rerun_and_audited() {
    let r = Registry::start(Mode::Plain);
    let ours = Image::random();
    let built = r.seed(&ours, "acme/app", "build");
    let proxy = FaultProxy::start(&r.host, &[]);
    // The immutable phase's write of 1.0.0 is held: the kill lands while the commit tag of the
    // same phase has landed and nothing is recorded yet.
    proxy.rule(Rule::new(
        Some("PUT"),
        "/v2/acme/app/manifests/1.0.0",
        Fault::Stall,
    ));
    let repo = Repo::new();
    repo.write(".tagguard.yml", POLICY);
    let commit = repo.commit("policy");
    let sha_tag = format!("sha-{}", &commit[..7]);
    let image = format!("{}/acme/app", proxy.host());
    let source = format!("{}/acme/app@{built}", proxy.host());
    let push = || push(&repo, &image, &source).args(["--git-tag", "v1.0.0", "--format", "json"]);
    let mut killed = Command::new(env!("CARGO_BIN_EXE_tagguard"))
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["push", "--image", &image, "--source", &source])
        .args(["--git-tag", "v1.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the held write and the commit tag", || {
        proxy.count("PUT", "/v2/acme/app/manifests/1.0.0") == 1
            && r.digest_of("acme/app", &sha_tag).as_deref() == Some(built.as_str())
    });
    // SIGKILL: no chance to record anything.
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(r.digest_of("acme/app", "1.0.0"), None);
    proxy.clear_rules();

    let rerun = push().run().success();
    let report = rerun.json();
    let action = |tag: &str| {
        report["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["tag"] == tag)
            .unwrap()["action"]
            .clone()
    };
    assert_eq!(action(&sha_tag), "unchanged");
    assert_eq!(action("1.0.0"), "create");
    assert!(
        !rerun.stderr.contains("could not record"),
        "{}",
        rerun.stderr
    );
    tagguard(repo.path())
        .args(["audit", "--image", &image])
        .run()
        .success();

    // Someone moves the tag the killed push wrote.
    let other = r.seed(&Image::random(), "acme/app", &sha_tag);
    assert_ne!(other, built);
    let audit = tagguard(repo.path())
        .args(["audit", "--image", &image])
        .run()
        .code(3);
    let text = format!("{}{}", audit.stdout, audit.stderr);
    assert!(text.contains(&sha_tag), "{text}");
    assert!(text.contains(&built), "{text}");
}

/// A re-run that finds every tag already holding its image and already recorded writes no
/// second record.
#[test]
fn a_rerun_with_nothing_to_write_records_once() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build");
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let source = format!("{}/acme/app@{built}", r.host);
    let push = || {
        push(&repo, &image, &source)
            .args(["--git-tag", "v1.0.0"])
            .run()
            .success()
    };
    push();
    let writes = r.requests_with(&["PUT", "POST", "PATCH"]).len();
    push();
    assert_eq!(
        r.requests_with(&["PUT", "POST", "PATCH"]).len(),
        writes,
        "the second run wrote: {:?}",
        r.requests_with(&["PUT", "POST", "PATCH"])
    );
}
