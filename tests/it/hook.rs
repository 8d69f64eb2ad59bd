//! The pre-push hook with real `git push` to bare remotes: a refused push leaves the remote
//! exactly as it was, an accepted one lands. Also `hook install` and the pre-commit framework.

use std::path::Path;

use crate::support::cmd::tagguard;
use crate::support::git::Repo;
use crate::support::remote::{Remote, try_git};

/// A repository with `main` pushed to a bare remote and the hook installed.
fn guarded() -> (Repo, Remote) {
    let repo = Repo::new();
    let remote = Remote::for_repo(&repo);
    repo.git(&["push", "-q", "origin", "main"]);
    tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    (repo, remote)
}

/// Pushes and asserts the outcome; a refused push must leave the remote's refs unchanged, and
/// must have been refused by tagguard (exit 3 with its refusal line), not by a crash or an error.
pub(super) fn push(repo: &Repo, remote: &Remote, args: &[&str], accepted: bool) -> String {
    let before = remote.refs();
    let mut argv = vec!["push", "origin"];
    argv.extend_from_slice(args);
    let run = try_git(repo.path(), &argv, &[]);
    assert_eq!(run.ok, accepted, "git {argv:?}:\n{}", run.stderr);
    if !accepted {
        assert!(
            run.stderr
                .contains("tagguard: push refused (exit 3): nothing was pushed"),
            "git {argv:?} failed, but not by tagguard's refusal:\n{}",
            run.stderr
        );
        assert_eq!(remote.refs(), before, "a refused push changed the remote");
    }
    run.stderr
}

/// Pushes and asserts it fails for a reason other than tagguard's refusal (a broken policy, a
/// chained hook), leaving the remote unchanged.
fn push_blocked(repo: &Repo, remote: &Remote, args: &[&str]) -> String {
    let before = remote.refs();
    let mut argv = vec!["push", "origin"];
    argv.extend_from_slice(args);
    let run = try_git(repo.path(), &argv, &[]);
    assert!(!run.ok, "git {argv:?} was accepted:\n{}", run.stderr);
    assert!(
        !run.stderr.contains("tagguard: push refused"),
        "git {argv:?}: {}",
        run.stderr
    );
    assert_eq!(remote.refs(), before, "a blocked push changed the remote");
    run.stderr
}

pub(super) fn has_ref(remote: &Remote, name: &str) -> bool {
    remote.refs().lines().any(|l| l.ends_with(name))
}

#[test]
fn a_valid_release_tag_lands() {
    let (repo, remote) = guarded();
    repo.annotated_tag("v1.2.3");
    let err = push(&repo, &remote, &["v1.2.3"], true);
    assert!(has_ref(&remote, "refs/tags/v1.2.3"));
    // The embedded default names no image: no registry was asked, and the hook says so.
    assert!(
        err.contains("tagguard: warning: release tag v1.2.3: the policy (<embedded default>) names no image, so no registry was asked"),
        "{err}"
    );
}

#[test]
fn invalid_semver_is_refused_with_a_hint() {
    let (repo, remote) = guarded();
    repo.tag("v1.2").tag("v01.2.3");
    let err = push(&repo, &remote, &["--tags"], false);
    assert!(
        err.contains("tagguard: refused: release tag v1.2 is not valid SemVer 2.0: \"1.2\" has 2 of the 3 numbers MAJOR.MINOR.PATCH"),
        "{err}"
    );
    assert!(
        err.contains("release tag v01.2.3 is not valid SemVer 2.0"),
        "{err}"
    );
    assert!(
        err.contains("hint: a release version is MAJOR.MINOR.PATCH"),
        "{err}"
    );
    assert!(err.contains("git tag -d v1.2"), "{err}");
}

#[test]
fn moving_a_published_release_tag_is_refused_even_forced() {
    let (repo, remote) = guarded();
    repo.tag("v1.0.0");
    push(&repo, &remote, &["v1.0.0"], true);
    repo.commit("a fix after the release");
    repo.git(&["tag", "-f", "v1.0.0"]);
    let err = push(&repo, &remote, &["--force", "v1.0.0"], false);
    assert!(
        err.contains("release tag v1.0.0 would move on the remote"),
        "{err}"
    );
}

#[test]
fn deleting_a_published_release_tag_is_refused() {
    let (repo, remote) = guarded();
    repo.tag("v1.0.0");
    push(&repo, &remote, &["v1.0.0"], true);
    let err = push(&repo, &remote, &[":refs/tags/v1.0.0"], false);
    assert!(err.contains("release tag v1.0.0 would be deleted"), "{err}");
    let err = push(&repo, &remote, &["--delete", "v1.0.0"], false);
    assert!(err.contains("would be deleted"), "{err}");
}

#[test]
fn one_bad_tag_stops_the_whole_push() {
    let (repo, remote) = guarded();
    repo.commit("new work");
    repo.tag("v2.0");
    push(&repo, &remote, &["main", "v2.0"], false);
}

#[test]
fn other_tags_and_branches_pass_untouched() {
    let (repo, remote) = guarded();
    repo.tag("nightly");
    push(&repo, &remote, &["nightly"], true);
    repo.commit("more");
    repo.git(&["tag", "-f", "nightly"]);
    push(&repo, &remote, &["--force", "nightly"], true);
    push(&repo, &remote, &["main"], true);
    push(&repo, &remote, &["--delete", "nightly"], true);
    assert!(!has_ref(&remote, "refs/tags/nightly"));
}

#[test]
fn branch_pushes_do_not_read_the_policy() {
    let (repo, remote) = guarded();
    repo.write(".tagguard.yml", "version: 1\ntags: [\n");
    repo.commit("a broken policy");
    push(&repo, &remote, &["main"], true);
    // A tag push does read it, and a broken policy stops it.
    repo.tag("v1.0.0");
    let err = push_blocked(&repo, &remote, &["v1.0.0"]);
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn the_policy_release_pattern_decides_what_a_release_tag_is() {
    let (repo, remote) = guarded();
    repo.write(
        ".tagguard.yml",
        "version: 1\nrelease:\n  git-tag: \"api/v{version}\"\ntags: [{ template: \"{{ version }}\", when: release }]\n",
    );
    repo.commit("monorepo policy");
    repo.tag("v1.2").tag("api/v1.2");
    push(&repo, &remote, &["v1.2"], true);
    let err = push(&repo, &remote, &["api/v1.2"], false);
    assert!(
        err.contains("release tag api/v1.2 is not valid SemVer"),
        "{err}"
    );
}

#[test]
fn the_hook_reads_stdin_as_githooks_describes() {
    let repo = Repo::new();
    let head = repo.head();
    let zero = "0".repeat(40);
    tagguard(repo.path())
        .args(["hook", "pre-push", "origin", "/x.git"])
        .stdin(format!("refs/tags/v1.2 {head} refs/tags/v1.2 {zero}\n"))
        .run()
        .code(3);
    tagguard(repo.path())
        .args(["hook", "pre-push", "origin", "/x.git"])
        .stdin(format!("refs/heads/main {head} refs/heads/main {zero}\n"))
        .run()
        .success();
    let run = tagguard(repo.path())
        .args(["hook", "pre-push", "origin", "/x.git"])
        .stdin("garbage\n")
        .run()
        .code(1);
    assert!(run.err_text().contains("has 1 fields"), "{}", run.stderr);
}

fn hooks_dir(repo: &Repo) -> std::path::PathBuf {
    repo.path().join(".git/hooks")
}

#[test]
fn install_says_when_the_policy_names_no_image_to_check() {
    let repo = Repo::new();
    let run = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    assert!(
        run.stderr.contains(
            "the policy (<embedded default>) names no image, so the hook can check no registry"
        ),
        "{}",
        run.stderr
    );
    repo.write(
        ".tagguard.yml",
        "version: 1\nimage: r.example/app\ntags:\n  - \"sha-{{ short_sha }}\"\n",
    );
    let run = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    assert!(!run.stderr.contains("names no image"), "{}", run.stderr);
}

#[test]
fn install_never_clobbers_a_foreign_hook() {
    let repo = Repo::new();
    let hook = hooks_dir(&repo).join("pre-push");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let run = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .code(1);
    assert!(
        run.err_text()
            .contains("was not written by tagguard; it is left as it is"),
        "{}",
        run.stderr
    );
    assert!(run.err_text().contains("--chain"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
}

#[test]
fn install_again_updates_our_own_hook() {
    let repo = Repo::new();
    let first = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    assert!(first.stdout.starts_with("installed "), "{}", first.stdout);
    let again = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    assert!(again.stdout.starts_with("updated "), "{}", again.stdout);
}

#[test]
fn chain_keeps_the_old_hook_and_runs_it_first_with_the_same_input() {
    let repo = Repo::new();
    let remote = Remote::for_repo(&repo);
    let hooks = hooks_dir(&repo);
    std::fs::create_dir_all(&hooks).unwrap();
    let seen = repo.path().join("old-hook-saw");
    let old = format!(
        "#!/bin/sh\necho \"$1\" > '{0}'\ncat >> '{0}'\ngrep -q refs/tags/blocked '{0}' && exit 7\nexit 0\n",
        seen.display()
    );
    std::fs::write(hooks.join("pre-push"), &old).unwrap();
    make_executable(&hooks.join("pre-push"));
    let run = tagguard(repo.path())
        .args(["hook", "install", "--chain"])
        .run()
        .success();
    assert!(
        run.stdout.contains("pre-push.tagguard-chained"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-push.tagguard-chained")).unwrap(),
        old
    );

    // Both run: the old hook sees git's arguments and stdin, then tagguard refuses.
    repo.tag("v1.2");
    push(&repo, &remote, &["v1.2"], false);
    let saw = std::fs::read_to_string(&seen).unwrap();
    assert!(saw.starts_with("origin\nrefs/tags/v1.2 "), "{saw}");
    // The old hook's refusal counts too.
    repo.tag("blocked");
    push_blocked(&repo, &remote, &["blocked"]);
    repo.tag("v1.0.0");
    push(&repo, &remote, &["v1.0.0", "main"], true);

    // A second --chain has nowhere to keep a hook: ours is already there, so it just updates.
    tagguard(repo.path())
        .args(["hook", "install", "--chain"])
        .run()
        .success();
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn install_respects_core_hooks_path() {
    let (repo, remote) = {
        let repo = Repo::new();
        let remote = Remote::for_repo(&repo);
        (repo, remote)
    };
    repo.git(&["config", "core.hooksPath", "githooks"]);
    let run = tagguard(repo.path())
        .args(["hook", "install"])
        .run()
        .success();
    assert!(
        repo.path().join("githooks/pre-push").exists(),
        "{}",
        run.stdout
    );
    assert!(!hooks_dir(&repo).join("pre-push").exists());
    repo.tag("v3");
    push(&repo, &remote, &["v3"], false);
}

/// The real pre-commit framework (from PyPI), installed as the repository's pre-push hook,
/// runs `tagguard hook pre-push` from `.pre-commit-hooks.yaml`'s entry on a real push.
#[test]
fn through_the_pre_commit_framework() {
    let repo = Repo::new();
    let remote = Remote::for_repo(&repo);
    let hooks = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    // Use this repository's hook definition, with the binary under test in place of the one
    // on PATH (`language: system`).
    let entry = hooks
        .lines()
        .find_map(|l| l.trim().strip_prefix("entry: "))
        .expect("an entry in .pre-commit-hooks.yaml");
    assert_eq!(entry, "tagguard hook pre-push");
    let exe = env!("CARGO_BIN_EXE_tagguard");
    let config = format!(
        "repos:\n  - repo: local\n    hooks:\n      - id: tagguard-pre-push\n        name: tagguard pre-push\n        entry: {exe} hook pre-push\n        language: system\n        stages: [pre-push]\n        pass_filenames: false\n        always_run: true\n"
    );
    repo.write(".pre-commit-config.yaml", &config);
    repo.commit("pre-commit config");
    let cache = tempfile::tempdir().unwrap();
    let env = [("PRE_COMMIT_HOME", cache.path().to_str().unwrap())];
    let out = std::process::Command::new("pre-commit")
        .args(["install", "--hook-type", "pre-push"])
        .current_dir(repo.path())
        .env("PRE_COMMIT_HOME", cache.path())
        .output()
        .expect("pre-commit is installed (pip install pre-commit)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    repo.commit("release candidate");
    repo.tag("v1.2");
    let before = remote.refs();
    let run = try_git(repo.path(), &["push", "origin", "v1.2"], &env);
    assert!(!run.ok, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("release tag v1.2 is not valid SemVer 2.0"),
        "{}",
        run.stderr
    );
    assert_eq!(remote.refs(), before);

    repo.git(&["tag", "-d", "v1.2"]);
    repo.tag("v1.2.0");
    let run = try_git(repo.path(), &["push", "origin", "main", "v1.2.0"], &env);
    assert!(run.ok, "{}", run.stderr);
    assert!(has_ref(&remote, "refs/tags/v1.2.0"));
}

#[test]
fn help_texts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        vec!["hook", "--help"],
        vec!["hook", "pre-push", "--help"],
        vec!["hook", "install", "--help"],
    ] {
        let run = tagguard(root).args(&args).run().success();
        insta::assert_snapshot!(format!("help-{}", args.join("-")), run.stdout);
    }
}

mod registry {
    //! The registry lookup, judged as CI's push judges it: a release whose immutable image tag
    //! exists for another commit, or for a commit nothing names, is refused; one tagguard
    //! pushed from this commit passes (its record is evidence, as for `keep-same-revision`);
    //! an unreachable registry warns, or refuses under `registry: strict`.

    use super::{has_ref, push};
    use crate::support::cmd::tagguard;
    use crate::support::git::{Repo, project};
    use crate::support::labeled_image::built_from;
    use crate::support::registry::{Mode, Registry};
    use crate::support::remote::Remote;

    /// A guarded repository whose policy names `image`, with `mode` for the registry check.
    fn guarded(image: &str, mode: &str) -> (Repo, Remote) {
        let repo = project(&format!(
            "version: 1\nimage: {image}\nhooks:\n  pre-push:\n    registry: {mode}\ntags:\n  - template: \"{{{{ version }}}}\"\n    when: release\n    on-conflict: keep-same-revision\n  - \"sha-{{{{ short_sha }}}}\"\n"
        ));
        let remote = Remote::for_repo(&repo);
        repo.git(&["push", "-q", "origin", "main"]);
        tagguard(repo.path())
            .args(["hook", "install"])
            .run()
            .success();
        (repo, remote)
    }

    #[test]
    fn a_version_already_built_from_another_commit_is_refused() {
        let r = Registry::start(Mode::Plain);
        let (repo, remote) = guarded(&format!("{}/acme/app", r.host), "warn");
        let old = repo.head();
        r.seed(&built_from(Some(&old)), "acme/app", "1.0.0");
        repo.commit("new work");
        repo.annotated_tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], false);
        assert!(
            err.contains(&format!(
                "release tag v1.0.0: image {}/acme/app:1.0.0 already exists, built from commit {}, not {}",
                r.host,
                &old[..12],
                &repo.head()[..12]
            )),
            "{err}"
        );
        assert!(err.contains("release a new version instead"), "{err}");
    }

    #[test]
    fn a_version_built_from_the_same_commit_passes() {
        let r = Registry::start(Mode::Plain);
        let (repo, remote) = guarded(&format!("{}/acme/app", r.host), "strict");
        // Images are often built before the tag is pushed.
        r.seed(&built_from(Some(&repo.head())), "acme/app", "1.0.0");
        repo.annotated_tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], true);
        assert!(!err.contains("tagguard"), "{err}");
        assert!(has_ref(&remote, "refs/tags/v1.0.0"));
        // A new version is absent from the registry and passes too.
        repo.commit("next");
        repo.tag("v1.0.1");
        push(&repo, &remote, &["v1.0.1"], true);
    }

    #[test]
    fn an_image_nothing_names_the_commit_of_is_refused_as_ci_refuses_it() {
        for mode in ["warn", "strict"] {
            let r = Registry::start(Mode::Plain);
            let (repo, remote) = guarded(&format!("{}/acme/app", r.host), mode);
            r.seed(&built_from(None), "acme/app", "1.0.0");
            repo.tag("v1.0.0");
            let err = push(&repo, &remote, &["v1.0.0"], false);
            assert!(
                err.contains("tagguard: refused: release tag v1.0.0: image")
                    && err.contains(
                        "no org.opencontainers.image.revision label and no record of tagguard's"
                    ),
                "{mode}: {err}"
            );
        }
    }

    /// A guarded repository whose commit CI built and pushed with tagguard (no labels) as
    /// release `v1.0.0`, before the git tag was pushed.
    fn released_by_tagguard(r: &Registry) -> (Repo, Remote) {
        let image = format!("{}/acme/app", r.host);
        let (repo, remote) = guarded(&image, "strict");
        let build = r.seed(&built_from(None), "ci/build", "1");
        tagguard(repo.path())
            .args(["push", "--image", &image, "--git-tag", "v1.0.0"])
            .args(["--source", &format!("{}/ci/build@{build}", r.host)])
            .run()
            .success();
        (repo, remote)
    }

    #[test]
    fn an_unlabelled_image_tagguard_pushed_from_this_commit_passes() {
        let r = Registry::start(Mode::Plain);
        let (repo, remote) = released_by_tagguard(&r);
        repo.tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], true);
        assert!(!err.contains("tagguard"), "{err}");
    }

    #[test]
    fn the_same_version_from_another_commit_is_refused_on_tagguards_record() {
        let r = Registry::start(Mode::Plain);
        let (repo, remote) = released_by_tagguard(&r);
        repo.commit("next");
        repo.tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], false);
        assert!(err.contains("tagguard's record of its push"), "{err}");
    }

    /// A loopback port with nothing listening.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn an_unreachable_registry_warns_or_refuses_when_strict() {
        let image = format!("127.0.0.1:{}/acme/app", closed_port());
        let (repo, remote) = guarded(&image, "warn");
        repo.tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], true);
        assert!(
            err.contains(&format!(
                "tagguard: warning: release tag v1.0.0: could not ask the registry about {image}:1.0.0"
            )),
            "{err}"
        );
        assert!(
            !err.contains("hint:"),
            "a warning needs no way around it: {err}"
        );

        let (repo, remote) = guarded(&image, "strict");
        repo.tag("v1.0.0");
        let err = push(&repo, &remote, &["v1.0.0"], false);
        assert!(
            err.contains("tagguard: refused: release tag v1.0.0: could not ask the registry"),
            "{err}"
        );
        assert!(
            err.contains("set `registry: warn` to let pushes go on"),
            "{err}"
        );
    }

    #[test]
    fn registry_off_asks_nothing() {
        let r = Registry::start(Mode::Plain);
        let (repo, remote) = guarded(&format!("{}/acme/app", r.host), "off");
        r.seed(&built_from(Some("0123456789abcdef")), "acme/app", "1.0.0");
        let seeded = r.request_count();
        repo.tag("v1.0.0");
        push(&repo, &remote, &["v1.0.0"], true);
        assert_eq!(r.request_count(), seeded, "{:?}", r.requests());
    }
}
