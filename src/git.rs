//! Facts about the commit being built, read from the local repository with libgit2.
//!
//! Works in shallow clones and detached HEADs, and in a checkout owned by another user (a CI
//! container that runs as its own user over a root-owned checkout): git's ownership check
//! guards against running what a planted repository configures (hooks, `core.fsmonitor`,
//! filter drivers), and tagguard runs nothing; it only reads. What stays guarded is reading the
//! wrong repository: one owned by someone other than the owner of the directory tagguard runs
//! in (a `.git` planted in a shared parent such as `/tmp`) is refused unless git's
//! `safe.directory` allows it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use git2::{ErrorCode, ObjectType, Oid, Repository, StatusOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitFacts {
    /// The work tree's root (where `.tagguard.yml` is looked for).
    pub root: PathBuf,
    pub sha: String,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    /// Names of the tags (annotated or lightweight) that point at HEAD, sorted.
    pub tags_at_head: Vec<String>,
    pub commit_time: DateTime<Utc>,
    /// Tracked files differ from HEAD (as `git describe --dirty` sees it; untracked files do
    /// not count).
    pub dirty: bool,
    /// The first changed tracked files (at most [`DIRTY_FILES_SHOWN`]), paths relative to
    /// the root, sorted as git lists them.
    pub dirty_files: Vec<String>,
    /// `remote.origin.url` with any credentials removed.
    pub origin_url: Option<String>,
}

/// How many changed files a dirty work tree names.
pub const DIRTY_FILES_SHOWN: usize = 10;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GitError {
    #[error(
        "the repository at {path} is owned by another user than the directory tagguard runs in, and git refuses to read it"
    )]
    #[diagnostic(
        code(tagguard::git::unsafe_repository),
        help(
            "run tagguard in a directory owned by the repository's owner, or, if you trust it, run: git config --global --add safe.directory {path}"
        )
    )]
    UnsafeOwner { path: String },
    #[error("the repository at {path} has no commits yet")]
    #[diagnostic(
        code(tagguard::git::no_commits),
        help("commit something first, or pass --sha")
    )]
    NoCommits { path: String },
    #[error("could not read the git repository at {path}: {message}")]
    #[diagnostic(code(tagguard::git::read))]
    Read { path: String, message: String },
}

/// Reads the facts of the repository containing `dir`; `Ok(None)` when `dir` is in none.
pub fn read(dir: &Path) -> Result<Option<GitFacts>, GitError> {
    let shown = dir.display().to_string();
    let repo = match Repository::discover(dir) {
        Ok(repo) => repo,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) if e.code() == ErrorCode::Owner => owned_by_another(dir)?,
        Err(e) => return Err(read_error(&shown, &e)),
    };
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    let path = root.display().to_string();
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => {
            return Err(GitError::NoCommits { path });
        }
        Err(e) => return Err(read_error(&path, &e)),
    };
    let commit = head.peel_to_commit().map_err(|e| read_error(&path, &e))?;
    let oid = commit.id();
    let branch = if head.is_branch() {
        head.shorthand().ok().map(str::to_owned)
    } else {
        None
    };
    let commit_time = DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
    let (dirty, dirty_files) = changes(&repo).map_err(|e| read_error(&path, &e))?;
    Ok(Some(GitFacts {
        sha: oid.to_string(),
        branch,
        tags_at_head: tags_pointing_at(&repo, oid).map_err(|e| read_error(&path, &e))?,
        commit_time,
        dirty,
        dirty_files,
        origin_url: repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(strip_credentials)),
        root,
    }))
}

/// Opens the repository of `dir`, which git's ownership check refused: when the repository
/// (its git directory and work tree) belongs to whoever owns `dir`, the checkout is one piece
/// and is read; else it is refused as git refuses it.
fn owned_by_another(dir: &Path) -> Result<Repository, GitError> {
    let refused = || GitError::UnsafeOwner {
        path: owner_path(dir),
    };
    let none: [&str; 0] = [];
    let git_dir = Repository::discover_path(dir, none).map_err(|_| refused())?;
    let owner = owner_of(dir).ok_or_else(refused)?;
    if owner_of(&git_dir) != Some(owner) {
        return Err(refused());
    }
    let repo =
        open_unchecked(&git_dir).map_err(|e| read_error(&git_dir.display().to_string(), &e))?;
    match repo.workdir() {
        Some(root) if owner_of(root) != Some(owner) => Err(refused()),
        _ => Ok(repo),
    }
}

#[cfg(unix)]
fn owner_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn owner_of(_: &Path) -> Option<u32> {
    None
}

/// Serializes [`open_unchecked`]: libgit2's ownership switch is one process-wide flag.
static UNCHECKED: Mutex<()> = Mutex::new(());

/// Opens `git_dir` without libgit2's ownership check, which is back on before this returns.
#[allow(unsafe_code)]
fn open_unchecked(git_dir: &Path) -> Result<Repository, git2::Error> {
    let _only_one = UNCHECKED.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the flag is a plain global that libgit2 reads only while opening a repository.
    // tagguard opens repositories on one thread (context gathering, hook install; never two at
    // once), and the lock keeps two of these openings apart; the flag is restored below.
    unsafe { git2::opts::set_verify_owner_validation(false)? };
    let repo = Repository::open(git_dir);
    // SAFETY: as above.
    unsafe { git2::opts::set_verify_owner_validation(true)? };
    repo
}

fn read_error(path: &str, e: &git2::Error) -> GitError {
    GitError::Read {
        path: path.to_owned(),
        message: e.message().to_owned(),
    }
}

/// The directory to name in `safe.directory`: the work tree root if we can find it.
fn owner_path(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&dir)
        .display()
        .to_string()
}

/// Tags whose target, peeled through annotated tag objects, is `head`.
fn tags_pointing_at(repo: &Repository, head: Oid) -> Result<Vec<String>, git2::Error> {
    let odb = repo.odb()?;
    let mut names = Vec::new();
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        let Some(target) = reference.target() else {
            continue;
        };
        let points_here = if target == head {
            true
        } else if let Some(peeled) = reference.target_peel() {
            // packed-refs records what annotated tags peel to: no object read needed.
            peeled == head
        } else {
            // Only a tag object can lead to HEAD; the object header says what it is without
            // reading (inflating) the whole object, which matters with thousands of tags.
            match odb.read_header(target) {
                Ok((_, ObjectType::Tag)) => repo
                    .find_tag(target)
                    .and_then(|tag| tag.into_object().peel(ObjectType::Commit))
                    .is_ok_and(|commit| commit.id() == head),
                _ => false,
            }
        };
        if points_here && let Ok(name) = reference.shorthand() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether tracked files differ from HEAD, and the first of them.
fn changes(repo: &Repository) -> Result<(bool, Vec<String>), git2::Error> {
    if repo.is_bare() {
        return Ok((false, Vec::new()));
    }
    let mut options = StatusOptions::new();
    options
        .include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut options))?;
    let files = statuses
        .iter()
        .filter_map(|entry| entry.path().ok().map(str::to_owned))
        .take(DIRTY_FILES_SHOWN)
        .collect();
    Ok((!statuses.is_empty(), files))
}

/// `https://user:token@host/x.git` → `https://host/x.git`; scp-like `git@host:x` is kept.
pub fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if path.is_empty() {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}/{path}")
        }
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_the_url() {
        assert_eq!(
            strip_credentials("https://x-access-token:ghs_secret@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            strip_credentials("https://github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(
            strip_credentials("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }
}
