//! Every wait has one bound: a credential helper that never answers costs its deadline once per
//! registry and run, whatever asks for the registry's client (the source and the lookups).

use std::time::{Duration, Instant};

use crate::support::cmd::tagguard;
use crate::support::git::project;
use crate::support::registry::{Image, Mode, Registry};

/// The documented bound of a credential helper (RELIABILITY.md).
const HELPER_DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn a_hung_credential_helper_is_started_once_and_check_and_push_end_within_its_bound() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build");
    let repo = project("version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n");
    let runs: Vec<_> = ["check", "push"]
        .into_iter()
        .map(|command| {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let starts = dir.path().join("starts");
            let helper = bin.join("docker-credential-hang");
            std::fs::write(
                &helper,
                format!(
                    "#!/bin/sh\necho start >> '{}'\nexec sleep 1000\n",
                    starts.display()
                ),
            )
            .unwrap();
            let mut perms = std::fs::metadata(&helper).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&helper, perms).unwrap();
            std::fs::write(
                dir.path().join("config.json"),
                format!(r#"{{"credHelpers":{{"{}":"hang"}}}}"#, r.host),
            )
            .unwrap();
            let path = format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let (repo_dir, image, source) = (
                repo.path().to_owned(),
                format!("{}/acme/app", r.host),
                format!("{}/acme/app@{built}", r.host),
            );
            let thread = std::thread::spawn(move || {
                let start = Instant::now();
                let run = tagguard(&repo_dir)
                    .args([command, "--image", &image, "--source", &source])
                    .args(["--git-tag", "v1.0.0"])
                    .env("DOCKER_CONFIG", dir.path())
                    .env("PATH", &path)
                    .run();
                let count = std::fs::read_to_string(&starts).unwrap_or_default();
                (run, start.elapsed(), count.lines().count())
            });
            (command, thread)
        })
        .collect();
    for (command, thread) in runs {
        let (run, took, starts) = thread.join().unwrap();
        let run = run.code(1);
        assert_eq!(
            starts, 1,
            "{command}: the helper was started {starts} times"
        );
        assert!(
            run.stderr.contains("docker-credential-hang") && run.stderr.contains("gave no answer"),
            "{command}: {}",
            run.stderr
        );
        // The bound is the promise: one deadline, not two, with room for the rest of the run.
        assert!(took < HELPER_DEADLINE * 2, "{command} took {took:?}");
    }
}
