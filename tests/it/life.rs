//! The invariant, tested: tagguard agrees with itself. The embedded default, every shipped
//! policy (`policies/*.yml`) and every policy example in README.md and docs/ (read out of the
//! files, run exactly as written: every `yaml` code fence with a `version: 1` line) lives
//! through a whole CI life — a branch build; the release tag on the same commit; a re-run of
//! the tag build with a fresh build; a pre-release; a pull request; a scheduled and a manual
//! build — on GitHub's and on GitLab's variables, built the README's way (`docker build`, no
//! labels, then `push --source docker:…`) and with the labels of `tags --format json`. Every
//! push exits 0 with no finding, and `tagguard audit` afterwards exits 0 with no finding.
//!
//! One registry process for every cell; each cell its own git repository and repository in the
//! registry; `FROM scratch` images through the real Docker engine; a few cells at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::support::cmd::tagguard;
use crate::support::git::Repo;
use crate::support::registry::{Mode, Registry};

/// A policy to live through: its name in messages, and its text (`None`: the embedded
/// default).
struct Example {
    name: String,
    text: Option<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every policy example in a Markdown file: the `yaml` fences with a `version: 1` line (a
/// comment may follow), named
/// `FILE:LINE` (the line of the fence).
fn fenced(file: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<&str>)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut open {
            None if fence.starts_with("```yaml") => open = Some((n + 1, Vec::new())),
            Some((at, body)) if fence.starts_with("```") => {
                // A fence indented in a list item: its body is indented as much.
                let indent = line.len() - fence.len();
                let body: Vec<&str> = body
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or("").trim_end())
                    .collect();
                let policy = |l: &&str| l.split('#').next().unwrap().trim_end() == "version: 1";
                if body.iter().any(policy) {
                    out.push(Example {
                        name: format!("{file}:{at}"),
                        text: Some(body.join("\n") + "\n"),
                    });
                }
                open = None;
            }
            Some((_, body)) => body.push(line),
            None => {}
        }
    }
    out
}

fn examples() -> Vec<Example> {
    let mut out = vec![Example {
        name: "the embedded default".into(),
        text: None,
    }];
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    for path in files {
        out.push(Example {
            name: format!("policies/{}", path.file_name().unwrap().to_string_lossy()),
            text: Some(std::fs::read_to_string(&path).unwrap()),
        });
    }
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md"))
        .collect();
    docs.sort();
    for file in std::iter::once("README.md".to_owned()).chain(docs) {
        out.extend(fenced(&file));
    }
    out
}

/// The git tag of `version` under the example's `release.git-tag` (default `v{version}`).
fn release_tag(example: &Example, version: &str) -> String {
    let pattern = example
        .text
        .as_deref()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let rest = l.trim().strip_prefix("git-tag:")?.trim();
                Some(rest.split('"').nth(1)?.to_owned())
            })
        })
        .unwrap_or_else(|| "v{version}".to_owned());
    pattern.replace("{version}", version)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ci {
    GitHub,
    GitLab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// The README's: `docker build -t app .`, no labels.
    Plain,
    /// With the labels `tagguard tags --format json` gives.
    Labelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Branch,
    Tag,
    PullRequest,
    Schedule,
    Manual,
}

/// One CI run of the life.
struct Step {
    name: &'static str,
    event: Event,
    /// The commit checked out (detached, as CI checks out).
    sha: String,
    /// The branch or tag the run is for.
    git_ref: String,
    run: u32,
    attempt: u32,
}

/// The variables a CI sets for `step` (empty ones included, as GitHub sets them).
fn ci_env(ci: Ci, step: &Step) -> Vec<(String, String)> {
    let run = step.run.to_string();
    let mut env: Vec<(&str, String)> = vec![("CI", "true".into())];
    match ci {
        Ci::GitHub => {
            let (event, full, kind) = match step.event {
                Event::Branch => ("push", format!("refs/heads/{}", step.git_ref), "branch"),
                Event::Tag => ("push", format!("refs/tags/{}", step.git_ref), "tag"),
                Event::PullRequest => ("pull_request", "refs/pull/7/merge".into(), "branch"),
                Event::Schedule => ("schedule", "refs/heads/main".into(), "branch"),
                Event::Manual => ("workflow_dispatch", "refs/heads/main".into(), "branch"),
            };
            let pr = step.event == Event::PullRequest;
            env.extend([
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_SERVER_URL", "https://github.com".into()),
                ("GITHUB_REPOSITORY", "acme/app".into()),
                ("GITHUB_SHA", step.sha.clone()),
                ("GITHUB_EVENT_NAME", event.into()),
                ("GITHUB_REF_NAME", full.rsplit('/').next().unwrap().into()),
                ("GITHUB_REF", full),
                ("GITHUB_REF_TYPE", kind.into()),
                ("GITHUB_HEAD_REF", if pr { "feature" } else { "" }.into()),
                ("GITHUB_BASE_REF", if pr { "main" } else { "" }.into()),
                ("GITHUB_RUN_ID", format!("{}", 9_000_000 + step.run)),
                ("GITHUB_RUN_NUMBER", run),
                ("GITHUB_RUN_ATTEMPT", step.attempt.to_string()),
            ]);
        }
        Ci::GitLab => {
            env.extend([
                ("GITLAB_CI", "true".into()),
                ("CI_SERVER_URL", "https://gitlab.com".into()),
                ("CI_PROJECT_URL", "https://gitlab.com/acme/app".into()),
                ("CI_COMMIT_SHA", step.sha.clone()),
                ("CI_COMMIT_SHORT_SHA", step.sha[..8].into()),
                ("CI_COMMIT_REF_NAME", step.git_ref.clone()),
                ("CI_PIPELINE_ID", format!("{}", 500_000 + step.run)),
                ("CI_PIPELINE_IID", run),
                (
                    "CI_JOB_ID",
                    format!("{}", 700_000 + step.run * 10 + step.attempt),
                ),
                ("CI_DEFAULT_BRANCH", "main".into()),
            ]);
            let source = match step.event {
                Event::Branch | Event::Tag => "push",
                Event::PullRequest => "merge_request_event",
                Event::Schedule => "schedule",
                Event::Manual => "web",
            };
            env.push(("CI_PIPELINE_SOURCE", source.into()));
            match step.event {
                Event::Tag => env.push(("CI_COMMIT_TAG", step.git_ref.clone())),
                Event::PullRequest => env.extend([
                    ("CI_MERGE_REQUEST_IID", "7".into()),
                    ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature".into()),
                    ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main".into()),
                ]),
                _ => env.push(("CI_COMMIT_BRANCH", step.git_ref.clone())),
            }
        }
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The commits and runs of a whole life, made in `repo` as the life goes on.
fn steps(repo: &Repo, example: &Example, ci: Ci) -> Vec<Step> {
    let release = release_tag(example, "1.2.3");
    let prerelease = release_tag(example, "1.3.0-rc.1");
    let step = |name, event, sha: &str, git_ref: &str, run, attempt| Step {
        name,
        event,
        sha: sha.to_owned(),
        git_ref: git_ref.to_owned(),
        run,
        attempt,
    };
    repo.write("app.txt", "app 1\n");
    let c1 = repo.commit("app 1");
    repo.tag(&release);
    repo.write("app.txt", "app 2\n");
    let c2 = repo.commit("app 2");
    repo.tag(&prerelease);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.txt", "feature\n");
    let c3 = repo.commit("feature");
    repo.git(&["checkout", "-q", "--detach", &c2]);
    repo.git(&["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"]);
    // GitHub builds the merge commit of a pull request; GitLab the branch's head.
    let pr = match ci {
        Ci::GitHub => repo.head(),
        Ci::GitLab => c3,
    };
    vec![
        step("branch build", Event::Branch, &c1, "main", 1, 1),
        step("release tag", Event::Tag, &c1, &release, 2, 1),
        step("re-run of the tag", Event::Tag, &c1, &release, 2, 2),
        step("pre-release", Event::Tag, &c2, &prerelease, 3, 1),
        step("pull request", Event::PullRequest, &pr, "feature", 4, 1),
        step("schedule", Event::Schedule, &c2, "main", 5, 1),
        step("manual", Event::Manual, &c2, "main", 6, 1),
    ]
}

fn docker(config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One cell of the matrix: an example, a CI, a way to build.
struct Cell<'a> {
    example: &'a Example,
    ci: Ci,
    build: Build,
    /// The image repository in the shared registry.
    image: String,
}

impl Cell<'_> {
    fn name(&self) -> String {
        format!("{} / {:?} / {:?}", self.example.name, self.ci, self.build)
    }

    /// The whole life; the first thing that breaks the invariant, said in full.
    fn live(&self, dir: &Path) -> Result<(), String> {
        let config = dir.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let repo = Repo::new();
        if let Some(text) = &self.example.text {
            repo.write(".tagguard.yml", text);
            repo.commit("policy");
        }
        let mut built = Vec::new();
        let result = self.steps(&repo, dir, &config, &mut built);
        for name in built {
            let _ = docker(&config, &["rmi", "-f", &name]);
        }
        // The engine tagged the build with every tag it pushed.
        if let Ok(refs) = docker(
            &config,
            &[
                "image",
                "ls",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                &self.image,
            ],
        ) {
            for r in refs.lines() {
                let _ = docker(&config, &["rmi", "-f", r]);
            }
        }
        result?;
        let audit = tagguard(repo.path())
            .args(["audit", "--image", &self.image, "--format", "json"])
            .run();
        let report: serde_json::Value = serde_json::from_str(&audit.stdout)
            .map_err(|e| format!("audit: {e}: {}\n{}", audit.stdout, audit.stderr))?;
        if audit.code != 0 || report["findings"] != serde_json::json!([]) {
            return Err(format!(
                "audit after the life exited {}: {:#}\n{}",
                audit.code, report["findings"], audit.stderr
            ));
        }
        Ok(())
    }

    fn steps(
        &self,
        repo: &Repo,
        dir: &Path,
        config: &Path,
        built: &mut Vec<String>,
    ) -> Result<(), String> {
        for (n, step) in steps(repo, self.example, self.ci).iter().enumerate() {
            repo.git(&["checkout", "-q", "--detach", &step.sha]);
            let env = ci_env(self.ci, step);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
            let time = (1_700_000_000 + n * 600).to_string();
            let labels = match self.build {
                Build::Plain => BTreeMap::new(),
                Build::Labelled => {
                    let tags = tagguard(repo.path())
                        .envs(env.iter().copied())
                        .args(["tags", "--format", "json", "--image", &self.image])
                        .args(["--timestamp", &time])
                        .run();
                    if tags.code != 0 {
                        return Err(format!(
                            "{}: tags exited {}: {}",
                            step.name, tags.code, tags.stderr
                        ));
                    }
                    serde_json::from_str::<serde_json::Value>(&tags.stdout).unwrap()["labels"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                }
            };
            let name = format!("tagguard-life-{:08x}", fastrand::u32(..));
            build(dir, config, &name, &format!("{} {n}", self.name()), &labels)?;
            built.push(name.clone());
            let push = tagguard(repo.path())
                .envs(env.iter().copied())
                .env("DOCKER_CONFIG", config)
                .args(["push", "--source", &format!("docker:{name}")])
                .args(["--image", &self.image, "--timestamp", &time])
                .args(["--format", "json"])
                .run();
            let report: serde_json::Value = serde_json::from_str(&push.stdout)
                .map_err(|e| format!("{}: push: {e}: {}", step.name, push.stderr))?;
            let findings: Vec<&serde_json::Value> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                // A build the policy gives no tag (a strict policy's branch build) is fine.
                .filter(|f| f["code"] != "tagguard::check::no_tags")
                .collect();
            if push.code != 0 || !findings.is_empty() {
                return Err(format!(
                    "{} ({}): push exited {}: {findings:#?}\n{}",
                    step.name, step.git_ref, push.code, push.stderr
                ));
            }
        }
        Ok(())
    }
}

/// A fresh `FROM scratch` build (never reproducible: `nonce` differs every time).
fn build(
    dir: &Path,
    config: &Path,
    name: &str,
    nonce: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    let context = dir.join(name);
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("nonce.txt"), nonce).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY nonce.txt /nonce.txt\n",
    )
    .unwrap();
    // --no-cache: the legacy builder's cache lookup walks every image and fails ("unable to
    // find image") when a concurrent `docker rmi` (other cells, other tests) removes one.
    let mut args = vec![
        "build".to_owned(),
        "-q".into(),
        "--no-cache".into(),
        "-t".into(),
        name.into(),
    ];
    for (k, v) in labels {
        args.extend(["--label".to_owned(), format!("{k}={v}")]);
    }
    args.push(context.to_string_lossy().into_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(config, &args).map(drop)
}

/// Cells run at once: the Docker engine, the registry and tagguard share 2 cores.
const AT_ONCE: usize = 3;

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the matrix's duration is a figure to report (`--no-capture`)"
)]
fn every_example_lives_through_a_whole_ci_life_and_audits_clean() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|e| e.name.as_str()).collect();
    // The examples are found where they are written: a renamed or lost fence fails here.
    for expected in [
        "policies/default.yml",
        "policies/gitlab.yml",
        "policies/metadata-action.yml",
        "policies/monorepo-api.yml",
        "policies/strict-release-only.yml",
    ] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("README.md:"))
            && names.iter().any(|n| n.starts_with("docs/policy.md:")),
        "{names:?}"
    );
    let registry = Registry::start(Mode::Plain);
    let mut cells = Vec::new();
    for example in &examples {
        for ci in [Ci::GitHub, Ci::GitLab] {
            for build in [Build::Plain, Build::Labelled] {
                let image = format!("{}/life/cell-{}", registry.host, cells.len());
                cells.push(Cell {
                    example,
                    ci,
                    build,
                    image,
                });
            }
        }
    }
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE {
            s.spawn(|| {
                while let Some(cell) = cells.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let dir = tempfile::tempdir().unwrap();
                    if let Err(e) = cell.live(dir.path()) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e}", cell.name()));
                    }
                }
            });
        }
    });
    eprintln!(
        "{} cells ({} examples × 2 CIs × 2 builds, 7 runs each) in {:.1} s",
        cells.len(),
        examples.len(),
        started.elapsed().as_secs_f64()
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cells broke the invariant:\n\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n\n")
    );
}
