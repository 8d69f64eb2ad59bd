//! `tagguard tags` on real git repositories, with CI environments simulated on a cleared
//! environment.

use crate::support::cmd::tagguard;
use crate::support::git::{Repo, project};

const STAMP: &str = "--timestamp=20240102030405";

fn short(sha: &str) -> String {
    format!("sha-{}", &sha[..7])
}

#[test]
fn lightweight_release_tag_gets_version_and_floating_tags() {
    let repo = Repo::new();
    repo.tag("v1.4.2");
    let run = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert_eq!(
        run.lines(),
        ["1.4.2", "1.4", "1", "latest", &short(&repo.head())]
    );
}

#[test]
fn annotated_release_tag_counts_too() {
    let repo = Repo::new();
    repo.annotated_tag("v2.0.0");
    let run = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert_eq!(
        run.lines(),
        ["2.0.0", "2.0", "2", "latest", &short(&repo.head())]
    );
}

#[test]
fn tags_on_other_commits_do_not_count() {
    let repo = Repo::new();
    repo.annotated_tag("v1.0.0").tag("v1.0.1");
    repo.commit("after the release");
    let run = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert_eq!(run.lines(), [short(&repo.head())]);
}

#[test]
fn prerelease_gets_no_floating_tags() {
    let repo = Repo::new();
    repo.tag("v3.0.0-rc.1");
    let run = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert_eq!(run.lines(), ["3.0.0-rc.1", &short(&repo.head())]);
}

#[test]
fn build_metadata_is_mapped_to_underscore() {
    let repo = Repo::new();
    repo.tag("v1.2.3+build.7");
    let run = tagguard(repo.path())
        .args(["tags", "--format=json", STAMP])
        .run()
        .success();
    let json = run.json();
    assert_eq!(json["tags"][0]["tag"], "1.2.3_build.7");
    assert_eq!(json["version"], "1.2.3+build.7");
    assert_eq!(
        json["labels"]["org.opencontainers.image.version"],
        "1.2.3+build.7"
    );
}

#[test]
fn invalid_semver_release_tags_are_errors_that_say_why() {
    for (tag, why) in [
        ("v1.2", "\"1.2\" has 2 of the 3 numbers MAJOR.MINOR.PATCH"),
        ("v01.2.3", "invalid leading zero in major version number"),
    ] {
        let repo = Repo::new();
        repo.tag(tag);
        let run = tagguard(repo.path()).args(["tags", STAMP]).run().code(1);
        let expected = format!("release tag `{tag}` is not valid SemVer 2.0: {why}");
        assert!(run.err_text().contains(&expected), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn shallow_clone_of_a_release_tag() {
    let origin = Repo::new();
    origin.commit("second");
    origin.annotated_tag("v1.0.0");
    let clone = origin.shallow_clone("v1.0.0");
    assert_eq!(clone.git(&["rev-parse", "--is-shallow-repository"]), "true");
    let run = tagguard(clone.path()).args(["tags", STAMP]).run().success();
    assert_eq!(
        run.lines(),
        ["1.0.0", "1.0", "1", "latest", &short(&origin.head())]
    );
}

#[test]
fn detached_head_takes_the_branch_from_github_actions() {
    let repo = project(
        "version: 1\ntags:\n  - template: \"{{ branch }}-{{ build_number }}\"\n    when: { all: [ci, { branch: \".\" }] }\n    immutable: false\n  - template: \"{{ branch }}-{{ build_id }}-{{ timestamp }}\"\n    when: { all: [ci, { branch: \"^main$\" }] }\n",
    );
    repo.detach();
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "ffffffffffffffffffffffffffffffffffffffff"),
            ("GITHUB_RUN_ID", "7001234567"),
            ("GITHUB_RUN_NUMBER", "42"),
        ])
        .run()
        .success();
    assert_eq!(run.lines(), ["main-42", "main-7001234567-20240102030405"]);
}

#[test]
fn github_pull_request_tags_the_source_branch_and_number() {
    let repo = project(
        "version: 1\ntags:\n  - template: \"pr-{{ pr_number }}\"\n    when: pull-request\n    immutable: false\n  - template: \"{{ branch }}\"\n    when: { branch: \".\" }\n    immutable: false\n",
    );
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/123/merge"),
            ("GITHUB_HEAD_REF", "feature/Login@v2"),
        ])
        .run()
        .success();
    assert_eq!(run.lines(), ["pr-123", "feature-Login-v2"]);
}

#[test]
fn gitlab_tag_pipeline_and_merge_request() {
    let repo = Repo::new();
    repo.detach();
    let tag_pipeline = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_TAG", "v5.1.0"),
        ("CI_COMMIT_REF_NAME", "v5.1.0"),
        ("CI_PIPELINE_ID", "99001"),
        ("CI_PIPELINE_IID", "17"),
    ];
    // The tag exists only in GitLab's variables (a shallow fetch may not bring it).
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .envs(tag_pipeline)
        .run()
        .success();
    assert_eq!(
        run.lines(),
        [
            "5.1.0",
            "5.1",
            "5",
            "latest",
            &short(&repo.head()),
            "20240102030405-99001"
        ]
    );

    let mr = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_REF_NAME", "fix-1"),
        ("CI_MERGE_REQUEST_IID", "8"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix-1"),
        ("CI_PIPELINE_ID", "99002"),
    ];
    let policy = "version: 1\ntags:\n  - template: \"mr-{{ pr_number }}-{{ branch }}\"\n    when: { all: [pull-request, { branch: \".\" }] }\n    immutable: false\n";
    repo.write("p.yml", policy);
    let run = tagguard(repo.path())
        .args(["tags", "--policy", "p.yml", "--allow-dirty", STAMP])
        .envs(mr)
        .run()
        .success();
    assert_eq!(run.lines(), ["mr-8-fix-1"]);
}

#[test]
fn monorepo_release_prefix() {
    let repo = project(
        "version: 1\nimage: registry.example.com/acme/api\nrelease:\n  git-tag: \"api/v{version}\"\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: \"{{ git_tag }}\"\n    when: release\n",
    );
    repo.tag("web/v9.9.9").tag("api/v1.3.0").tag("v0.0.1");
    let run = tagguard(repo.path())
        .args(["tags", "--format=json", STAMP])
        .run()
        .success();
    let json = run.json();
    assert_eq!(json["version"], "1.3.0");
    assert_eq!(json["release_tag"], "api/v1.3.0");
    assert_eq!(
        json["tags"][0]["ref"],
        "registry.example.com/acme/api:1.3.0"
    );
    assert_eq!(json["tags"][1]["tag"], "api-v1.3.0");
}

#[test]
fn nasty_branch_names_become_valid_distinct_tags() {
    let repo = project(
        "version: 1\ntags:\n  - template: \"{{ branch }}\"\n    when: { branch: \".\" }\n    immutable: false\n",
    );
    let long_a = format!("{}-a", "x".repeat(200));
    let long_b = format!("{}-b", "x".repeat(200));
    type Check = Box<dyn Fn(&str) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        ("feature/Foo@bar", Box::new(|t| t == "feature-Foo-bar")),
        ("-x", Box::new(|t| t == "x")),
        (".hidden", Box::new(|t| t == "hidden")),
        ("ünïcode/ветка", Box::new(|t| t == "n-code-")),
        ("日本語", Box::new(|t| t.len() == 7)),
        (
            &long_a,
            Box::new(|t| t.len() == 80 && t.starts_with("xxxx")),
        ),
    ];
    for (branch, ok) in cases {
        let run = tagguard(repo.path())
            .args(["tags", &format!("--branch={branch}")])
            .run()
            .success();
        let tag = run.stdout.trim();
        assert!(ok(tag), "{branch:?} -> {tag:?}");
    }
    let a = tagguard(repo.path())
        .args(["tags", "--branch", &long_a])
        .run()
        .success();
    let b = tagguard(repo.path())
        .args(["tags", "--branch", &long_b])
        .run()
        .success();
    assert_ne!(a.stdout, b.stdout, "truncated names must stay distinct");
}

#[test]
fn real_branch_with_slashes() {
    let repo = project(
        "version: 1\ntags:\n  - template: \"{{ branch }}\"\n    when: { branch: \".\" }\n    immutable: false\n",
    );
    repo.branch("feature/JIRA-12_fix.it");
    let run = tagguard(repo.path()).args(["tags"]).run().success();
    assert_eq!(run.lines(), ["feature-JIRA-12_fix.it"]);
}

#[test]
fn dirty_tree_refuses_immutable_tags_unless_allowed() {
    let repo = Repo::new();
    repo.write("src.txt", "one");
    repo.commit("add a file");
    repo.write("untracked.txt", "does not make the tree dirty");
    tagguard(repo.path()).args(["tags"]).run().success();

    repo.write("src.txt", "changed");
    let run = tagguard(repo.path()).args(["tags"]).run().code(3);
    assert!(
        run.stdout.is_empty(),
        "a refusal prints no tags: {}",
        run.stdout
    );
    assert!(run.stderr.contains("uncommitted changes"), "{}", run.stderr);
    assert!(run.stderr.contains(&short(&repo.head())), "{}", run.stderr);

    let run = tagguard(repo.path())
        .args(["tags", "--allow-dirty"])
        .run()
        .success();
    assert_eq!(run.lines(), [short(&repo.head())]);
    let run = tagguard(repo.path())
        .args(["tags", "--format=json", "--allow-dirty"])
        .run()
        .success();
    assert_eq!(run.json()["dirty"], true);
}

#[test]
fn source_date_epoch_sets_the_build_time() {
    let repo = project("version: 1\ntags:\n  - \"{{ timestamp }}-c{{ commit_timestamp }}\"\n");
    let run = tagguard(repo.path())
        .args(["tags"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    assert_eq!(run.lines(), ["20231114221320-c20240102030605"]);
    let run = tagguard(repo.path())
        .args(["tags"])
        .env("SOURCE_DATE_EPOCH", "soon")
        .run()
        .code(1);
    assert!(
        run.stderr.contains("SOURCE_DATE_EPOCH=\"soon\""),
        "{}",
        run.stderr
    );
}

#[test]
fn json_output_lists_every_image_and_tag() {
    let repo = project(
        "version: 1\nimages: [ghcr.io/acme/app, registry.example.com/acme/app]\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: latest\n    when: stable-release\n    floating: latest\n",
    );
    repo.tag("v1.0.0");
    repo.git(&[
        "remote",
        "add",
        "origin",
        "https://user:s3cret-token@github.com/acme/app.git",
    ]);
    let run = tagguard(repo.path())
        .args(["tags", "--format=json", STAMP])
        .run()
        .success();
    let json = run.json();
    let refs: Vec<&str> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "ghcr.io/acme/app:1.0.0",
            "ghcr.io/acme/app:latest",
            "registry.example.com/acme/app:1.0.0",
            "registry.example.com/acme/app:latest"
        ]
    );
    assert_eq!(json["tags"][0]["immutable"], true);
    assert_eq!(json["tags"][0]["floating"], serde_json::Value::Null);
    assert_eq!(json["tags"][1]["immutable"], false);
    assert_eq!(json["tags"][1]["floating"], "latest");
    let labels = &json["labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        repo.head().as_str()
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/acme/app"
    );
    assert!(
        !run.stdout.contains("s3cret"),
        "credentials from the remote URL leaked"
    );
}

#[test]
fn github_format_writes_step_outputs() {
    let repo = Repo::new();
    repo.tag("v1.0.0");
    let out = repo.path().join("github_output");
    let run = tagguard(repo.path())
        .args([
            "tags",
            "--format=github",
            "--image",
            "ghcr.io/acme/app",
            STAMP,
        ])
        .env("GITHUB_OUTPUT", &out)
        .run()
        .success();
    assert_eq!(run.lines()[0], "1.0.0");
    let text = std::fs::read_to_string(&out).unwrap();
    let outputs = parse_github_outputs(&text);
    let sha = short(&repo.head());
    assert_eq!(
        outputs["tags"],
        format!(
            "ghcr.io/acme/app:1.0.0\nghcr.io/acme/app:1.0\nghcr.io/acme/app:1\nghcr.io/acme/app:latest\nghcr.io/acme/app:{sha}"
        )
    );
    assert_eq!(outputs["version"], "1.0.0");
    assert!(outputs["labels"].contains("org.opencontainers.image.version=1.0.0"));
    let json: serde_json::Value = serde_json::from_str(&outputs["json"]).unwrap();
    assert_eq!(json["version"], "1.0.0");

    let run = tagguard(repo.path())
        .args(["tags", "--format=github"])
        .run()
        .code(1);
    assert!(run.stderr.contains("GITHUB_OUTPUT"), "{}", run.stderr);
}

/// Reads `name<<DELIM\nvalue\nDELIM` blocks as GitHub Actions does.
pub fn parse_github_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("multi-line form");
        let mut value = Vec::new();
        for l in lines.by_ref() {
            if l == delimiter {
                break;
            }
            value.push(l);
        }
        out.insert(name.to_owned(), value.join("\n"));
    }
    out
}

#[test]
fn gitlab_format_is_dotenv() {
    let repo = Repo::new();
    repo.tag("v1.0.0");
    let run = tagguard(repo.path())
        .args([
            "tags",
            "--format=gitlab",
            "--image",
            "registry.gitlab.com/acme/app",
            STAMP,
        ])
        .run()
        .success();
    let sha = short(&repo.head());
    assert!(run.lines().contains(&format!(
        "TAGGUARD_TAGS=registry.gitlab.com/acme/app:1.0.0,registry.gitlab.com/acme/app:1.0,registry.gitlab.com/acme/app:1,registry.gitlab.com/acme/app:latest,registry.gitlab.com/acme/app:{sha}"
    ).as_str()), "{}", run.stdout);
    assert!(run.lines().contains(&"TAGGUARD_VERSION=1.0.0"));
}

#[test]
fn outside_a_repository_the_commit_must_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let run = tagguard(dir.path()).args(["tags"]).run().code(1);
    assert!(
        run.stderr.contains("is not in a git repository"),
        "{}",
        run.stderr
    );
    let run = tagguard(dir.path())
        .args(["tags", "--sha", "abcdef0123456789abcdef0123456789abcdef01"])
        .run()
        .success();
    assert_eq!(run.lines(), ["sha-abcdef0"]);
    let run = tagguard(dir.path())
        .args(["tags"])
        .envs([
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "1234567890abcdef1234567890abcdef12345678"),
        ])
        .run()
        .success();
    assert_eq!(run.lines(), ["sha-1234567"]);
}

#[test]
fn empty_repository_is_a_clear_error() {
    let repo = Repo::empty();
    let run = tagguard(repo.path()).args(["tags"]).run().code(1);
    assert!(run.stderr.contains("has no commits yet"), "{}", run.stderr);
}

/// A checkout owned by another user is read from a directory of that user (tagguard only
/// reads; see docs/container.md); from a directory of someone else inside it (how a planted
/// `.git` looks) it is refused with the fix, and git's `safe.directory` lets it through.
#[test]
fn repository_owned_by_another_user() {
    use std::os::unix::fs::MetadataExt;
    let repo = Repo::new();
    repo.tag("v1.0.0");
    let me = std::fs::metadata(repo.path()).unwrap().uid();
    assert_eq!(
        me, 0,
        "this test gives a repository to another user, which needs root (as in CI)"
    );
    let status = std::process::Command::new("chown")
        .args(["-R", "65534", repo.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = tagguard(repo.path()).args(["tags"]).run().success();
    assert_eq!(run.lines()[0], "1.0.0");

    let mine = repo.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let run = tagguard(&mine).args(["tags"]).run().code(1);
    assert!(
        run.err_text().contains(
            "is owned by another user than the directory tagguard runs in, and git refuses to read it"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.err_text()
            .contains("git config --global --add safe.directory"),
        "{}",
        run.stderr
    );

    // git's own safe.directory setting lets it through.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".gitconfig"),
        format!("[safe]\n\tdirectory = {}\n", repo.path().display()),
    )
    .unwrap();
    tagguard(&mine)
        .args(["tags"])
        .env("HOME", home.path())
        .run()
        .success();
}

/// A dirty tree names its first changed tracked files, for the message that refuses it.
#[test]
fn a_dirty_tree_names_its_changed_files() {
    let repo = Repo::new();
    for i in 0..12 {
        repo.write(&format!("f{i:02}.txt"), "a");
    }
    repo.write("untracked-later.txt", "x");
    repo.commit("files");
    repo.write("untracked.txt", "new");
    for i in [3, 1, 7] {
        repo.write(&format!("f{i:02}.txt"), "b");
    }
    let facts = tagguard::git::read(repo.path()).unwrap().unwrap();
    assert!(facts.dirty);
    assert_eq!(facts.dirty_files, ["f01.txt", "f03.txt", "f07.txt"]);
    for i in 0..12 {
        repo.write(&format!("f{i:02}.txt"), "c");
    }
    let facts = tagguard::git::read(repo.path()).unwrap().unwrap();
    assert_eq!(facts.dirty_files.len(), tagguard::git::DIRTY_FILES_SHOWN);
    assert_eq!(facts.dirty_files[0], "f00.txt");
}

/// Pushing a branch and its release tag together starts two CI runs: only the tag's run is the
/// release, else both would claim the immutable version tag.
#[test]
fn a_branch_build_is_no_release_even_with_a_release_tag_at_head() {
    let repo = Repo::new();
    repo.tag("v9.9.9");
    let github = |git_ref: &str| {
        let run = tagguard(repo.path())
            .args(["tags", STAMP])
            .envs([
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "push"),
                ("GITHUB_REF", git_ref),
            ])
            .run()
            .success();
        run.lines()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(github("refs/heads/main"), [short(&repo.head())]);
    assert_eq!(
        github("refs/tags/v9.9.9"),
        ["9.9.9", "9.9", "9", "latest", &short(&repo.head())]
    );
    let gitlab = tagguard(repo.path())
        .args(["tags", STAMP])
        .envs([
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_REF_NAME", "main"),
        ])
        .run()
        .success();
    assert_eq!(gitlab.lines(), [short(&repo.head())]);
    // Without a CI, git decides: a laptop on the tagged commit builds the release.
    let laptop = tagguard(repo.path()).args(["tags", STAMP]).run().success();
    assert_eq!(laptop.lines()[0], "9.9.9");
}

#[test]
fn release_from_git_makes_any_release_tag_at_head_a_release() {
    let repo = project(
        "version: 1\nrelease:\n  git-tag: \"v{version}\"\n  from: git\ntags:\n  - template: \"{{ version }}\"\n    when: release\n",
    );
    repo.tag("v2.0.0");
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
        ])
        .run()
        .success();
    assert_eq!(run.lines(), ["2.0.0"]);
}

/// In a monorepo, another service's tag build is no release of this one, even when this
/// service's release tag is at the same commit.
#[test]
fn another_services_tag_build_is_no_release() {
    let repo = project(
        "version: 1\nrelease:\n  git-tag: \"api/v{version}\"\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - \"sha-{{ short_sha }}\"\n",
    );
    repo.tag("api/v1.0.0").tag("web/v4.0.0").detach();
    let run = |tag: &str| {
        tagguard(repo.path())
            .args(["tags", STAMP])
            .envs([("GITHUB_ACTIONS", "true"), ("GITHUB_REF", tag)])
            .run()
            .success()
            .lines()
            .len()
    };
    assert_eq!(run("refs/tags/web/v4.0.0"), 1);
    assert_eq!(run("refs/tags/api/v1.0.0"), 2);
}

/// `policy default --preset metadata-action` gives docker/metadata-action's default tags, as
/// its README documents them per event (plus its `type=schedule` default, `nightly`).
#[test]
fn the_metadata_action_preset_gives_its_documented_tags() {
    let repo = Repo::new();
    let preset = tagguard(repo.path())
        .args(["policy", "default", "--preset", "metadata-action"])
        .run()
        .success();
    repo.write(".tagguard.yml", &preset.stdout).commit("policy");
    repo.detach();
    for (event, git_ref, expected) in [
        ("pull_request", "refs/pull/2/merge", &["pr-2"][..]),
        ("push", "refs/heads/master", &["master"]),
        ("push", "refs/heads/releases/v1", &["releases-v1"]),
        ("push", "refs/tags/v1.2.3", &["v1.2.3", "latest"]),
        (
            "push",
            "refs/tags/v2.0.8-beta.67",
            &["v2.0.8-beta.67", "latest"],
        ),
        ("workflow_dispatch", "refs/heads/master", &["master"]),
        ("schedule", "refs/heads/master", &["nightly", "master"]),
    ] {
        let run = tagguard(repo.path())
            .args(["tags", STAMP])
            .envs([
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REF", git_ref),
                (
                    "GITHUB_HEAD_REF",
                    if event == "pull_request" {
                        "feature/x"
                    } else {
                        ""
                    },
                ),
                ("GITHUB_RUN_ID", "7001234567"),
                ("GITHUB_RUN_NUMBER", "42"),
            ])
            .run()
            .success();
        assert_eq!(run.lines(), expected, "{event} {git_ref}");
    }
}

/// `tags --format json` counts rules as messages do, from 1: the rule a message names as
/// `rule 2 (.tagguard.yml:5)` is `"rule": 2`.
#[test]
fn json_counts_rules_from_1_like_messages() {
    let repo = project(
        "version: 1\ntags:\n  - template: \"sha-{{ short_sha }}\"\n  - template: \"{{ version }}\"\n    when: release\n",
    );
    repo.tag("v1.2.3");
    let run = tagguard(repo.path())
        .args([
            "tags",
            "--format=json",
            STAMP,
            "--image=registry.example/acme/app",
        ])
        .run()
        .success();
    let mut json = run.json();
    json["labels"]["org.opencontainers.image.revision"] = "<sha>".into();
    json["tags"][0]["tag"] = "sha-<short>".into();
    json["tags"][0]["ref"] = "registry.example/acme/app:sha-<short>".into();
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());

    // The same rule, broken, is named with the same number.
    repo.write(
        ".tagguard.yml",
        "version: 1\ntags:\n  - template: \"sha-{{ short_sha }}\"\n  - template: \"{{ version ~ '/' if version == '1.2.3' else version }}\"\n    when: release\n",
    );
    let run = tagguard(repo.path())
        .args(["tags", STAMP, "--allow-dirty"])
        .run()
        .code(1);
    assert!(
        run.err_text()
            .contains(".tagguard.yml:4) renders the invalid tag \"1.2.3/\"")
            && run.err_text().contains("rule 2 ("),
        "{}",
        run.stderr
    );
}
