//! `tagguard tags` under each CI of docs/ci, with only that CI's documented variables, in a
//! detached checkout: a branch build gets the build tag, a tag build its release tags, a branch
//! build of a tagged commit no release tags, and a pull request build (metadata-action preset)
//! `pr-N`.

use crate::support::cmd::tagguard;
use crate::support::git::Repo;

const STAMP: &str = "--timestamp=20240102030405";

/// What the CI builds.
#[derive(Clone, Copy)]
pub(crate) enum Build {
    Branch(&'static str),
    Tag(&'static str),
    PullRequest(&'static str, &'static str),
}

/// A CI: its name, its variables for a build of `sha`, and the build id tagguard takes.
struct Ci {
    name: &'static str,
    vars: fn(Build, &str) -> Vec<(&'static str, String)>,
    build_id: &'static str,
}

fn s(v: &str) -> String {
    v.to_owned()
}

pub(crate) fn codebuild(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (
            "CODEBUILD_BUILD_ID",
            s("app:b1e6661e-e4f2-4156-9ab9-82a19EXAMPLE"),
        ),
        ("CODEBUILD_BUILD_NUMBER", s("42")),
        ("CODEBUILD_RESOLVED_SOURCE_VERSION", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.push(("CODEBUILD_WEBHOOK_TRIGGER", format!("branch/{name}"))),
        Build::Tag(tag) => v.push(("CODEBUILD_WEBHOOK_TRIGGER", format!("tag/{tag}"))),
        Build::PullRequest(n, branch) => v.extend([
            ("CODEBUILD_WEBHOOK_TRIGGER", format!("pr/{n}")),
            ("CODEBUILD_WEBHOOK_HEAD_REF", format!("refs/heads/{branch}")),
            ("CODEBUILD_WEBHOOK_BASE_REF", s("refs/heads/main")),
        ]),
    }
    v
}

pub(crate) fn cloud_build(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("BUILDER_OUTPUT", s("/builder/outputs")),
        ("PROJECT_ID", s("acme-prod")),
        ("PROJECT_NUMBER", s("123456789012")),
        ("LOCATION", s("europe-west1")),
        ("BUILD_ID", s("f2b3c0de-1111-4a4a-9b9b-0123456789ab")),
        ("COMMIT_SHA", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.extend([("BRANCH_NAME", s(name)), ("TAG_NAME", s(""))]),
        Build::Tag(tag) => v.extend([("TAG_NAME", s(tag)), ("BRANCH_NAME", s(""))]),
        Build::PullRequest(n, branch) => v.extend([
            ("_PR_NUMBER", s(n)),
            ("_HEAD_BRANCH", s(branch)),
            ("_BASE_BRANCH", s("main")),
        ]),
    }
    v
}

pub(crate) fn azure(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("TF_BUILD", s("True")),
        ("BUILD_BUILDID", s("1234")),
        ("BUILD_BUILDNUMBER", s("20240102.3")),
        ("BUILD_SOURCEVERSION", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.extend([
            ("BUILD_SOURCEBRANCH", format!("refs/heads/{name}")),
            ("BUILD_REASON", s("IndividualCI")),
        ]),
        Build::Tag(tag) => v.extend([
            ("BUILD_SOURCEBRANCH", format!("refs/tags/{tag}")),
            ("BUILD_REASON", s("IndividualCI")),
        ]),
        Build::PullRequest(n, branch) => v.extend([
            ("BUILD_SOURCEBRANCH", format!("refs/pull/{n}/merge")),
            ("BUILD_REASON", s("PullRequest")),
            ("SYSTEM_PULLREQUEST_PULLREQUESTID", s("99001")),
            ("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", s(n)),
            (
                "SYSTEM_PULLREQUEST_SOURCEBRANCH",
                format!("refs/heads/{branch}"),
            ),
            ("SYSTEM_PULLREQUEST_TARGETBRANCH", s("main")),
        ]),
    }
    v
}

pub(crate) fn jenkins(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("JENKINS_URL", s("https://ci.example.com/")),
        ("BUILD_ID", s("7")),
        ("BUILD_NUMBER", s("7")),
        ("GIT_COMMIT", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.push(("BRANCH_NAME", s(name))),
        Build::Tag(tag) => v.extend([("BRANCH_NAME", s(tag)), ("TAG_NAME", s(tag))]),
        Build::PullRequest(n, branch) => v.extend([
            ("BRANCH_NAME", format!("PR-{n}")),
            ("CHANGE_ID", s(n)),
            ("CHANGE_BRANCH", s(branch)),
            ("CHANGE_TARGET", s("main")),
        ]),
    }
    v
}

pub(crate) fn circleci(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("CI", s("true")),
        ("CIRCLECI", s("true")),
        ("CIRCLE_BUILD_NUM", s("812")),
        ("CIRCLE_SHA1", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.push(("CIRCLE_BRANCH", s(name))),
        Build::Tag(tag) => v.push(("CIRCLE_TAG", s(tag))),
        Build::PullRequest(n, branch) => v.extend([
            ("CIRCLE_BRANCH", s(branch)),
            (
                "CIRCLE_PULL_REQUEST",
                format!("https://github.com/acme/app/pull/{n}"),
            ),
        ]),
    }
    v
}

pub(crate) fn bitbucket(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("CI", s("true")),
        ("BITBUCKET_BUILD_NUMBER", s("233")),
        ("BITBUCKET_COMMIT", s(sha)),
    ];
    match b {
        Build::Branch(name) => v.push(("BITBUCKET_BRANCH", s(name))),
        Build::Tag(tag) => v.push(("BITBUCKET_TAG", s(tag))),
        Build::PullRequest(n, branch) => v.extend([
            ("BITBUCKET_BRANCH", s(branch)),
            ("BITBUCKET_PR_ID", s(n)),
            ("BITBUCKET_PR_DESTINATION_BRANCH", s("main")),
        ]),
    }
    v
}

pub(crate) fn buildkite(b: Build, sha: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("CI", s("true")),
        ("BUILDKITE", s("true")),
        ("BUILDKITE_BUILD_NUMBER", s("59")),
        ("BUILDKITE_COMMIT", s(sha)),
        ("BUILDKITE_SOURCE", s("webhook")),
    ];
    match b {
        Build::Branch(name) => v.extend([
            ("BUILDKITE_BRANCH", s(name)),
            ("BUILDKITE_TAG", s("")),
            ("BUILDKITE_PULL_REQUEST", s("false")),
        ]),
        Build::Tag(tag) => v.extend([
            ("BUILDKITE_BRANCH", s(tag)),
            ("BUILDKITE_TAG", s(tag)),
            ("BUILDKITE_PULL_REQUEST", s("false")),
        ]),
        Build::PullRequest(n, branch) => v.extend([
            ("BUILDKITE_BRANCH", s(branch)),
            ("BUILDKITE_TAG", s("")),
            ("BUILDKITE_PULL_REQUEST", s(n)),
            ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", s("main")),
        ]),
    }
    v
}

const CIS: [Ci; 7] = [
    Ci {
        name: "codebuild",
        vars: codebuild,
        build_id: "42",
    },
    Ci {
        name: "cloud-build",
        vars: cloud_build,
        build_id: "f2b3c0de11114a4a9b9b0123456789ab",
    },
    Ci {
        name: "azure",
        vars: azure,
        build_id: "1234",
    },
    Ci {
        name: "jenkins",
        vars: jenkins,
        build_id: "7",
    },
    Ci {
        name: "circleci",
        vars: circleci,
        build_id: "812",
    },
    Ci {
        name: "bitbucket",
        vars: bitbucket,
        build_id: "233",
    },
    Ci {
        name: "buildkite",
        vars: buildkite,
        build_id: "59",
    },
];

/// The tags `tagguard tags` prints under `ci` for `build` of `repo`'s HEAD.
fn tags(repo: &Repo, ci: &Ci, build: Build, extra: &[&str]) -> Vec<String> {
    let vars = (ci.vars)(build, &repo.head());
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .args(extra)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .run();
    assert_eq!(run.code, 0, "{}: {}", ci.name, run.stderr);
    run.lines().into_iter().map(str::to_owned).collect()
}

#[test]
fn a_branch_build_gets_the_build_tag() {
    let repo = Repo::new();
    repo.detach();
    let sha = format!("sha-{}", &repo.head()[..7]);
    for ci in &CIS {
        assert_eq!(
            tags(&repo, ci, Build::Branch("main"), &[]),
            [sha.clone(), format!("20240102030405-{}", ci.build_id)],
            "{}",
            ci.name
        );
    }
}

#[test]
fn a_tag_build_gets_the_release_tags() {
    let repo = Repo::new();
    repo.annotated_tag("v1.2.3").detach();
    for ci in &CIS {
        let got = tags(&repo, ci, Build::Tag("v1.2.3"), &[]);
        for want in ["1.2.3", "1.2", "1", "latest"] {
            assert!(got.iter().any(|t| t == want), "{}: {got:?}", ci.name);
        }
    }
}

#[test]
fn a_branch_build_of_a_tagged_commit_gets_no_release_tags() {
    let repo = Repo::new();
    repo.annotated_tag("v1.2.3").detach();
    let sha = format!("sha-{}", &repo.head()[..7]);
    for ci in &CIS {
        assert_eq!(
            tags(&repo, ci, Build::Branch("main"), &[]),
            [sha.clone(), format!("20240102030405-{}", ci.build_id)],
            "{}",
            ci.name
        );
    }
}

#[test]
fn a_pull_request_build_gets_pr_n_with_the_metadata_action_preset() {
    let repo = Repo::new();
    repo.detach();
    let preset = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/metadata-action.yml");
    for ci in &CIS {
        assert_eq!(
            tags(
                &repo,
                ci,
                Build::PullRequest("5", "fix/x"),
                &["--policy", preset]
            ),
            ["pr-5"],
            "{}",
            ci.name
        );
        // The same preset on a tag build: the tag and latest, no branch tag.
        let tagged = Repo::new();
        tagged.annotated_tag("v2.0.0").detach();
        assert_eq!(
            tags(&tagged, ci, Build::Tag("v2.0.0"), &["--policy", preset]),
            ["v2.0.0", "latest"],
            "{}",
            ci.name
        );
    }
}

#[test]
fn cloud_build_without_automapped_substitutions_says_so() {
    let repo = Repo::new();
    let run = tagguard(repo.path())
        .args(["tags", STAMP])
        .env("BUILDER_OUTPUT", "/builder/outputs")
        .run()
        .success();
    assert!(
        run.stderr.contains("automapSubstitutions: true"),
        "{}",
        run.stderr
    );
    assert_eq!(run.lines(), [format!("sha-{}", &repo.head()[..7])]);
}

/// `tags --format json` says what tagguard took from each CI.
#[test]
fn the_json_says_what_the_ci_said() {
    let repo = Repo::new();
    repo.detach();
    let kinds = [
        "codebuild",
        "cloudbuild",
        "azure",
        "jenkins",
        "circleci",
        "bitbucket",
        "buildkite",
    ];
    for (ci, kind) in CIS.iter().zip(kinds) {
        let vars = (ci.vars)(Build::PullRequest("5", "fix/x"), &repo.head());
        let run = tagguard(repo.path())
            .args(["tags", STAMP, "--format", "json"])
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .run()
            .success();
        let got = &run.json()["ci"];
        assert_eq!(got["kind"], kind, "{}: {got}", ci.name);
        assert_eq!(got["ref_kind"], "pull-request", "{}: {got}", ci.name);
        assert_eq!(got["pr_number"], "5", "{}: {got}", ci.name);
        assert_eq!(got["branch"], "fix/x", "{}: {got}", ci.name);
        assert_eq!(got["build_id"], ci.build_id, "{}: {got}", ci.name);
        if ci.name != "circleci" {
            assert_eq!(got["pr_target"], "main", "{}: {got}", ci.name);
        }
    }
}
