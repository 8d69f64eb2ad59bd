//! CI re-runs with the embedded default policy: a fresh build of a commit whose earlier build
//! already holds the commit's immutable tags keeps that build (`on-conflict:
//! keep-same-revision`), exits 0, and overwrites nothing; the image's other tags follow the
//! kept build, never the new one. A release of a commit CI already built adopts that build,
//! its records say so, and the audit accepts it.

use crate::support::cmd::{self, Run, tagguard};
use crate::support::git::Repo;
use crate::support::labeled_image::built_from;
use crate::support::registry::{Image, Mode, Registry};
use serde_json::json;

/// A checkout with no policy (the embedded default), HEAD tagged `v1.2.3` and detached, as a
/// CI checks a tag out.
fn release_checkout() -> (Repo, String) {
    let repo = Repo::new();
    repo.write("app.txt", "app\n");
    let sha = repo.commit("app");
    repo.tag("v1.2.3").detach();
    (repo, sha)
}

/// `push` as the GitHub tag build of run 77 would, at `time`.
fn push(repo: &Repo, r: &Registry, source: &str, time: &str) -> Run {
    cmd::push(repo, &format!("{}/acme/app", r.host), source)
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_RUN_ID", "77"),
            ("GITHUB_RUN_NUMBER", "5"),
        ])
        .args(["--timestamp", time, "--format", "json"])
        .run()
}

#[test]
fn a_second_attempt_with_a_fresh_build_keeps_the_first_and_exits_0() {
    let r = Registry::start(Mode::Plain);
    let (repo, sha) = release_checkout();
    let short = &sha[..7];
    let first = r.seed(&built_from(Some(&sha)), "ci/build", "attempt-1");
    let second = r.seed(&built_from(Some(&sha)), "ci/build", "attempt-2");
    assert_ne!(
        first, second,
        "two builds of one commit differ (not reproducible)"
    );

    push(
        &repo,
        &r,
        &format!("{}/ci/build@{first}", r.host),
        "1700000000",
    )
    .success();
    let again = push(
        &repo,
        &r,
        &format!("{}/ci/build@{second}", r.host),
        "1700000600",
    );
    let again = again.success();
    let actions = again.decisions("action");
    for kept in ["1.2.3", &format!("sha-{short}")] {
        assert!(
            actions.contains(&(kept.to_owned(), "keep".to_owned())),
            "{kept}: {actions:?}"
        );
    }
    for tag in ["1.2", "1", "latest"] {
        assert!(
            actions.contains(&(tag.to_owned(), "unchanged".to_owned())),
            "{tag}: {actions:?}"
        );
    }
    // Every tag, the second attempt's new build tag included, holds the first build.
    for tag in [
        "1.2.3",
        "1.2",
        "1",
        "latest",
        &format!("sha-{short}"),
        "20231114221320-77",
        "20231114222320-77",
    ] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(first.as_str()),
            "{tag}"
        );
    }
    assert_eq!(again.json()["status"], "ok");
}

#[test]
fn tags_a_failed_first_attempt_left_unwritten_follow_the_build_it_did_write() {
    let r = Registry::start(Mode::Plain);
    let (repo, sha) = release_checkout();
    // The first attempt wrote only the commit tag before it failed.
    let first = r.seed(
        &built_from(Some(&sha)),
        "acme/app",
        &format!("sha-{}", &sha[..7]),
    );
    let second = r.seed(&built_from(Some(&sha)), "ci/build", "attempt-2");
    push(
        &repo,
        &r,
        &format!("{}/ci/build@{second}", r.host),
        "1700000600",
    )
    .success();
    for tag in ["1.2.3", "1.2", "1", "latest"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(first.as_str()),
            "{tag} follows the kept build, not the new one"
        );
    }
}

#[test]
fn another_commits_image_or_an_unlabelled_one_is_still_refused() {
    let r = Registry::start(Mode::Plain);
    let (repo, sha) = release_checkout();
    let ours = r.seed(&built_from(Some(&sha)), "ci/build", "ours");
    let source = format!("{}/ci/build@{ours}", r.host);
    for (label, says) in [
        (Some("fedcba9876543210fedcba9876543210fedcba98"), "fedcba98"),
        (None, "no org.opencontainers.image.revision label"),
    ] {
        let theirs = r.seed(&built_from(label), "acme/app", "1.2.3");
        let run = push(&repo, &r, &source, "1700000000").code(3);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(
            run.stderr.contains("rule 1 (<embedded default>:9)"),
            "{}",
            run.stderr
        );
        assert_eq!(r.digest_of("acme/app", "1.2.3"), Some(theirs));
        assert_eq!(
            r.digest_of("acme/app", "latest"),
            None,
            "nothing else was written"
        );
    }
}

/// The fallback index of `digest` in `acme/app` (this registry has no referrers API): the
/// records tagguard left beside the image.
fn records_of(r: &Registry, digest: &str) -> serde_json::Value {
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "10", "-H"])
        .arg("Accept: application/vnd.oci.image.index.v1+json")
        .arg(format!("http://{}/v2/acme/app/manifests/{tag}", r.host))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_release_of_a_built_commit_adopts_the_build_says_so_and_audits_clean() {
    let r = Registry::start(Mode::Plain);
    let repo = Repo::new();
    repo.write("app.txt", "app\n");
    let sha = repo.commit("app");
    repo.detach();
    let image = format!("{}/acme/app", r.host);
    let labelled = |version: &str| {
        Image::with_labels(json!({
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": sha,
        }))
    };
    // The branch build, labelled as `tags --format json` labels it: version sha-<commit>.
    let short = format!("sha-{}", &sha[..7]);
    let branch = r.seed(&labelled(&short), "ci/build", "1");
    tagguard(repo.path())
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_RUN_ID", "76"),
            ("GITHUB_RUN_NUMBER", "4"),
        ])
        .args(["push", "--image", &image, "--timestamp", "1700000000"])
        .args(["--source", &format!("{}/ci/build@{branch}", r.host)])
        .run()
        .success();
    // The release tag on the same commit, with its own build (version 1.2.3): the branch
    // build is kept and promoted.
    repo.tag("v1.2.3");
    let release = r.seed(&labelled("1.2.3"), "ci/build", "2");
    let run = push(
        &repo,
        &r,
        &format!("{}/ci/build@{release}", r.host),
        "1700000600",
    )
    .success();
    assert!(
        run.decisions("action")
            .contains(&(short.clone(), "keep".to_owned())),
        "{:?}",
        run.decisions("action")
    );
    for tag in ["1.2.3", "1.2", "1", "latest"] {
        assert_eq!(r.digest_of("acme/app", tag), Some(branch.clone()), "{tag}");
    }
    // The records say which push adopted the build, and which one built it.
    let index = records_of(&r, &branch);
    let adopted: Vec<(&str, Option<&str>)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["io.tagguard.record.tags"]
                    .as_str()
                    .unwrap(),
                m["annotations"]["io.tagguard.record.adopted"].as_str(),
            )
        })
        .collect();
    assert!(
        adopted.contains(&(&format!("{short},20231114221320-76"), None))
            && adopted
                .iter()
                .any(|(tags, a)| tags.starts_with("1.2.3,") && *a == Some("true")),
        "{adopted:?}"
    );
    // The audit accepts the branch build's label under the release's tags.
    let audit = tagguard(repo.path())
        .args(["audit", "--image", &image, "--format", "json"])
        .run()
        .success();
    assert_eq!(audit.json()["findings"], json!([]), "{}", audit.stdout);
}
