//! Races between writers of one immutable tag. No registry offers a conditional manifest PUT, so
//! no client can close the window between "the tag is absent" and its write; what tagguard
//! guarantees instead (docs/push-protocol.md):
//!
//! - a tag that changes between the plan and the write is looked up again right before the write
//!   and is not overwritten;
//! - with a settle time, two pushes of different images to the same immutable tag never both
//!   succeed (against a linearizable registry), and a process that exits 0 holds the tag.
//!
//! `TAGGUARD_RACE_ROUNDS=200 cargo nextest run race --no-capture` runs more rounds;
//! `TAGGUARD_RACE_SETTLE=0` measures how often both succeed without the settle time (the figure
//! docs/push-protocol.md records) instead of asserting that they never do.

use std::process::{Child, Command, Stdio};

use crate::support::cmd::tagguard;
use crate::support::git::{Repo, project};
use crate::support::http::{Response, Server};
use crate::support::registry::{Image, Mode, Registry};

/// Rounds run at once (each a pair of processes), to keep the default suite fast.
const AT_ONCE: usize = 8;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

struct Round {
    round: usize,
    children: [Child; 2],
}

fn spawn(repo: &Repo, image: &str, source: &str, round: usize, settle: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tagguard"))
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TAGGUARD_SETTLE", settle)
        .args(["push", "--image", image, "--source", source])
        .args(["--build-id", &round.to_string(), "--build-number", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_pushes_of_one_immutable_tag_never_both_succeed() {
    let rounds: usize = env_or("TAGGUARD_RACE_ROUNDS", "40").parse().unwrap();
    let settle = env_or("TAGGUARD_RACE_SETTLE", "1");
    let measuring = settle.parse::<f64>().unwrap() == 0.0;
    let r = Registry::start(Mode::Plain);
    let (image_a, image_b) = (Image::random(), Image::random());
    let a = r.seed(&image_a, "ci/build", "a");
    let b = r.seed(&image_b, "ci/build", "b");
    // The content is already in the target repository: the rounds race on the tag alone (two
    // processes mounting the same blob at once is distribution's own race, not this one).
    r.seed(&image_a, "acme/app", "a");
    r.seed(&image_b, "acme/app", "b");
    let repo = project("version: 1\ntags:\n  - template: \"race-{{ build_id }}\"\n    when: ci\n");
    let image = format!("{}/acme/app", r.host);
    let source = |d: &str| format!("{}/ci/build@{d}", r.host);

    let (mut both, mut races, mut refused) = (0, 0, 0);
    let all: Vec<usize> = (0..rounds).collect();
    for batch in all.chunks(AT_ONCE) {
        let started: Vec<Round> = batch
            .iter()
            .map(|&round| Round {
                round,
                children: [
                    spawn(&repo, &image, &source(&a), round, &settle),
                    spawn(&repo, &image, &source(&b), round, &settle),
                ],
            })
            .collect();
        // Every process of the batch ends before any tag is read: distribution answers 500 to
        // reads while writes to the repository are in flight.
        let ended: Vec<(usize, [std::process::Output; 2])> = started
            .into_iter()
            .map(|Round { round, children }| {
                let [pa, pb] = children;
                let outs = [
                    pa.wait_with_output().unwrap(),
                    pb.wait_with_output().unwrap(),
                ];
                (round, outs)
            })
            .collect();
        for (round, outs) in ended {
            let fin = r
                .digest_of("acme/app", &format!("race-{round}"))
                .expect("the tag exists");
            assert!(
                fin == a || fin == b,
                "round {round}: the tag holds {fin}, which neither wrote"
            );
            let codes = [
                outs[0].status.code().unwrap(),
                outs[1].status.code().unwrap(),
            ];
            if codes == [0, 0] {
                both += 1;
                assert!(measuring, "round {round}: both pushes claimed success");
                continue;
            }
            // The messages as words: miette wraps them to the terminal's width.
            let words = |bytes: &[u8]| {
                String::from_utf8_lossy(bytes)
                    .split_whitespace()
                    .filter(|w| *w != "│")
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            for (k, (out, mine)) in outs.iter().zip([&a, &b]).enumerate() {
                let stderr = words(&out.stderr);
                match out.status.code().unwrap() {
                    // A push that claimed success holds the tag, unless the other one wrote
                    // after it, more than the settle time after its own lookup: then that one
                    // says it may have overwritten a claimed tag (docs/push-protocol.md).
                    0 if &fin != mine => {
                        let other = words(&outs[1 - k].stderr);
                        assert!(
                            other.contains("another push of this tag may have claimed success"),
                            "round {round}: a push claimed success but the tag holds the other image, and the other push did not say so: {other}"
                        );
                    }
                    0 => {}
                    1 => {
                        assert!(
                            stderr.contains("another writer changed")
                                || stderr.contains("another push of this tag may have claimed"),
                            "round {round}: exit 1 without naming the race: {stderr}"
                        );
                        races += 1;
                    }
                    3 => {
                        assert!(
                            stderr.contains("refusing to move immutable tag"),
                            "round {round}: {stderr}"
                        );
                        refused += 1;
                    }
                    other => panic!("round {round}: exit {other}: {stderr}"),
                }
            }
        }
    }
    report(&format!(
        "race: {rounds} rounds, settle {settle} s: both succeeded in {both}; {races} pushes named a race; {refused} were refused because the other had written first"
    ));
}

#[allow(
    clippy::print_stderr,
    reason = "the figures docs/push-protocol.md records"
)]
fn report(line: &str) {
    eprintln!("{line}");
}

/// A source registry stub that serves one image from an OCI layout; the first time a blob is
/// read from it (the push is copying content), `meanwhile` runs.
fn source_stub(image: &Image, meanwhile: impl Fn() + Send + Sync + 'static) -> Server {
    let dir = image.dir.path().to_owned();
    let digest = image.digest.clone();
    let once = std::sync::Once::new();
    Server::start(move |req| {
        let path = req.path().to_owned();
        let blob = |d: &str| {
            std::fs::read(
                dir.join("blobs/sha256")
                    .join(d.trim_start_matches("sha256:")),
            )
        };
        if path == "/v2/" {
            Response::new(200)
        } else if path.ends_with(&format!("/manifests/{digest}")) {
            Response::new(200)
                .header("Docker-Content-Digest", digest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(blob(&digest).unwrap())
        } else if let Some((_, d)) = path.split_once("/blobs/") {
            once.call_once(&meanwhile);
            match blob(d) {
                Ok(bytes) => Response::new(200).body(bytes),
                Err(_) => Response::new(404),
            }
        } else {
            Response::new(404)
        }
    })
}

/// Runs `skopeo copy` of `image` to `acme/app:tag` in `r`, as another writer would.
fn other_writer(image: &Image, r: &Registry, tag: &str) -> impl Fn() + Send + Sync + 'static {
    let dir = image.dir.path().to_owned();
    let target = format!("docker://{}/acme/app:{tag}", r.host);
    let home = r.dir.path().to_owned();
    move || {
        let out = Command::new("skopeo")
            .env("HOME", &home)
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:img", dir.display()))
            .arg(&target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn push_from(stub: &Server, ours: &Image, r: &Registry, policy: &str) -> crate::support::cmd::Run {
    let repo = project(policy);
    tagguard(repo.path())
        .args(["push", "--git-tag", "v1.0.0", "--format", "json"])
        .args(["--image", &format!("{}/acme/app", r.host)])
        .args([
            "--source",
            &format!("{}/src/app@{}", stub.host(), ours.digest),
        ])
        .run()
}

#[test]
fn a_tag_written_by_another_writer_during_the_content_copy_is_not_overwritten() {
    let r = Registry::start(Mode::Plain);
    let (ours, theirs) = (Image::random(), Image::random());
    // Another writer (skopeo) puts the tag while tagguard copies the blobs.
    let stub = source_stub(&ours, other_writer(&theirs, &r, "1.0.0"));
    let run = push_from(
        &stub,
        &ours,
        &r,
        "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n",
    )
    .code(3);
    assert!(
        run.stderr.contains(&format!(
            "another writer changed {}/acme/app:1.0.0 after this push looked it up",
            r.host
        )),
        "{}",
        run.stderr
    );
    let report = run.json();
    assert_eq!(report["written"], serde_json::json!([]));
    assert_eq!(
        report["findings"][0]["code"],
        "tagguard::push::taken_meanwhile"
    );
    // The blobs were copied (the writer ran during the copy), and the tag was left alone.
    assert!(stub.requests().iter().any(|q| q.path().contains("/blobs/")));
    assert_eq!(
        r.digest_of("acme/app", "1.0.0"),
        Some(theirs.digest.clone())
    );
    let tag_writes = r
        .requests_with(&["PUT"])
        .into_iter()
        .filter(|q| q.contains("/manifests/1.0.0"))
        .count();
    assert_eq!(
        tag_writes, 1,
        "only the other writer's write reached the tag"
    );
}

/// A floating tag moved by another writer meanwhile may now hold a newer release: it is left
/// alone, with a warning, and the rest of the push goes on.
#[test]
fn a_floating_tag_moved_during_the_content_copy_is_left_alone() {
    let r = Registry::start(Mode::Plain);
    let (ours, theirs) = (Image::random(), Image::random());
    let old = r.seed(&Image::random(), "acme/app", "latest");
    let stub = source_stub(&ours, other_writer(&theirs, &r, "latest"));
    let policy = "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: latest\n    floating: latest\n";
    let run = push_from(&stub, &ours, &r, policy).success();
    assert!(
        run.stderr.contains("another writer moved it to"),
        "{}",
        run.stderr
    );
    let report = run.json();
    let latest = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["tag"] == "latest")
        .unwrap();
    // The report has the decision as it stands after deciding again.
    assert_eq!(latest["action"], "skip");
    assert_eq!(latest["skip_reason"], "moved_meanwhile");
    assert_eq!(latest["current"], theirs.digest.as_str());
    assert_ne!(old, theirs.digest);
    assert_eq!(
        report["findings"][0]["code"],
        "tagguard::push::moved_meanwhile"
    );
    assert_eq!(
        r.digest_of("acme/app", "latest"),
        Some(theirs.digest.clone())
    );
    assert_eq!(r.digest_of("acme/app", "1.0.0"), Some(ours.digest.clone()));
}
