//! Policy diagnostics: one fixture per kind of mistake, with the exact rendered report.

use std::path::{Path, PathBuf};

use crate::support::cmd::tagguard;
use crate::support::git::Repo;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

/// Every fixture is an invalid policy: `policy check` exits 1 and says exactly this.
#[test]
fn every_invalid_fixture_has_its_report() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures went missing: {names:?}");
    for name in names {
        let run = tagguard(&fixtures())
            .args(["policy", "check", &name])
            .run()
            .code(1);
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
        insta::assert_snapshot!(name.trim_end_matches(".yml"), run.stderr);
    }
}

#[test]
fn a_broken_policy_stops_tags_too() {
    let run = tagguard(&fixtures())
        .args(["tags", "--policy", "many-problems.yml", "--sha", "abcdef0"])
        .run()
        .code(1);
    assert!(
        run.stderr
            .contains("5 problems in policy many-problems.yml"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_missing_policy_file_names_the_path() {
    let run = tagguard(&fixtures())
        .args(["policy", "check", "nope.yml"])
        .run()
        .code(1);
    assert!(
        run.err_text().contains("could not read policy at nope.yml"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_examples_are_valid() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&policies).unwrap() {
        let path = entry.unwrap().path();
        let run = tagguard(&policies)
            .args(["policy", "check"])
            .arg_path(&path)
            .run()
            .success();
        assert!(run.stdout.contains("is valid"), "{}", run.stdout);
        checked += 1;
    }
    assert!(
        checked >= 4,
        "policies/ should hold the default and at least three examples"
    );
}

#[test]
fn the_embedded_default_is_policies_default() {
    let run = tagguard(&fixtures())
        .args(["policy", "default"])
        .run()
        .success();
    let file =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.yml"))
            .unwrap();
    assert_eq!(run.stdout, file);
}

/// The CI situations a shipped policy must render in: (name, variables). `{rel}` stands for
/// the policy's release tag of 1.2.3, `{sha}` for the commit.
const CONTEXTS: &[(&str, &[(&str, &str)])] = &[
    ("no CI", &[]),
    (
        "GitHub tag",
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/{rel}"),
        ],
    ),
    (
        "GitHub branch",
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
        ],
    ),
    (
        "GitHub pull request",
        &[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/12/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_BASE_REF", "main"),
        ],
    ),
    (
        "GitHub schedule",
        &[
            ("GITHUB_EVENT_NAME", "schedule"),
            ("GITHUB_REF", "refs/heads/main"),
        ],
    ),
    (
        "GitHub workflow_dispatch",
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_REF", "refs/heads/main"),
        ],
    ),
    (
        "GitLab release tag",
        &[
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_TAG", "{rel}"),
            ("CI_COMMIT_REF_NAME", "{rel}"),
        ],
    ),
    (
        "GitLab other tag",
        &[
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_TAG", "deploy-prod"),
            ("CI_COMMIT_REF_NAME", "deploy-prod"),
        ],
    ),
    (
        "GitLab branch",
        &[
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_REF_NAME", "main"),
        ],
    ),
    (
        "GitLab merge request",
        &[
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_MERGE_REQUEST_IID", "8"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/x"),
            ("CI_COMMIT_REF_NAME", "feature/x"),
        ],
    ),
];

/// Every policy we ship or document: (name, text).
fn shipped_policies() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, String)> = std::fs::read_dir(root.join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect();
    let doc = std::fs::read_to_string(root.join("docs/policy.md")).unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/policy.md holds the reference example");
    out.push(("docs/policy.md example".to_owned(), example.to_owned()));
    out.sort();
    out
}

/// Each shipped policy renders in every CI situation, on a detached HEAD carrying the
/// policy's release tag (as CI checks a tag out); tag builds are releases, branch, pull
/// request and other-tag builds are not (`release.from: ci`).
#[test]
fn every_shipped_policy_renders_in_every_ci_situation() {
    let policies = shipped_policies();
    assert!(policies.len() >= 5, "{policies:?}");
    for (name, text) in policies {
        let policy = tagguard::policy::Policy::parse(&name, &text).unwrap();
        let rel = policy.release.git_tag("1.2.3");
        let repo = Repo::new();
        repo.write(".tagguard.yml", &text).commit("policy");
        repo.tag(&rel).detach();
        let sha = repo.head();
        for (situation, vars) in CONTEXTS {
            let mut env: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace("{rel}", &rel)))
                .collect();
            if situation.starts_with("GitHub") {
                env.extend(
                    [
                        ("GITHUB_ACTIONS", "true"),
                        ("GITHUB_SHA", sha.as_str()),
                        ("GITHUB_RUN_ID", "7001234567"),
                        ("GITHUB_RUN_NUMBER", "42"),
                        ("GITHUB_SERVER_URL", "https://github.com"),
                        ("GITHUB_REPOSITORY", "acme/app"),
                    ]
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
                );
            } else if situation.starts_with("GitLab") {
                env.extend(
                    [
                        ("GITLAB_CI", "true"),
                        ("CI", "true"),
                        ("CI_COMMIT_SHA", sha.as_str()),
                        ("CI_PIPELINE_ID", "99001"),
                        ("CI_PIPELINE_IID", "17"),
                    ]
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
                );
            }
            let run = tagguard(repo.path())
                .args(["tags", "--format=json", "--timestamp=20240102030405"])
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .run();
            assert_eq!(
                run.code, 0,
                "{name} in {situation}: {}\n{}",
                run.stderr, run.stdout
            );
            let release = ["no CI", "GitHub tag", "GitLab release tag"].contains(situation);
            let version = &run.json()["version"];
            assert_eq!(
                version.as_str(),
                release.then_some("1.2.3"),
                "{name} in {situation}"
            );
        }
    }
}

/// A rule whose `when` does not promise a variable it uses is refused when the policy loads,
/// pointing at the variable and naming it.
#[test]
fn a_rule_must_only_use_what_its_when_promises() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "version: 1\ntags:\n  - template: \"{{ version }}-{{ branch }}\"\n    when: release\n",
    )
    .unwrap();
    let run = tagguard(dir.path())
        .args(["policy", "check", "p.yml"])
        .run()
        .code(1);
    let text = run.err_text();
    assert!(
        text.contains("`branch` may have no value when this rule applies"),
        "{}",
        run.stderr
    );
    assert!(text.contains("p.yml:3:"), "{}", run.stderr);
    assert!(
        text.contains("`when: release` promises only"),
        "{}",
        run.stderr
    );
}
