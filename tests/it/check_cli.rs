//! `tagguard check` end to end: a real git repository, a real registry, the real binary.

use crate::support::cmd::tagguard;
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

const STAMP: &str = "--timestamp=20240102030405";

#[test]
fn check_renders_decisions_and_exits_3_on_refusal() {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.tag("v1.4.2");
    let (built, other) = (Image::random(), Image::random());
    let source = r.seed(&built, "ci/build", "b1");
    r.seed(&built, "acme/app", "1.4.2");
    r.seed(&other, "acme/app", "latest");
    let image = format!("--image={}/acme/app", r.host);
    let src = format!("--source={}/ci/build:b1", r.host);

    // Same image already at the release tag: nothing refused.
    let run = tagguard(repo.path())
        .args([
            "check",
            STAMP,
            &image,
            &src,
            "--format=json",
            "--username",
            USER,
            "--password-stdin",
        ])
        .stdin(format!("{PASSWORD}\n"))
        .run()
        .success();
    let v: serde_json::Value = run.json();
    let actions = run.decisions("action");
    assert!(
        actions.contains(&("1.4.2".into(), "unchanged".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("latest".into(), "move".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("1.4".into(), "create".into())),
        "{actions:?}"
    );
    assert_eq!(v["decisions"][0]["desired"], source);

    // Another image under the immutable release tag: refused, exit 3, GitHub outputs written.
    let out = r.dir.path().join("github-output");
    let summary = r.dir.path().join("summary.md");
    let src_other = format!("--source={}/acme/app:latest", r.host);
    let run = tagguard(repo.path())
        .args(["check", STAMP, &image, &src_other, "--format=github"])
        .env("TAGGUARD_USERNAME", USER)
        .env("TAGGUARD_PASSWORD", PASSWORD)
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run()
        .code(3);
    let stdout = &run.stdout;
    assert!(
        stdout.contains(&format!(
            "::error title=tagguard refused {}/acme/app:1.4.2::",
            r.host
        )),
        "{stdout}"
    );
    assert!(
        run.stderr
            .contains("refused: refusing to move immutable tag"),
        "{}",
        run.stderr
    );
    let outputs = std::fs::read_to_string(&out).unwrap();
    assert!(
        outputs.contains("refused<<") && outputs.contains("\ntrue\n"),
        "{outputs}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| **refuse** |"), "{md}");
    // The reason of the refusal, not only the word.
    assert!(md.contains("refusing to move immutable tag"), "{md}");
    assert!(!stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));

    // gitlab dotenv, and an unreachable registry is an error (exit 1), not a refusal.
    let run = tagguard(repo.path())
        .args(["check", STAMP, &image, &src, "--format=gitlab"])
        .env("TAGGUARD_USERNAME", USER)
        .env("TAGGUARD_PASSWORD", PASSWORD)
        .run()
        .success();
    assert!(
        run.stdout.contains("TAGGUARD_REFUSED=false"),
        "{}",
        run.stdout
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    tagguard(repo.path())
        .args([
            "check",
            STAMP,
            &format!("--image=127.0.0.1:{port}/acme/app"),
        ])
        .run()
        .code(1);
}

#[test]
fn check_help_is_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    let run = tagguard(dir.path())
        .args(["check", "--help"])
        .run()
        .success();
    insta::assert_snapshot!("help-check---help", run.stdout);
}

#[test]
fn format_github_without_github_output_fails_before_any_output() {
    let repo = Repo::new();
    for command in ["tags", "check", "push"] {
        let mut args = vec![command, "--image=127.0.0.1:9/acme/app", "--format=github"];
        if command == "push" {
            args.push("--source=127.0.0.1:9/ci/build:1");
        }
        let run = tagguard(repo.path()).args(&args).run().code(1);
        assert_eq!(run.stdout, "", "{command}");
        assert!(
            run.err_text().contains("$GITHUB_OUTPUT, which is not set"),
            "{command}: {}",
            run.stderr
        );
    }
}

#[test]
fn zero_computed_tags_are_said_plainly_and_check_prints_no_table() {
    let repo = project("version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n");
    let run = tagguard(repo.path())
        .args(["check", STAMP, "--image=127.0.0.1:9/acme/app"])
        .run()
        .success();
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("the policy computed no tags for this build"),
        "{}",
        run.stderr
    );
    let run = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert!(
        run.stderr
            .contains("the policy computed no tags for this build"),
        "{}",
        run.stderr
    );
}

/// The embedded default names no image: check and push say which flag or variable does.
#[test]
fn without_images_check_and_push_name_the_flag_and_variable() {
    let repo = Repo::new();
    for command in ["check", "push"] {
        let run = tagguard(repo.path())
            .args([command, "--source", "127.0.0.1:9/ci/build:42"])
            .run()
            .code(1);
        let err = run.err_text();
        assert!(
            err.contains(&format!(
                "{command} needs the images to tag, and policy <embedded default> names none"
            )) && err.contains("--image")
                && err.contains("TAGGUARD_IMAGES"),
            "{err}"
        );
    }
}

/// Each `check`/`push` line of the README's "Check and push" names its images, so that it runs
/// as written with the embedded default.
#[test]
fn the_readmes_check_and_push_examples_name_their_images() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Check and push")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a Check and push section");
    let lines: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("tagguard check") || l.starts_with("tagguard push"))
        .collect();
    assert!(lines.len() >= 2, "{section}");
    for line in lines {
        assert!(line.contains("--image "), "{line}");
    }
}

/// A registry whose certificate no trusted CA signed: one error that names the host, says it is
/// a certificate problem and what to pass, and no third-party log lines at the default level.
#[test]
fn a_tls_failure_is_one_error_that_names_the_host_and_the_fix() {
    let r = Registry::start(Mode::Tls);
    let repo = Repo::new();
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::support::token_server::other_ca(other.path());
    let image = format!("--image={}/acme/app", r.host);
    let ca = format!("--ca-file={}", other_ca.display());
    let run = tagguard(repo.path())
        .args(["check", STAMP, &image, &ca])
        .run()
        .code(1);
    assert!(
        !run.stderr.contains("rustls") && !run.stderr.contains("[ERROR"),
        "{}",
        run.stderr
    );
    let err = run.err_text();
    assert!(
        err.contains(&format!("registry {}: ", r.host))
            && err.contains(
                "TLS failed: the registry's certificate is signed by a CA that is not trusted here"
            )
            && err.contains("pass the registry's CA certificate with --ca-file FILE"),
        "{err}"
    );
    // RUST_LOG still shows the verifier's own lines to whoever asks.
    let run = tagguard(repo.path())
        .args(["check", STAMP, &image, &ca])
        .env("RUST_LOG", "rustls_platform_verifier=error")
        .run()
        .code(1);
    assert!(
        run.stderr.contains("[ERROR rustls_platform_verifier"),
        "{}",
        run.stderr
    );
}
