//! Bare repositories to push to, and git runs that may fail (a refused push is the point).

use std::path::{Path, PathBuf};

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
    let out = super::git::git_command(dir, args)
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
