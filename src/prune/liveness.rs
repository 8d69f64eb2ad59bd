//! Which branches and pull requests still exist: the branches from the checkout's remote
//! (`git ls-remote --heads`, no token needed), the open pull/merge requests from the forge the
//! CI runs on, through the CI's own variables and token (`tagguard_registry::WebClient`: the
//! registry engine's deadlines, bounds and retries). Each is asked only when a rule's
//! `retain.while` needs it, under a deadline; what cannot be learned says why, and the tags that
//! depend on it are kept.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tagguard_registry::{
    RunError, Secret, TransportConfig, Watch, WebClient, WebToken, encode_segment, run_watched,
};

/// The most pages of open pull requests read (100 a page).
pub const MAX_PR_PAGES: usize = 50;

/// Where the facts come from.
#[derive(Debug, Clone)]
pub struct LivenessConfig {
    /// The checkout whose remote lists the branches.
    pub repo: PathBuf,
    /// The remote to ask (`origin`).
    pub remote: String,
    /// How long `git ls-remote` and each forge request may take.
    pub deadline: Duration,
    /// The forge to ask about pull requests, when the CI says which.
    pub forge: Option<Forge>,
}

/// A forge's API for open pull/merge requests.
#[derive(Debug, Clone)]
pub enum Forge {
    /// `GET {api}/repos/{repository}/pulls?state=open`.
    GitHub {
        api: String,
        repository: String,
        token: Option<Secret>,
    },
    /// `GET {api}/projects/{project}/merge_requests?state=opened`, with `PRIVATE-TOKEN`
    /// (`GITLAB_TOKEN`) or else `JOB-TOKEN` (`CI_JOB_TOKEN`).
    GitLab {
        api: String,
        project: String,
        token: Option<(&'static str, Secret)>,
    },
}

impl Forge {
    /// The forge from a CI's variables: GitHub Actions' `GITHUB_API_URL`, `GITHUB_REPOSITORY`,
    /// `GITHUB_TOKEN`; GitLab's `CI_API_V4_URL`, `CI_PROJECT_ID` and `GITLAB_TOKEN` or
    /// `CI_JOB_TOKEN`. `None` when neither says enough.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Forge> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if let Some(repository) = var("GITHUB_REPOSITORY") {
            let api = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
            return Some(Forge::GitHub {
                api,
                repository,
                token: var("GITHUB_TOKEN").map(Secret::new),
            });
        }
        let (api, project) = (var("CI_API_V4_URL")?, var("CI_PROJECT_ID")?);
        let token = var("GITLAB_TOKEN")
            .map(|t| ("PRIVATE-TOKEN", Secret::new(t)))
            .or_else(|| var("CI_JOB_TOKEN").map(|t| ("JOB-TOKEN", Secret::new(t))));
        Some(Forge::GitLab {
            api,
            project,
            token,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Forge::GitHub { .. } => "GitHub",
            Forge::GitLab { .. } => "GitLab",
        }
    }
}

/// The branches of the checkout's remote, or why they are unknown.
pub fn branches(config: &LivenessConfig) -> Result<BTreeSet<String>, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(&config.repo)
        .args(["ls-remote", "--heads", "--", &config.remote])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true");
    let what = format!("the branches of remote {:?} are unknown", config.remote);
    // One bound on the whole listing, not only on its silence: a remote that trickles answers
    // must not hold a prune for ever.
    let watch = Watch {
        total: Some(config.deadline),
        ..Watch::silence(config.deadline)
    };
    let ran = run_watched(&mut cmd, b"", watch).map_err(|e| match e {
        RunError::Spawn(e) => format!("{what}: could not run git: {e}"),
        RunError::Silent(after) => format!(
            "{what}: `git ls-remote` gave no answer in {}s",
            after.as_secs()
        ),
        RunError::Overdue(after) => format!(
            "{what}: `git ls-remote` did not finish in {}s",
            after.as_secs()
        ),
    })?;
    if !ran.status.success() {
        let err = String::from_utf8_lossy(&ran.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "{what}: `git ls-remote` failed: {}",
            crate::git::strip_credentials(first.trim())
        ));
    }
    Ok(String::from_utf8_lossy(&ran.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t')?.1.strip_prefix("refs/heads/"))
        .map(str::to_owned)
        .collect())
}

/// The open pull/merge requests, or why they are unknown.
pub async fn open_prs(config: &LivenessConfig) -> Result<BTreeSet<u64>, String> {
    let Some(forge) = &config.forge else {
        return Err("open pull requests are unknown: no forge to ask (tagguard asks GitHub with GITHUB_REPOSITORY and GITHUB_TOKEN, GitLab with CI_API_V4_URL, CI_PROJECT_ID and a token)".to_owned());
    };
    let what = format!("open pull requests are unknown ({})", forge.name());
    let transport = TransportConfig {
        timeout: config.deadline,
        ..TransportConfig::default()
    };
    let (api, token, path, field) = match forge {
        Forge::GitHub {
            api,
            repository,
            token,
        } => (
            api,
            token.clone().map(WebToken::Bearer),
            format!("repos/{repository}/pulls?state=open"),
            "number",
        ),
        Forge::GitLab {
            api,
            project,
            token,
        } => (
            api,
            token.clone().map(|(h, t)| WebToken::Header(h, t)),
            format!(
                "projects/{}/merge_requests?state=opened",
                encode_segment(project)
            ),
            "iid",
        ),
    };
    let mut client =
        WebClient::new(api, token.as_ref(), &transport).map_err(|e| format!("{what}: {e}"))?;
    if matches!(forge, Forge::GitHub { .. }) {
        client = client.accept("application/vnd.github+json");
    }
    let items = client.list(&path, MAX_PR_PAGES).await.map_err(|e| {
        let hint = match e.status() {
            Some(401 | 403) => {
                ": the token may not read pull requests (GitHub: `permissions: pull-requests: read`; GitLab: a GITLAB_TOKEN with read_api)"
            }
            _ => "",
        };
        format!("{what}: {e}{hint}")
    })?;
    Ok(items.iter().filter_map(|i| i[field].as_u64()).collect())
}
