//! Floating tags converge forward under concurrent releases (docs/push-protocol.md): real
//! `tagguard push` processes of different releases at once, against a real registry on
//! loopback, with the default settle time. Whatever order their writes land in, `latest`, the
//! major and the minor tag end on the highest release, and no push that exits 0 has its
//! immutable tag undone.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::cmd::{Run, tagguard};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, Registry};

const POLICY: &str = r#"version: 1
tags:
  - template: "{{ version }}"
    when: release
  - template: "{{ major }}.{{ minor }}"
    when: stable-release
    floating: minor
  - template: "{{ major }}"
    when: stable-release
    floating: major
  - template: latest
    when: stable-release
    floating: latest
"#;

/// `tagguard push` of release `version` (the git tag `v<version>`) from `source` to `image`,
/// started and not waited for.
fn release(repo: &Repo, image: &str, source: &str, version: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tagguard"))
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["push", "--image", image, "--source", source])
        .args(["--git-tag", &format!("v{version}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("tagguard exited, not killed")
}

fn env_rounds(default: usize) -> usize {
    std::env::var("TAGGUARD_CONVERGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A patch released while the previous release's pipeline still runs: `latest` ends on the
/// patch, and both pushes exit 0 — in every round.
#[test]
fn two_overlapping_releases_leave_latest_on_the_higher_one() {
    let r = Registry::start(Mode::Plain);
    let repo = project(POLICY);
    for round in 0..env_rounds(3) {
        let app = format!("acme/app{round}");
        let (older, newer) = (Image::random(), Image::random());
        let a = r.seed(&older, "ci/build", &format!("a{round}"));
        let b = r.seed(&newer, "ci/build", &format!("b{round}"));
        let image = format!("{}/{app}", r.host);
        let source = |d: &str| format!("{}/ci/build@{d}", r.host);
        let first = release(&repo, &image, &source(&a), "1.2.0");
        std::thread::sleep(Duration::from_millis(500));
        let second = release(&repo, &image, &source(&b), "1.2.1");
        let outs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        for (out, v) in outs.iter().zip(["1.2.0", "1.2.1"]) {
            assert_eq!(
                code(out),
                0,
                "round {round}: the push of {v}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for tag in ["latest", "1", "1.2", "1.2.1"] {
            assert_eq!(
                r.digest_of(&app, tag).as_ref(),
                Some(&b),
                "round {round}: {tag} is not on 1.2.1"
            );
        }
        assert_eq!(r.digest_of(&app, "1.2.0").as_ref(), Some(&a));
    }
}

/// Eight releases of one line at once: every floating tag ends on the highest, the highest
/// push exits 0, a push that exits 0 keeps its immutable tag, and `tagguard audit` finds
/// nothing behind.
#[test]
fn eight_concurrent_releases_end_on_the_highest() {
    let r = Registry::start(Mode::Plain);
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let releases: Vec<(String, String)> = (0..8)
        .map(|patch| {
            let img = Image::random();
            let digest = r.seed(&img, "ci/build", &format!("p{patch}"));
            // The content is in the target repository already: the pushes race on tags.
            r.seed(&img, "acme/app", &format!("content-{patch}"));
            (format!("1.2.{patch}"), digest)
        })
        .collect();
    let children: Vec<Child> = releases
        .iter()
        .map(|(v, d)| release(&repo, &image, &format!("{}/ci/build@{d}", r.host), v))
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let highest = &releases[7].1;
    let exits: Vec<i32> = outs.iter().map(code).collect();
    report(&format!("eight concurrent releases: exit codes {exits:?}"));
    for ((v, digest), out) in releases.iter().zip(&outs) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        match code(out) {
            0 => assert_eq!(
                r.digest_of("acme/app", v).as_ref(),
                Some(digest),
                "{v} exited 0 but its immutable tag was undone"
            ),
            1 if v != "1.2.7" => assert!(
                stderr.contains("another writer") || stderr.contains("settle time"),
                "{v} exited 1 without naming a race: {stderr}"
            ),
            other => panic!("the push of {v} exited {other}: {stderr}"),
        }
    }
    for tag in ["latest", "1", "1.2"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_ref(),
            Some(highest),
            "{tag} is not on 1.2.7"
        );
    }
    let audit = tagguard(repo.path())
        .args(["audit", "--image", &image, "--format", "json"])
        .run();
    let report = audit.json();
    let behind: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.to_string().contains("floating"))
        .collect();
    assert!(behind.is_empty(), "audit: {report}");
}

#[allow(
    clippy::print_stderr,
    reason = "the figures docs/push-protocol.md records"
)]
fn report(line: &str) {
    eprintln!("{line}");
}

/// `latest` on release 1.0.0; the push of 1.1.0 writes it, the registry acknowledges and keeps
/// the old image (`lost` times): the read-back finds an older release, and the tag is moved
/// forward again, each round looking it up again.
fn release_over_a_lost_write(lost: usize) -> (Registry, FaultProxy, String, Run) {
    let r = Registry::start(Mode::Plain);
    let old_image = Image::random();
    r.seed(&old_image, "acme/app", "1.0.0");
    r.seed(&old_image, "acme/app", "latest");
    let new = r.seed(&Image::random(), "acme/app", "build");
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(
        Rule::new(
            Some("PUT"),
            "/v2/acme/app/manifests/latest",
            Fault::status(201).with_header("Docker-Content-Digest", new.clone()),
        )
        .first(lost),
    );
    let repo = project(
        "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: latest\n    floating: latest\n    when: stable-release\n",
    );
    let run = tagguard(repo.path())
        .args([
            "push",
            "--git-tag",
            "v1.1.0",
            "--format",
            "json",
            "--settle",
            "0",
        ])
        .args(["--image", &format!("{}/acme/app", proxy.host())])
        .args(["--source", &format!("{}/acme/app@{new}", proxy.host())])
        .run();
    (r, proxy, new, run)
}

#[test]
fn a_floating_tag_read_back_on_an_older_release_is_moved_forward_again() {
    let (r, proxy, new, run) = release_over_a_lost_write(2);
    let run = run.success();
    assert_eq!(r.digest_of("acme/app", "latest"), Some(new.clone()));
    assert_eq!(proxy.count("PUT", "/v2/acme/app/manifests/latest"), 3);
    let report = run.json();
    let latest = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["tag"] == "latest")
        .unwrap()
        .clone();
    assert_eq!(latest["verified"], true, "{report}");
}

#[test]
fn a_floating_tag_moved_back_in_every_round_is_named() {
    let (r, proxy, new, run) = release_over_a_lost_write(usize::MAX);
    let report = run.code(1).json();
    // The write and 3 more rounds, then it says so.
    assert_eq!(proxy.count("PUT", "/v2/acme/app/manifests/latest"), 4);
    assert_eq!(
        r.digest_of("acme/app", "latest"),
        r.digest_of("acme/app", "1.0.0")
    );
    assert_ne!(r.digest_of("acme/app", "latest"), Some(new));
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "tagguard::push::race")
        .unwrap()
        .clone();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("was moved forward 3 more times and read back each time at an older release"),
        "{finding}"
    );
    assert_eq!(report["verified"], false);
}
