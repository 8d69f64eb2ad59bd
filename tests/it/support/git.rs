//! Real git repositories made with the git CLI in temp dirs, with pinned authors and dates.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// 2024-01-02T03:04:05Z: the first commit's date; each later commit is a minute later.
pub const EPOCH: i64 = 1_704_164_645;

/// The one project: a repository whose second commit adds `policy` as `.tagguard.yml`.
pub fn project(policy: &str) -> Repo {
    let repo = Repo::new();
    repo.write(".tagguard.yml", policy);
    repo.commit("policy");
    repo
}

pub struct Repo {
    _dir: TempDir,
    root: PathBuf,
    clock: Cell<i64>,
}

impl Repo {
    /// A repository on branch `main` with one commit.
    pub fn new() -> Repo {
        let repo = Repo::empty();
        repo.commit("initial commit");
        repo
    }

    /// A repository with no commits.
    pub fn empty() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repo {
            root: dir.path().to_owned(),
            _dir: dir,
            clock: Cell::new(EPOCH),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Runs git with a clean, pinned environment and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args, self.clock.get())
    }

    pub fn write(&self, file: &str, content: &str) -> &Self {
        let path = self.path().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write file");
        self
    }

    /// Commits everything in the work tree (or nothing) and returns the new commit's hash.
    pub fn commit(&self, message: &str) -> String {
        self.clock.set(self.clock.get() + 60);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn tag(&self, name: &str) -> &Self {
        self.git(&["tag", name]);
        self
    }

    pub fn annotated_tag(&self, name: &str) -> &Self {
        self.git(&["tag", "-a", name, "-m", &format!("release {name}")]);
        self
    }

    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["checkout", "-q", "-b", name]);
        self
    }

    pub fn detach(&self) -> &Self {
        self.git(&["checkout", "-q", "--detach"]);
        self
    }

    /// `git clone --depth 1` of this repository at `branch` (or a tag), as CI checkouts do.
    pub fn shallow_clone(&self, branch: &str) -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("checkout");
        let url = format!("file://{}", self.path().display());
        let args = [
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            branch,
            &url,
            root.to_str().unwrap(),
        ];
        git_in(dir.path(), &args, self.clock.get());
        Repo {
            _dir: dir,
            root,
            clock: Cell::new(self.clock.get()),
        }
    }
}

/// git in `dir` with a cleared environment: no system or user config, pinned identities.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com");
    cmd
}

pub fn git_in(dir: &Path, args: &[&str], time: i64) -> String {
    let date = format!("@{time} +0000");
    let out = git_command(dir, args)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}
