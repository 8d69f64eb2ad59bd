//! Every GitHub Actions workflow written in README.md and docs/ (a ```yaml block that uses
//! `tagguard/tagguard@`) run by act as written, against a real registry on loopback, for the
//! events its `on:` names. [`KNOWN`] says which test runs which block; a block it does not
//! list fails [`every_doc_workflow_is_run_by_a_test`], naming its file and line.
//!
//! What differs from the doc, each kept to the minimum (see [`prepared`] and [`doc_act`]):
//! - `uses: tagguard/tagguard@<ref>` runs this checkout's `action.yml` (act's
//!   `--local-repository`; the text is unchanged), with the test's tagguard first on PATH, so
//!   the action uses it and nothing compiles;
//! - the registry hosts `ghcr.io` and `registry.example.com` become the test's registry;
//! - a block that is only steps (or `permissions:` and `steps:`) is put in a job `doc` on
//!   `ubuntu-latest`, run on `push`;
//! - secrets and the actor are given to act (`-s`, `--actor`): the registry's password, its user;
//! - stand-ins (act's `--local-repository`, `tests/workflows/doc-stand-ins/`):
//!   `docker/build-push-action` (needs BuildKit) builds a `FROM scratch` image with the legacy
//!   builder and pushes it; `docker/login-action` runs `docker login`;
//! - `DOCKER_BUILDKIT=0` in the runner's environment, so a `docker build` in a `run:` step uses
//!   the legacy builder (BuildKit is not here).

use std::path::{Path, PathBuf};

use crate::support::act::{Act, ActRun, source_root};
use crate::support::cmd::push;
use crate::support::git::Repo;
use crate::support::github_packages::{GitHubPackages, Packages};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

/// Each doc workflow: its file, a text only that block of the file holds (`^text`: the block
/// starts with it), and the test that runs it.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "^- uses: tagguard/tagguard@",
        "readme_install_step",
    ),
    ("README.md", "source: docker:app", "readme_workflow"),
    (
        "docs/github-actions.md",
        "steps.meta.outputs.tags",
        "github_actions_tags_for_build_push",
    ),
    (
        "docs/github-actions.md",
        "steps.build.outputs.digest",
        "github_actions_push_by_digest",
    ),
    ("docs/audit.md", "command: audit", "audit_nightly"),
    ("docs/prune.md", "docker login ghcr.io", "prune_ghcr"),
    (
        "docs/prune.md",
        "docker login registry.example.com",
        "prune_nightly",
    ),
];

/// Actions a doc workflow may use besides tagguard's: `actions/checkout` (act checks out the
/// repository itself) and the stand-ins, by the directory under `tests/workflows/doc-stand-ins`.
const STAND_INS: &[(&str, &str)] = &[
    ("docker/login-action", "login-action"),
    ("docker/build-push-action", "build-push-action"),
];

const REGISTRY_HOSTS: &[&str] = &["ghcr.io", "registry.example.com"];

#[derive(Debug)]
struct DocWorkflow {
    file: String,
    line: usize,
    text: String,
}

impl DocWorkflow {
    fn holds(&self, file: &str, marker: &str) -> bool {
        self.file == file
            && match marker.strip_prefix('^') {
                Some(start) => self.text.starts_with(start),
                None => self.text.contains(marker),
            }
    }

    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Every ```yaml block in README.md and docs/**/*.md that uses `tagguard/tagguard@`.
fn doc_workflows() -> Vec<DocWorkflow> {
    let mut files = vec![source_root().join("README.md")];
    markdown_under(&source_root().join("docs"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let markdown =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path
            .strip_prefix(source_root())
            .unwrap()
            .display()
            .to_string();
        let mut block: Option<(usize, String)> = None;
        for (n, line) in markdown.lines().enumerate() {
            match &mut block {
                None if line.trim_start().starts_with("```yaml") => {
                    block = Some((n + 2, String::new()))
                }
                Some((start, text)) if line.trim_start().starts_with("```") => {
                    if text.contains("uses: tagguard/tagguard@") {
                        found.push(DocWorkflow {
                            file: file.clone(),
                            line: *start,
                            text: std::mem::take(text),
                        });
                    }
                    block = None;
                }
                Some((_, text)) => {
                    text.push_str(line);
                    text.push('\n');
                }
                None => {}
            }
        }
        assert!(block.is_none(), "{file}: a ```yaml block is never closed");
    }
    found
}

fn markdown_under(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_under(&path, files);
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
}

/// The block of `file` that holds `marker`; exactly one must.
fn doc(file: &str, marker: &str) -> DocWorkflow {
    let mut matching: Vec<_> = doc_workflows()
        .into_iter()
        .filter(|w| w.holds(file, marker))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{file}: {} workflows hold {marker:?}, expected one: {matching:#?}",
        matching.len()
    );
    matching.remove(0)
}

#[test]
fn every_doc_workflow_is_run_by_a_test() {
    let workflows = doc_workflows();
    for w in &workflows {
        let runners: Vec<_> = KNOWN
            .iter()
            .filter(|(file, marker, _)| w.holds(file, marker))
            .collect();
        assert!(
            !runners.is_empty(),
            "{}: a workflow that uses tagguard/tagguard@ that no test runs: add it to KNOWN \
             in tests/it/action/docs.rs with a test that runs it with act:\n{}",
            w.at(),
            w.text
        );
        assert_eq!(runners.len(), 1, "{}: run by {runners:?}", w.at());
        for uses in uses_of(&w.text) {
            let name = uses.split('@').next().unwrap();
            assert!(
                name == "tagguard/tagguard"
                    || name == "actions/checkout"
                    || STAND_INS.iter().any(|(n, _)| *n == name),
                "{}: uses {uses}, which act cannot run here: add a stand-in to STAND_INS \
                 in tests/it/action/docs.rs",
                w.at()
            );
        }
    }
    for (file, marker, test) in KNOWN {
        let held = workflows.iter().filter(|w| w.holds(file, marker)).count();
        assert_eq!(
            held, 1,
            "{file}: {held} workflows hold {marker:?}; {test} runs the one that did"
        );
    }
}

/// Every `uses:` of the workflow.
fn uses_of(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once("uses: ").map(|(_, u)| u))
        .map(|u| u.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

/// The doc's workflow with the registry hosts replaced by `host`, put in a job when it is
/// only steps.
fn prepared(w: &DocWorkflow, host: &str) -> String {
    let mut text = w.text.clone();
    for from in REGISTRY_HOSTS {
        text = text.replace(from, host);
    }
    if text.lines().any(|l| l.starts_with("jobs:")) {
        return text;
    }
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let top_level_steps = text.lines().any(|l| l.starts_with("steps:"));
    let (head, by) = if top_level_steps {
        ("", 4)
    } else {
        ("    steps:\n", 6)
    };
    let mut wrapped = format!("on: push\njobs:\n  doc:\n    runs-on: ubuntu-latest\n{head}");
    for line in text.lines() {
        let line = line.get(indent..).unwrap_or("");
        if !line.is_empty() {
            wrapped.push_str(&" ".repeat(by));
            wrapped.push_str(line);
        }
        wrapped.push('\n');
    }
    wrapped
}

/// The action's files act runs for `uses: tagguard/tagguard@<ref>`.
fn action_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for item in [
        "action.yml",
        "release-checksums.sha256",
        "scripts/install-release.sh",
    ] {
        let to = dir.path().join(item);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(source_root().join(item), &to)
            .unwrap_or_else(|e| panic!("copying {item}: {e}"));
    }
    dir
}

/// act set up to run `w` against the registry at `host`: the test's tagguard first on PATH,
/// this checkout's action for `tagguard/tagguard@<ref>`, the stand-ins, the registry's user
/// as the actor and its password as the job's token.
struct DocRun {
    act: Act,
    _bin: tempfile::TempDir,
    _action: tempfile::TempDir,
}

fn doc_act(w: &DocWorkflow, host: &str, event: &str) -> DocRun {
    let text = prepared(w, host);
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagguard"), bin.path().join("tagguard"))
        .unwrap();
    let action = action_copy();
    let mut act = Act::workflow_text("doc.yml", &text)
        .path_first(bin.path())
        .actor(USER)
        .secret("GITHUB_TOKEN", PASSWORD)
        .secret("REGISTRY_PASSWORD", PASSWORD)
        .env("DOCKER_BUILDKIT", "0")
        .event_name(event);
    for uses in uses_of(&text) {
        let name = uses.split('@').next().unwrap();
        if name == "tagguard/tagguard" {
            act = act.local_action(&uses, action.path());
        } else if let Some((_, dir)) = STAND_INS.iter().find(|(n, _)| *n == name) {
            let dir = source_root()
                .join("tests/workflows/doc-stand-ins")
                .join(dir);
            act = act.local_action(&uses, &dir);
        }
    }
    DocRun {
        act,
        _bin: bin,
        _action: action,
    }
}

impl DocRun {
    fn run(&self, w: &DocWorkflow) -> ActRun {
        let run = self.act.run();
        assert!(run.ok, "{}: act failed:\n{}", w.at(), run.log);
        assert!(run.log.contains("Job succeeded"), "{}", run.log);
        assert!(
            !run.log.contains(PASSWORD),
            "the password leaked:\n{}",
            run.log
        );
        assert!(
            run.log.contains("is on PATH already: not installing"),
            "{}",
            run.log
        );
        run
    }
}

/// The value act logs for an output the tagguard step set (`::set-output:: name=value`, a
/// multi-line value up to the next log line).
fn output(run: &ActRun, name: &str) -> String {
    let key = format!("::set-output:: {name}=");
    let (_, rest) = run
        .log
        .split_once(&key)
        .unwrap_or_else(|| panic!("no output {name}:\n{}", run.log));
    match rest.find("\n[") {
        Some(end) => rest[..end].to_owned(),
        None => rest.trim_end().to_owned(),
    }
}

/// Every tag of `repo` points at one digest: the tags pushed for one build.
fn one_digest(r: &Registry, repo: &str, tags: &[&str]) -> String {
    let digests: Vec<_> = tags
        .iter()
        .map(|t| {
            r.digest_of(repo, t).unwrap_or_else(|| {
                panic!("{repo}:{t} is not in the registry: {:?}", r.tags_of(repo))
            })
        })
        .collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    digests[0].clone()
}

/// README's install step, alone in a job on a branch push: `tags`, the default command, with
/// the embedded policy: the commit's tag.
#[test]
fn readme_install_step() {
    let w = doc("README.md", "^- uses: tagguard/tagguard@");
    let d = doc_act(&w, "registry.invalid", "push");
    let run = d.run(&w);
    let short = &d.act.repo.head()[..7];
    let tags = output(&run, "tags");
    let tags: Vec<_> = tags.lines().collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert_eq!(tags[0], format!("sha-{short}"));
    assert!(tags[1].ends_with("-1"), "the build tag: {tags:?}");
}

/// README's workflow (`on: push`): `docker build`, `docker login`, then `push` with
/// `source: docker:app` through the engine; a branch build, a release tag, its re-run.
#[test]
fn readme_workflow() {
    let w = doc("README.md", "source: docker:app");
    let r = Registry::start(Mode::Basic);
    let d = doc_act(&w, &r.host, "push");
    d.act
        .repo
        .write("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n")
        .write("hello.txt", "tagguard docs\n");
    d.act.repo.commit("an image to build");
    d.run(&w);
    let short = d.act.repo.head()[..7].to_owned();
    one_digest(&r, "acme/app", &[&format!("sha-{short}")]);
    assert!(
        r.digest_of("acme/app", "latest").is_none(),
        "a branch build is no release"
    );

    d.act.repo.write("hello.txt", "tagguard docs 1.2.3\n");
    d.act.repo.commit("release 1.2.3");
    d.act.repo.tag("v1.2.3");
    d.run(&w);
    let short = d.act.repo.head()[..7].to_owned();
    let release = ["1.2.3", "1.2", "1", "latest", &format!("sha-{short}")];
    let released = one_digest(&r, "acme/app", &release);

    // A re-run of the release: the same image is built again, the release's tags stay as they
    // are, and the run succeeds.
    let run = d.run(&w);
    assert_eq!(one_digest(&r, "acme/app", &release), released);
    assert_eq!(output(&run, "refused"), "false");
    let decisions: serde_json::Value = serde_json::from_str(&output(&run, "decisions")).unwrap();
    let unchanged = decisions["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "unchanged")
        .count();
    assert_eq!(unchanged, release.len(), "{decisions}");
}

/// docs/github-actions.md: tags from the action, pushed by docker/build-push-action (its
/// stand-in), on a release tag.
#[test]
fn github_actions_tags_for_build_push() {
    let w = doc("docs/github-actions.md", "steps.meta.outputs.tags");
    let r = Registry::start(Mode::Basic);
    let d = doc_act(&w, &r.host, "push");
    d.act.repo.tag("v1.4.2");
    let run = d.run(&w);
    let short = d.act.repo.head()[..7].to_owned();
    one_digest(
        &r,
        "acme/app",
        &["1.4.2", "1.4", "1", "latest", &format!("sha-{short}")],
    );
    assert!(
        output(&run, "labels").contains("org.opencontainers.image.version=1.4.2"),
        "{}",
        run.log
    );
}

/// docs/github-actions.md: the build pushed under a scratch tag, then `command: push` of its
/// digest with credentials from the environment, on a release tag.
#[test]
fn github_actions_push_by_digest() {
    let w = doc("docs/github-actions.md", "steps.build.outputs.digest");
    // The block starts at the build (the login before it is not shown): a registry without auth.
    let r = Registry::start(Mode::Plain);
    let d = doc_act(&w, &r.host, "push");
    d.act.repo.tag("v1.4.2");
    d.run(&w);
    let scratch = r.tags_of("acme/app/build");
    assert_eq!(scratch.len(), 1, "{scratch:?}");
    let built = r.digest_of("acme/app/build", &scratch[0]).unwrap();
    let short = d.act.repo.head()[..7].to_owned();
    let pushed = one_digest(
        &r,
        "acme/app",
        &["1.4.2", "1.4", "1", "latest", &format!("sha-{short}")],
    );
    assert_eq!(pushed, built);
}

/// docs/audit.md: the nightly audit (`on: schedule`) of the images in `.tagguard.yml`, after a
/// release tagguard pushed: clean.
#[test]
fn audit_nightly() {
    let w = doc("docs/audit.md", "command: audit");
    let r = Registry::start(Mode::Basic);
    let d = doc_act(&w, &r.host, "schedule");
    let image = format!("{}/acme/app", r.host);
    let repo: &Repo = &d.act.repo;
    // The embedded default policy, naming the image.
    let default = std::fs::read_to_string(source_root().join("policies/default.yml")).unwrap();
    let policy = default.replacen("version: 1\n", &format!("version: 1\nimage: {image}\n"), 1);
    assert_ne!(
        policy, default,
        "policies/default.yml starts with `version: 1`"
    );
    repo.write(".tagguard.yml", &policy);
    repo.commit("policy");
    repo.tag("v2.0.0");
    let built = Image::with_labels(serde_json::json!({
        "org.opencontainers.image.version": "2.0.0",
        "org.opencontainers.image.revision": repo.head(),
    }));
    let digest = r.seed(&built, "acme/app", "build");
    push(repo, &image, &format!("{image}@{digest}"))
        .args(["--git-tag", "v2.0.0"])
        .env("TAGGUARD_USERNAME", USER)
        .env("TAGGUARD_PASSWORD", PASSWORD)
        .run()
        .success();
    let run = d.run(&w);
    assert_eq!(output(&run, "clean"), "true", "{}", run.log);
    assert_eq!(output(&run, "findings"), "0", "{}", run.log);
    let report: serde_json::Value = serde_json::from_str(&output(&run, "report")).unwrap();
    assert_eq!(report["images"][0]["image"], image.as_str(), "{report}");
    assert_eq!(
        report["images"][0]["audited"], 5,
        "the release's five tags: {report}"
    );
}

/// A policy whose build tags keep the newest one, and three builds in `r`'s `acme/app`.
fn prunable(r: &Registry, repo: &Repo, image: &str) {
    repo.write(
        ".tagguard.yml",
        &format!(
            "version: 1\nimage: {image}\ntags:\n  - template: \"build-{{{{ build_number }}}}\"\n    \
             when: ci\n    immutable: false\n    retain: {{ newest: 1 }}\n"
        ),
    );
    repo.commit("policy");
    for (n, day) in [(1, 1), (2, 5), (3, 20)] {
        let created = format!("2026-01-{day:02}T00:00:00Z");
        r.seed(&Image::created(&created), "acme/app", &format!("build-{n}"));
    }
}

fn build_tags(r: &Registry) -> Vec<String> {
    let mut tags: Vec<String> = r
        .tags_of("acme/app")
        .into_iter()
        .filter(|t| t.starts_with("build-"))
        .collect();
    tags.sort();
    tags
}

/// docs/prune.md, nightly (`on: schedule`): `docker login`, then `prune` with `apply: true` of
/// the images in `.tagguard.yml`: the build tags past their retention are deleted.
#[test]
fn prune_nightly() {
    let w = doc("docs/prune.md", "docker login registry.example.com");
    // The doc logs in as `ci`; this registry takes any login (it has no users).
    let r = Registry::start_deleting(Mode::Plain);
    let d = doc_act(&w, &r.host, "schedule");
    prunable(&r, &d.act.repo, &format!("{}/acme/app", r.host));
    let run = d.run(&w);
    assert_eq!(build_tags(&r), ["build-3"], "{}", run.log);
}

/// docs/prune.md, GHCR (`on: schedule`): `prune` with `apply: true` deletes package versions
/// through GitHub's Packages API (its stub, in front of the registry; the registry's host is
/// taken for GHCR by `TAGGUARD_GHCR_HOSTS`, the stub is `GITHUB_API_URL`) with the job's token.
#[test]
fn prune_ghcr() {
    let w = doc("docs/prune.md", "docker login ghcr.io");
    let r = Registry::start_deleting(Mode::Plain);
    let api = GitHubPackages::start(Packages {
        registry: r.host.clone(),
        kind: "orgs",
        repository: "acme/app".into(),
        page_size: 100,
        token: PASSWORD.into(),
        read_only: None,
    });
    let mut d = doc_act(&w, &r.host, "schedule");
    d.act.set_env("TAGGUARD_GHCR_HOSTS", &r.host);
    d.act.set_env("GITHUB_API_URL", &api.api());
    prunable(&r, &d.act.repo, &format!("{}/acme/app", r.host));
    let run = d.run(&w);
    assert_eq!(build_tags(&r), ["build-3"], "{}", run.log);
    assert_eq!(api.deletes().len(), 2, "{:?}", api.deletes());
}
