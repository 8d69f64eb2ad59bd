//! Two pushes of different images to the same immutable tag, started together, many rounds.
//! No registry offers a conditional manifest PUT, so no client can close the window between
//! "the tag is absent" and its write; what tagguard guarantees is checked here every round: the
//! tag ends at a digest one of them wrote, and a process that reads back another digest says so
//! with a non-zero exit. The rounds where both claimed success are counted and printed
//! (`cargo nextest run race --no-capture`); RELIABILITY.md records them.

use std::process::{Command, Stdio};

use crate::support::git::Repo;
use crate::support::registry::{Image, Mode, Registry};

const ROUNDS: usize = 40;

#[test]
fn racing_pushes_end_at_a_written_digest_and_losers_say_so() {
    let r = Registry::start(Mode::Plain);
    let a = r.seed(&Image::random(), "ci/build", "a");
    let b = r.seed(&Image::random(), "ci/build", "b");
    let repo = Repo::new();
    repo.write(
        ".tagguard.yml",
        "version: 1\ntags:\n  - template: \"race-{{ build_id }}\"\n    when: ci\n",
    );
    repo.commit("policy");
    let image = format!("{}/acme/app", r.host);

    let (mut both_succeeded, mut races_reported, mut refused) = (0, 0, 0);
    for round in 0..ROUNDS {
        let spawn = |source: &str| {
            Command::new(env!("CARGO_BIN_EXE_tagguard"))
                .current_dir(repo.path())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .args([
                    "push",
                    "--image",
                    &image,
                    "--source",
                    &format!("{}/ci/build@{source}", r.host),
                ])
                .args(["--build-id", &round.to_string(), "--build-number", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        );
        let final_digest = r
            .digest_of("acme/app", &format!("race-{round}"))
            .expect("the tag exists");
        assert!(
            final_digest == a || final_digest == b,
            "round {round}: the tag holds {final_digest}, which neither wrote"
        );

        let codes = [oa.status.code().unwrap(), ob.status.code().unwrap()];
        for (code, out, mine) in [(codes[0], &oa, &a), (codes[1], &ob, &b)] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            match code {
                0 => {}
                1 => {
                    assert!(
                        stderr.contains("another writer changed tags"),
                        "round {round}: exit 1 without a race report: {stderr}"
                    );
                    races_reported += 1;
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
            // Whoever the registry ended with, a process that wrote the other digest and read it
            // back must have been told before it claimed success, unless both claimed success.
            if code == 0 && &final_digest != mine && codes != [0, 0] {
                panic!("round {round}: a push claimed success but the tag holds the other image");
            }
        }
        if codes == [0, 0] {
            both_succeeded += 1;
        }
    }
    report(&format!(
        "race: {ROUNDS} rounds; both claimed success in {both_succeeded}; a race was reported {races_reported} times; {refused} pushes were refused because the other had already written"
    ));
}

#[allow(
    clippy::print_stderr,
    reason = "the one figure this test exists to report"
)]
fn report(line: &str) {
    eprintln!("{line}");
}
