//! Bare repositories to push to, and git runs that may fail (a refused push is the point).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::git::{EPOCH, Repo};

/// A bare repository in a temp dir, added to `repo` as remote `origin`.
pub struct Remote {
    _dir: TempDir,
    path: PathBuf,
}

impl Remote {
    pub fn for_repo(repo: &Repo) -> Remote {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("remote.git");
        super::git::git_in(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", path.to_str().unwrap()],
            EPOCH,
        );
        repo.git(&["remote", "add", "origin", path.to_str().unwrap()]);
        Remote { _dir: dir, path }
    }

    /// Every ref the remote has, with its object: `git ls-remote`.
    pub fn refs(&self) -> String {
        super::git::git_in(&self.path, &["ls-remote", "."], EPOCH)
    }
}

#[derive(Debug)]
pub struct GitRun {
    pub ok: bool,
    /// stdout and stderr together: hooks write to either (pre-commit to stdout).
    pub stderr: String,
}

/// Runs git like `Repo::git` but returns failure instead of panicking; `env` adds variables.
pub fn try_git(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GitRun {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .envs(env.iter().copied())
        .output()
        .expect("git runs");
    GitRun {
        ok: out.status.success(),
        stderr: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
