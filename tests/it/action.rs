//! The GitHub Action (`action.yml`) run by a real runner, act, in a temp repository with a
//! release tag: installed from a release (the default) or built from its own source
//! (`version: source`), outputs checked. How a release is installed and verified: `install`;
//! the release workflow that makes those releases: `release`.

mod docs;
mod install;
mod release;

use crate::support::act::Act;
use crate::support::registry::{Image, Mode, Registry};

const IMAGE: &str = "registry.example/acme/app";

#[test]
fn builds_from_source_and_outputs_tags_version_labels_and_json() {
    let act = Act::new("release.yml")
        .env("TEST_IMAGES", IMAGE)
        .reuse_dependencies();
    // A lightweight tag at HEAD: act then runs the push as a tag build (GITHUB_REF=refs/tags/v1.4.2),
    // the one kind of build that is a release.
    act.repo.tag("v1.4.2");
    let run = act.run().success();
    let head = act.repo.head();
    let short = &head[..7];

    // Built from the action's source, once: the second use in the job reuses the binary.
    assert!(run.log.contains("Compiling tagguard v"), "{}", run.log);
    assert_eq!(
        run.log.matches("Compiling tagguard v").count(),
        1,
        "{}",
        run.log
    );
    assert!(run.log.contains("is installed at"), "{}", run.log);

    assert_eq!(
        act.output("tags"),
        format!(
            "{IMAGE}:1.4.2\n{IMAGE}:1.4\n{IMAGE}:1\n{IMAGE}:latest\n{IMAGE}:sha-{short}\n{IMAGE}:20240102030405-1"
        )
    );
    assert_eq!(act.output("version"), "1.4.2");
    let labels = act.output("labels");
    assert!(
        labels
            .lines()
            .any(|l| l == format!("org.opencontainers.image.revision={head}")),
        "{labels}"
    );
    assert!(
        labels
            .lines()
            .any(|l| l == "org.opencontainers.image.version=1.4.2"),
        "{labels}"
    );
    let json: serde_json::Value = serde_json::from_str(&act.output("json")).unwrap();
    assert_eq!(json["release_tag"], "v1.4.2");
    assert_eq!(json["tags"][0]["ref"], format!("{IMAGE}:1.4.2"));
    assert_eq!(act.output("tagguard-version"), env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_tagguard_of_the_right_version_on_path_is_used_without_building() {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagguard"), bin.path().join("tagguard"))
        .unwrap();
    let act = Act::new("release.yml")
        .env("TEST_IMAGES", IMAGE)
        .path_first(bin.path());
    let run = act.run().success();
    assert!(
        run.log.contains("is on PATH already: not installing"),
        "{}",
        run.log
    );
    assert!(!run.log.contains("Compiling"), "{}", run.log);
    // An untagged commit: no release, just the commit's tag.
    let head = act.repo.head();
    assert!(
        act.output("tags")
            .starts_with(&format!("{IMAGE}:sha-{}", &head[..7])),
        "{}",
        act.output("tags")
    );
    assert_eq!(act.output("version"), "");
}

/// `command: check`, then `push`, against a registry on loopback: a Markdown table of
/// decisions in the step summary, the decisions and what was written as outputs, and a refusal
/// fails the job and writes nothing.
#[test]
fn check_and_push_summarize_decisions_and_a_refusal_fails_the_job() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "ci/build", "b1");
    let other = r.seed(&Image::random(), "ci/build", "b2");
    let image = format!("{}/acme/app", r.host);
    let mut act = Act::new("check.yml")
        .env("TEST_COMMAND", "check")
        .env("TEST_IMAGES", &image)
        .env("TEST_SOURCE", &format!("{}/ci/build:b1", r.host))
        .env("TEST_ARGS", "--timestamp 20240102030405")
        .reuse_dependencies();
    // A lightweight tag at HEAD: act then runs the push as a tag build (GITHUB_REF=refs/tags/v1.4.2),
    // the one kind of build that is a release.
    act.repo.tag("v1.4.2");

    let run = act.run().success();
    assert!(run.log.contains("Compiling tagguard v"), "{}", run.log);
    assert_eq!(act.output("outcome"), "success");
    assert_eq!(act.output("refused"), "false");
    let decisions: serde_json::Value = serde_json::from_str(&act.output("decisions")).unwrap();
    assert_eq!(decisions["decisions"][0]["tag"], "1.4.2");
    assert_eq!(decisions["decisions"][0]["action"], "create");
    assert!(act.output("tags").starts_with(&format!("{image}:1.4.2\n")));
    let summary = run.summary();
    assert!(
        summary.contains("| Tag | Action | Current | Desired |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| `{image}:1.4.2` | create |")),
        "{summary}"
    );
    assert_eq!(digest_at(&r, "acme/app:1.4.2"), None, "check wrote");

    // push writes what check decided; the second run reuses the installed binary.
    act.set_env("TEST_COMMAND", "push");
    let run = act.run().success();
    assert!(!run.log.contains("Compiling tagguard"), "{}", run.log);
    assert!(
        act.output("written")
            .lines()
            .any(|l| l == format!("{image}:1.4.2")),
        "{}",
        act.output("written")
    );
    assert_eq!(
        digest_at(&r, "acme/app:1.4.2").as_deref(),
        Some(built.as_str())
    );

    // The release tag moved to another commit, with another build: the immutable 1.4.2 holds
    // the first commit's build (tagguard's record of its push says so), so it is refused, the
    // job fails and the registry is as it was. (Another build of the same commit would be
    // kept: see tests/it/rerun.rs.)
    act.repo.commit("another commit");
    act.repo.git(&["tag", "-f", "v1.4.2"]);
    act.set_env("TEST_SOURCE", &format!("{}/ci/build:b2", r.host));
    let run = act.run().failure();
    assert!(run.log.contains("exit status 3"), "{}", run.log);
    assert!(
        run.log
            .contains(&format!("::error title=tagguard refused {image}:1.4.2::"))
            || run.log.contains(&format!("tagguard refused {image}:1.4.2")),
        "{}",
        run.log
    );
    assert_eq!(act.output("outcome"), "failure");
    assert_eq!(act.output("refused"), "true");
    assert_eq!(act.output("written"), "");
    let summary = run.summary();
    assert!(
        summary.contains(&format!("| `{image}:1.4.2` | **refuse** |")),
        "{summary}"
    );
    assert_eq!(
        digest_at(&r, "acme/app:1.4.2").as_deref(),
        Some(built.as_str())
    );
    assert_ne!(other, built);

    // audit: what tagguard pushed keeps the policy's promises; 1.4.2 overwritten outside
    // tagguard is a finding that fails the job.
    act.set_env("TEST_COMMAND", "audit");
    act.run().success();
    assert_eq!(act.output("clean"), "true");
    let moved = r.seed(&Image::random(), "acme/app", "1.4.2");
    let run = act.run().failure();
    assert!(run.log.contains("exit status 3"), "{}", run.log);
    assert_eq!(act.output("clean"), "false");
    // 1.4.2 moved; the floating tags still hold what 1.4.2 held, so they are behind it now.
    let found: Vec<String> = act.output("tags").lines().map(str::to_owned).collect();
    let want: Vec<String> = ["1", "1.4", "1.4.2", "latest"]
        .iter()
        .map(|t| format!("{image}:{t}"))
        .collect();
    assert_eq!(found, want);
    assert_eq!(digest_at(&r, "acme/app:1.4.2"), Some(moved));
}

/// `command: prune`: the plan deletes nothing; with `apply: true` the tags the policy's `retain`
/// lets go are deleted, the newest kept, and the outputs name them.
#[test]
fn prune_plans_and_with_apply_retires_the_build_tags_past_their_retention() {
    let r = Registry::start_deleting(Mode::Plain);
    for (n, day) in [(1, 1), (2, 5), (3, 20)] {
        let created = format!("2026-01-{day:02}T00:00:00Z");
        r.seed(&Image::created(&created), "acme/app", &format!("build-{n}"));
    }
    let image = format!("{}/acme/app", r.host);
    let builds = || {
        let mut tags: Vec<String> = r
            .tags_of("acme/app")
            .into_iter()
            .filter(|t| t.starts_with("build-"))
            .collect();
        tags.sort();
        tags
    };
    let mut act = Act::new("check.yml")
        .env("TEST_COMMAND", "prune")
        .env("TEST_IMAGES", &image)
        .reuse_dependencies();
    act.repo.write(
        ".tagguard.yml",
        "version: 1\ntags:\n  - template: \"build-{{ build_number }}\"\n    when: ci\n    immutable: false\n    retain: { newest: 1 }\n",
    );
    act.repo.commit("policy");
    let lines = |act: &Act, name: &str| {
        let mut v: Vec<String> = act.output(name).lines().map(str::to_owned).collect();
        v.sort();
        v
    };

    act.run().success();
    assert_eq!(act.output("outcome"), "success");
    let planned = [format!("{image}:build-1"), format!("{image}:build-2")];
    assert_eq!(lines(&act, "delete"), planned);
    assert_eq!(act.output("deleted"), "");
    assert_eq!(
        builds(),
        ["build-1", "build-2", "build-3"],
        "the plan deleted"
    );

    act.set_env("TEST_APPLY", "true");
    act.run().success();
    assert_eq!(lines(&act, "deleted"), planned);
    assert_eq!(builds(), ["build-3"]);
}

/// `command: push` runs tagguard once: `push --format github` writes the `tags` outputs too, so
/// the timestamp tag the outputs name is the one pushed (two runs could read the clock twice).
#[test]
fn push_outputs_name_the_timestamp_tag_that_was_written() {
    let r = Registry::start(Mode::Plain);
    r.seed(&Image::random(), "ci/build", "b1");
    let image = format!("{}/acme/app", r.host);
    // The binary under test behind a wrapper that records each run's build time.
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let wrapper = bin.path().join("tagguard");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$1 ${{SOURCE_DATE_EPOCH:-unset}}\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            env!("CARGO_BIN_EXE_tagguard")
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let act = Act::new("check.yml")
        .env("TEST_COMMAND", "push")
        .env("TEST_IMAGES", &image)
        .env("TEST_SOURCE", &format!("{}/ci/build:b1", r.host))
        .env("TEST_ARGS", "")
        .path_first(bin.path());
    let run = act.run().success();

    let calls = std::fs::read_to_string(&calls).unwrap();
    let runs: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("tags ") || l.starts_with("push "))
        .collect();
    assert_eq!(runs.len(), 1, "one run computes the tags: {calls}");
    assert!(runs[0].starts_with("push "), "{calls}");
    // The default policy's CI tag, <timestamp>-<run id>: in the outputs and written.
    let tags = act.output("tags");
    let stamped = tags
        .lines()
        .find(|t| {
            t.rsplit(':')
                .next()
                .is_some_and(|tag| tag.len() > 15 && tag.as_bytes()[14] == b'-')
        })
        .unwrap_or_else(|| panic!("no timestamp tag in\n{tags}\n{}", run.log));
    assert!(
        act.output("written").lines().any(|w| w == stamped),
        "{stamped} not in\n{}",
        act.output("written")
    );
}

/// The digest `reference` (repository:tag) points at in `r`, read with skopeo.
fn digest_at(r: &Registry, reference: &str) -> Option<String> {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{}/{reference}", r.host))
        .env("HOME", r.dir.path())
        .output()
        .expect("skopeo runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs a linter from `.ci/run`'s python tools in the repository root; its output on failure.
fn lint(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run pip-installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const WORKFLOWS: [&str; 5] = [
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
    "tests/workflows/release.yml",
    "tests/workflows/check.yml",
    "tests/workflows/release-binary.yml",
];

/// No `${{ }}` reaches a script: zizmor (offline) finds nothing in the action or workflows.
#[test]
fn zizmor_finds_nothing() {
    lint(
        "zizmor",
        &[
            "--offline",
            "action.yml",
            "tests/workflows/actions-cache-stub/action.yml",
            ".github/workflows",
            "tests/workflows",
        ],
    );
}

#[test]
fn action_and_workflows_match_githubs_schemas_and_actionlint() {
    lint(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.github-actions",
            "action.yml",
            "tests/workflows/actions-cache-stub/action.yml",
        ],
    );
    let mut args = vec!["--builtin-schema", "vendor.github-workflows"];
    args.extend(WORKFLOWS);
    lint("check-jsonschema", &args);
    lint("actionlint", &WORKFLOWS);
}

/// No run script of the action expands an expression: inputs arrive through `env:` only.
#[test]
fn no_expression_inside_a_run_script() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"),
    )
    .unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let steps = action["runs"]["steps"].as_array().unwrap();
    assert!(steps.len() >= 4);
    for step in steps {
        if let Some(script) = step["run"].as_str() {
            assert!(!script.contains("${{"), "expression in a script:\n{script}");
        }
    }
}
