//! What the CI system tells about the build, read from its environment variables: one file per
//! CI, each mapping that CI's documented variables into the same [`CiFacts`]. The table of what
//! is read where is docs/ci/README.md.

use std::collections::HashMap;

mod azure;
mod bitbucket;
mod buildkite;
mod circleci;
mod cloud_build;
mod codebuild;
mod github;
mod gitlab;
mod jenkins;

/// Environment variables, passed in rather than read from the process, so that tests and
/// callers decide what the tool sees.
pub type Env = HashMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiKind {
    /// Not in a CI system we know (a developer's machine).
    None,
    GitHub,
    GitLab,
    /// AWS CodeBuild.
    CodeBuild,
    /// Google Cloud Build.
    CloudBuild,
    /// Azure Pipelines.
    Azure,
    Jenkins,
    CircleCi,
    /// Bitbucket Pipelines.
    Bitbucket,
    Buildkite,
    /// Some other CI, known by the generic `BUILD_ID`/`CI` variables.
    Generic,
}

/// What kind of ref the CI builds, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefKind {
    Branch,
    Tag,
    PullRequest,
}

/// What the CI environment says, before flags and git are weighed against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiFacts {
    pub kind: CiKind,
    pub sha: Option<String>,
    /// The branch being built; on pull/merge requests, the source branch.
    pub branch: Option<String>,
    /// The git tag being built, in tag pipelines.
    pub tag: Option<String>,
    pub pr_number: Option<String>,
    /// The branch a pull/merge request would merge into.
    pub pr_target: Option<String>,
    /// The tag-safe ID of the build (per CI: docs/ci/README.md).
    pub build_id: Option<String>,
    pub build_number: Option<String>,
    /// Web address of the repository, for the `org.opencontainers.image.source` label.
    pub source_url: Option<String>,
    /// Web address of this build in the CI, for records and summaries.
    pub run_url: Option<String>,
    /// The event that started the build (`GITHUB_EVENT_NAME`, `CI_PIPELINE_SOURCE`; for the
    /// other CIs `push`, `pull_request`, `schedule` or `manual` where the CI says it).
    pub event: Option<String>,
    /// Whether the CI builds a branch, a tag or a pull request, when it says.
    pub ref_kind: Option<RefKind>,
    /// The commit's time as the CI gives it (GitLab's `CI_COMMIT_TIMESTAMP`).
    pub commit_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl CiFacts {
    fn new(kind: CiKind) -> Self {
        CiFacts {
            kind,
            sha: None,
            branch: None,
            tag: None,
            pr_number: None,
            pr_target: None,
            build_id: None,
            build_number: None,
            source_url: None,
            run_url: None,
            event: None,
            ref_kind: None,
            commit_time: None,
        }
    }

    /// The kind of ref from what was found: a pull request wins, then a tag, then a branch.
    /// A tag build has no branch (some CIs put the tag's name in their branch variable).
    fn settle_ref_kind(&mut self) {
        self.ref_kind = if self.pr_number.is_some() {
            Some(RefKind::PullRequest)
        } else if self.tag.is_some() {
            self.branch = None;
            Some(RefKind::Tag)
        } else {
            self.branch.as_ref().map(|_| RefKind::Branch)
        };
    }
}

/// The CI's variables as tagguard reads them: a variable set to nothing (or blanks) is unset.
pub(crate) struct Vars<'a> {
    env: &'a Env,
}

impl<'a> Vars<'a> {
    fn new(env: &'a Env) -> Self {
        Vars { env }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The variable equals `value`, ignoring ASCII case (`True`, `true`).
    fn is(&self, name: &str, value: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    }

    /// A commit hash, if the variable holds one (Buildkite says `HEAD` before it knows).
    fn sha(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| (7..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit()))
    }

    /// A pull request number: digits only.
    fn number(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| is_number(v))
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit())
}

/// `refs/heads/main` → `main`; a name without the prefix is kept.
fn branch_name(git_ref: &str) -> String {
    git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(git_ref)
        .to_owned()
}

/// Reads the CI facts from `env`: the first CI whose own marker variable is set.
pub fn detect(env: &Env) -> CiFacts {
    let vars = Vars::new(env);
    if vars.is("GITHUB_ACTIONS", "true") {
        github::facts(env, &vars)
    } else if vars.is("GITLAB_CI", "true") {
        gitlab::facts(&vars)
    } else if codebuild::detected(&vars) {
        codebuild::facts(&vars)
    } else if azure::detected(&vars) {
        azure::facts(&vars)
    } else if circleci::detected(&vars) {
        circleci::facts(&vars)
    } else if bitbucket::detected(&vars) {
        bitbucket::facts(&vars)
    } else if buildkite::detected(&vars) {
        buildkite::facts(&vars)
    } else if jenkins::detected(&vars) {
        jenkins::facts(&vars, CiKind::Jenkins)
    } else if cloud_build::detected(&vars) {
        cloud_build::facts(&vars)
    } else {
        // Another CI: the generic BUILD_ID/BUILD_NUMBER, read the way Jenkins sets them (and
        // its multibranch variables, should they be there).
        let kind = if vars.has("BUILD_ID") || vars.is("CI", "true") || vars.is("CI", "1") {
            CiKind::Generic
        } else {
            CiKind::None
        };
        jenkins::facts(&vars, kind)
    }
}

/// The repository URL for the `source` label, if it is one: an http(s) URL with nothing that
/// could split a label list (whitespace, control characters, commas). Labels travel as
/// newline- or comma-separated `key=value` lines into GitHub outputs and dotenv files.
fn source_url(text: String) -> Option<String> {
    web_url(text, "repository")
}

/// `text` if it is a plain http(s) URL (see [`source_url`]); `what` names it in the warning.
/// A user or password in the URL (Azure Repos puts the organization there; a clone URL may
/// carry a token) is left out, never shown.
fn web_url(text: String, what: &str) -> Option<String> {
    let text = match url::Url::parse(&text) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => text,
    };
    let clean = !text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',');
    let url_like = url::Url::parse(&text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if clean && url_like {
        Some(text)
    } else {
        log::warn!("ignoring the CI's {what} URL {text:?}: not a plain http(s) URL");
        None
    }
}

#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What is detected from `base` with `extra` on top (a variable in both takes `extra`'s value).
#[cfg(test)]
pub(crate) fn detect_with(base: &[(&str, &str)], extra: &[(&str, &str)]) -> CiFacts {
    let mut env = env_of(base);
    env.extend(env_of(extra));
    detect(&env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_url_that_could_split_labels_is_dropped() {
        assert_eq!(
            source_url("https://github.com/acme/app".into()).as_deref(),
            Some("https://github.com/acme/app")
        );
        for bad in [
            "https://github.com/acme/app\ntags<<EOF",
            "https://github.com/a,b",
            "https://x/a b",
            "javascript:alert(1)",
            "acme/app",
        ] {
            assert_eq!(source_url(bad.into()), None, "{bad:?}");
        }
        assert_eq!(
            source_url("https://acme:t0ken@dev.azure.com/acme/app".into()).as_deref(),
            Some("https://dev.azure.com/acme/app")
        );
    }

    #[test]
    fn nothing_outside_ci() {
        assert_eq!(detect(&env_of(&[])).kind, CiKind::None);
    }

    #[test]
    fn set_but_empty_is_unset() {
        let f = detect(&env_of(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_BRANCH", "main"),
            ("CIRCLE_TAG", ""),
            ("CIRCLE_PULL_REQUEST", " "),
        ]));
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(f.tag, None);
    }

    #[test]
    fn generic_build_id() {
        let f = detect(&env_of(&[("BUILD_ID", "77"), ("BUILD_NUMBER", "3")]));
        assert_eq!(f.kind, CiKind::Generic);
        assert_eq!(f.build_id.as_deref(), Some("77"));
        assert_eq!(
            detect(&env_of(&[("TAG_NAME", "v1.0.0")])).ref_kind,
            Some(RefKind::Tag)
        );
        assert_eq!(detect(&env_of(&[("BUILD_ID", "7")])).ref_kind, None);
    }
}
