//! Everything a tag can be computed from: git, the CI environment, flags and the time.
//!
//! Gathering does the I/O (reading git, the CI's event file); computing tags from the
//! gathered [`Context`] is pure.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::ci::{self, CiKind, Env, RefKind};
use crate::git::{self, GitError};

/// The facts of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub sha: String,
    /// The raw branch name (not yet sanitized); on pull requests the source branch.
    pub branch: Option<String>,
    /// Tags at HEAD plus the tag the CI says it builds.
    pub git_tags: Vec<String>,
    /// The tag the CI pipeline builds, if it is a tag pipeline.
    pub ci_tag: Option<String>,
    pub pr_number: Option<String>,
    /// The branch a pull/merge request would merge into, when the CI says.
    pub pr_target: Option<String>,
    pub build_id: Option<String>,
    pub build_number: Option<String>,
    /// The commit's time: git's, else the CI's, else the build time (no repository at hand).
    pub commit_time: DateTime<Utc>,
    pub build_time: DateTime<Utc>,
    /// Tracked files differ from HEAD.
    pub dirty: bool,
    /// The first changed tracked files (see [`git::DIRTY_FILES_SHOWN`]), for messages.
    pub dirty_files: Vec<String>,
    pub ci: CiKind,
    pub source_url: Option<String>,
    /// The build's page in the CI, for records and summaries.
    pub run_url: Option<String>,
    /// The event that started the CI build, e.g. `push`, `schedule`, `merge_request_event`.
    pub event: Option<String>,
    /// Whether the build is of a branch, a tag or a pull request, when the CI (or `--git-tag`)
    /// says; `None` outside CI.
    pub ref_kind: Option<RefKind>,
    /// The work tree's root, where `.tagguard.yml` is looked for; `None` outside a checkout.
    pub root: Option<PathBuf>,
}

impl Context {
    /// A build of `sha` at `time` with no CI, no branch and no tags: the start for callers
    /// that describe a build themselves (the pre-push hook, tests).
    pub fn for_commit(sha: &str, time: DateTime<Utc>) -> Context {
        Context {
            sha: sha.to_owned(),
            branch: None,
            git_tags: Vec::new(),
            ci_tag: None,
            pr_number: None,
            pr_target: None,
            build_id: None,
            build_number: None,
            commit_time: time,
            build_time: time,
            dirty: false,
            dirty_files: Vec::new(),
            ci: CiKind::None,
            source_url: None,
            run_url: None,
            event: None,
            ref_kind: None,
            root: None,
        }
    }
}

/// Values given on the command line; each wins over what git and the CI say.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub git_tag: Option<String>,
    pub pr_number: Option<String>,
    pub build_id: Option<String>,
    pub build_number: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ContextError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Git(#[from] GitError),
    #[error("{dir} is not in a git repository, and no commit was given")]
    #[diagnostic(
        code(tagguard::context::no_commit),
        help(
            "run tagguard inside the checkout, or pass --sha (CI variables GITHUB_SHA / CI_COMMIT_SHA also work)"
        )
    )]
    NoCommit { dir: String },
    #[error("SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970")]
    #[diagnostic(code(tagguard::context::source_date_epoch))]
    SourceDateEpoch { value: String },
    #[error("invalid commit hash {value:?}: expected 7 to 64 hexadecimal digits")]
    #[diagnostic(code(tagguard::context::sha))]
    Sha { value: String },
    #[error("the branch name is empty")]
    #[diagnostic(
        code(tagguard::context::empty_branch),
        help("leave out --branch to take the CI's or git's branch")
    )]
    EmptyBranch,
}

/// Gathers the context for `dir` from git, the CI variables in `env` and the flags. `now` is
/// the clock's reading, used only when neither `--timestamp` nor `SOURCE_DATE_EPOCH` names the
/// build time.
pub fn gather(
    dir: &Path,
    env: &Env,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> Result<Context, ContextError> {
    let repo = git::read(dir)?;
    from_parts(repo.as_ref(), ci::detect(env), env, overrides, now, dir)
}

/// Weighs flags, CI and git against each other: flags win; for the commit, git's HEAD (what is
/// actually checked out) beats the CI's variable; for the branch, the CI's name beats git's
/// (CI checkouts are detached, and on pull requests the CI knows the source branch).
pub fn from_parts(
    repo: Option<&git::GitFacts>,
    ci: ci::CiFacts,
    env: &Env,
    overrides: &Overrides,
    now: DateTime<Utc>,
    dir: &Path,
) -> Result<Context, ContextError> {
    let sha = overrides
        .sha
        .clone()
        .or_else(|| repo.map(|r| r.sha.clone()))
        .or(ci.sha.clone())
        .ok_or_else(|| ContextError::NoCommit {
            dir: dir.display().to_string(),
        })?;
    if !(7..=64).contains(&sha.len()) || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ContextError::Sha { value: sha });
    }
    if overrides
        .branch
        .as_deref()
        .is_some_and(|b| b.trim().is_empty())
    {
        return Err(ContextError::EmptyBranch);
    }
    let branch = overrides
        .branch
        .clone()
        .or(ci.branch.clone())
        .or_else(|| repo.and_then(|r| r.branch.clone()));
    let mut git_tags: Vec<String> = repo.map(|r| r.tags_at_head.clone()).unwrap_or_default();
    let ci_tag = overrides.git_tag.clone().or(ci.tag.clone());
    if let Some(tag) = &overrides.git_tag {
        // An explicit tag replaces what git says: the build is told what it releases.
        git_tags = vec![tag.clone()];
    } else if let Some(tag) = &ci_tag
        && !git_tags.contains(tag)
    {
        git_tags.push(tag.clone());
    }
    let build_time = match overrides.timestamp {
        Some(t) => t,
        None => match env.get("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) {
            Some(value) => value
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .ok_or_else(|| ContextError::SourceDateEpoch {
                    value: value.clone(),
                })?,
            None => now,
        },
    };
    // An explicit tag is a tag build, whatever the CI says.
    let ref_kind = match overrides.git_tag {
        Some(_) => Some(RefKind::Tag),
        None => ci.ref_kind,
    };
    Ok(Context {
        sha: sha.to_ascii_lowercase(),
        branch,
        git_tags,
        ci_tag,
        pr_number: overrides.pr_number.clone().or(ci.pr_number.clone()),
        pr_target: ci.pr_target.clone(),
        build_id: overrides.build_id.clone().or(ci.build_id.clone()),
        build_number: overrides.build_number.clone().or(ci.build_number.clone()),
        commit_time: repo
            .map(|r| r.commit_time)
            .or(ci.commit_time)
            .unwrap_or(build_time),
        build_time,
        dirty: repo.is_some_and(|r| r.dirty),
        dirty_files: repo.map(|r| r.dirty_files.clone()).unwrap_or_default(),
        ci: ci.kind,
        run_url: ci.run_url.clone(),
        event: ci.event.clone(),
        ref_kind,
        root: repo.map(|r| r.root.clone()),
        source_url: ci
            .source_url
            .clone()
            .or_else(|| repo.and_then(|r| r.origin_url.clone()).map(|u| web_url(&u))),
    })
}

/// A clone URL as a web address: `git@github.com:a/b.git` → `https://github.com/a/b`.
/// A user or token in the URL (CI checkouts clone with `https://user:TOKEN@host/…`) is left
/// out: the address ends up in an image label and in the outputs.
fn web_url(url: &str) -> String {
    let url = url.strip_suffix(".git").unwrap_or(url);
    if !url.contains("://")
        && let Some((user_host, path)) = url.split_once(':')
    {
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        return format!("https://{host}/{path}");
    }
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_authority() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Parses a `--timestamp`: Unix seconds, RFC 3339, or tagguard's own `%Y%m%d%H%M%S` (UTC).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>()
        && text.len() != 14
    {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| format!("{secs} is out of range"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, crate::template::TIMESTAMP_FORMAT) {
        return Ok(t.and_utc());
    }
    Err(format!(
        "{text:?} is not a time: use Unix seconds, RFC 3339 (2024-01-02T03:04:05Z) or 20240102030405"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = parse_timestamp("1704164645").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-02T03:04:05+00:00");
        assert_eq!(parse_timestamp("2024-01-02T04:04:05+01:00").unwrap(), t);
        assert_eq!(parse_timestamp("20240102030405").unwrap(), t);
        assert!(parse_timestamp("yesterday").is_err());
    }

    fn ci_facts(env: &Env) -> ci::CiFacts {
        ci::detect(env)
    }

    #[test]
    fn without_a_checkout_the_commit_time_is_the_cis_else_the_build_time() {
        let now = DateTime::from_timestamp(1_704_164_645, 0).unwrap();
        let dir = Path::new("/nowhere");
        let overrides = Overrides {
            sha: Some("abcdef0".into()),
            ..Overrides::default()
        };
        let env = Env::new();
        let ctx = from_parts(None, ci_facts(&env), &env, &overrides, now, dir).unwrap();
        assert_eq!(ctx.commit_time, now);
        let env: Env = [
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_TIMESTAMP", "2023-11-14T22:13:20+00:00"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let ctx = from_parts(None, ci_facts(&env), &env, &overrides, now, dir).unwrap();
        assert_eq!(ctx.commit_time.timestamp(), 1_700_000_000);
    }

    #[test]
    fn an_explicit_tag_is_a_tag_build_and_an_empty_branch_an_error() {
        let now = DateTime::from_timestamp(1_704_164_645, 0).unwrap();
        let dir = Path::new("/nowhere");
        let env: Env = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let overrides = Overrides {
            sha: Some("abcdef0".into()),
            git_tag: Some("v1.0.0".into()),
            ..Overrides::default()
        };
        let ctx = from_parts(None, ci_facts(&env), &env, &overrides, now, dir).unwrap();
        assert_eq!(ctx.ref_kind, Some(RefKind::Tag));
        assert_eq!(ctx.git_tags, ["v1.0.0"]);
        let overrides = Overrides {
            sha: Some("abcdef0".into()),
            branch: Some(" ".into()),
            ..Overrides::default()
        };
        let err = from_parts(None, ci_facts(&env), &env, &overrides, now, dir).unwrap_err();
        assert!(matches!(err, ContextError::EmptyBranch), "{err:?}");
    }

    #[test]
    fn web_urls() {
        assert_eq!(
            web_url("git@github.com:acme/app.git"),
            "https://github.com/acme/app"
        );
        assert_eq!(
            web_url("https://gitlab.com/acme/app.git"),
            "https://gitlab.com/acme/app"
        );
        assert_eq!(
            web_url("https://x-token-auth:s3cr3t@bitbucket.org/acme/app.git"),
            "https://bitbucket.org/acme/app"
        );
    }
}
