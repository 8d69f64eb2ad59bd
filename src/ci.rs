//! What the CI system tells about the build, read from its environment variables.

use std::collections::HashMap;

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
    pub build_id: Option<String>,
    pub build_number: Option<String>,
    /// Web address of the repository, for the `org.opencontainers.image.source` label.
    pub source_url: Option<String>,
    /// The event that started the build (`GITHUB_EVENT_NAME`, `CI_PIPELINE_SOURCE`).
    pub event: Option<String>,
    /// Whether the CI builds a branch, a tag or a pull request, when it says.
    pub ref_kind: Option<RefKind>,
    /// The commit's time as the CI gives it (GitLab's `CI_COMMIT_TIMESTAMP`).
    pub commit_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl CiFacts {
    fn none() -> Self {
        CiFacts {
            kind: CiKind::None,
            sha: None,
            branch: None,
            tag: None,
            pr_number: None,
            build_id: None,
            build_number: None,
            source_url: None,
            event: None,
            ref_kind: None,
            commit_time: None,
        }
    }
}

/// Reads the CI facts from `env`. On GitHub pull request events whose ref does not carry the
/// number (`pull_request_target`), the event payload file is read for it.
pub fn detect(env: &Env) -> CiFacts {
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        github(env, &get)
    } else if get("GITLAB_CI").as_deref() == Some("true") {
        gitlab(&get)
    } else {
        let mut facts = CiFacts::none();
        facts.build_id = get("BUILD_ID");
        facts.build_number = get("BUILD_NUMBER");
        // Jenkins multibranch pipelines.
        facts.branch = get("BRANCH_NAME");
        facts.pr_number = get("CHANGE_ID");
        facts.tag = get("TAG_NAME");
        facts.ref_kind = if facts.pr_number.is_some() {
            Some(RefKind::PullRequest)
        } else if facts.tag.is_some() {
            Some(RefKind::Tag)
        } else {
            facts.branch.as_ref().map(|_| RefKind::Branch)
        };
        if facts.build_id.is_some() || get("CI").is_some_and(|v| v == "true" || v == "1") {
            facts.kind = CiKind::Generic;
        }
        facts
    }
}

fn github(env: &Env, get: &dyn Fn(&str) -> Option<String>) -> CiFacts {
    let event = get("GITHUB_EVENT_NAME").unwrap_or_default();
    let git_ref = get("GITHUB_REF").unwrap_or_default();
    let is_pr = matches!(event.as_str(), "pull_request" | "pull_request_target");
    let mut facts = CiFacts::none();
    facts.kind = CiKind::GitHub;
    facts.event = get("GITHUB_EVENT_NAME");
    facts.sha = get("GITHUB_SHA");
    facts.build_id = get("GITHUB_RUN_ID");
    facts.build_number = get("GITHUB_RUN_NUMBER");
    facts.source_url = match (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY")) {
        (Some(server), Some(repo)) => {
            source_url(format!("{}/{repo}", server.trim_end_matches('/')))
        }
        _ => None,
    };
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        facts.branch = Some(branch.to_owned());
        facts.ref_kind = Some(RefKind::Branch);
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        facts.tag = Some(tag.to_owned());
        facts.ref_kind = Some(RefKind::Tag);
    }
    if is_pr {
        facts.ref_kind = Some(RefKind::PullRequest);
        facts.branch = get("GITHUB_HEAD_REF").or(facts.branch);
        facts.pr_number = git_ref
            .strip_prefix("refs/pull/")
            .and_then(|rest| rest.split('/').next())
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned)
            .or_else(|| {
                env.get("GITHUB_EVENT_PATH")
                    .and_then(|p| pr_number_from_event(p))
            });
    }
    facts
}

/// The pull request number in a GitHub event payload file.
fn pr_number_from_event(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let event: serde_json::Value = serde_json::from_str(&text).ok()?;
    let number = event
        .get("pull_request")
        .and_then(|pr| pr.get("number"))
        .or_else(|| event.get("number"))?;
    number.as_u64().map(|n| n.to_string())
}

fn gitlab(get: &dyn Fn(&str) -> Option<String>) -> CiFacts {
    let mut facts = CiFacts::none();
    facts.kind = CiKind::GitLab;
    facts.sha = get("CI_COMMIT_SHA");
    facts.tag = get("CI_COMMIT_TAG");
    facts.pr_number = get("CI_MERGE_REQUEST_IID");
    facts.branch = if facts.pr_number.is_some() {
        get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME").or_else(|| get("CI_COMMIT_REF_NAME"))
    } else if facts.tag.is_some() {
        None
    } else {
        get("CI_COMMIT_BRANCH").or_else(|| get("CI_COMMIT_REF_NAME"))
    };
    facts.build_id = get("CI_PIPELINE_ID");
    facts.build_number = get("CI_PIPELINE_IID");
    facts.source_url = get("CI_PROJECT_URL").and_then(source_url);
    facts.event = get("CI_PIPELINE_SOURCE");
    facts.ref_kind = if facts.pr_number.is_some() {
        Some(RefKind::PullRequest)
    } else if facts.tag.is_some() {
        Some(RefKind::Tag)
    } else {
        facts.branch.as_ref().map(|_| RefKind::Branch)
    };
    facts.commit_time = get("CI_COMMIT_TIMESTAMP")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    facts
}

/// The repository URL for the `source` label, if it is one: an http(s) URL with nothing that
/// could split a label list (whitespace, control characters, commas). Labels travel as
/// newline- or comma-separated `key=value` lines into GitHub outputs and dotenv files.
fn source_url(text: String) -> Option<String> {
    let clean = !text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',');
    let url_like = url::Url::parse(&text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if clean && url_like {
        Some(text)
    } else {
        log::warn!("ignoring the CI's repository URL {text:?}: not a plain http(s) URL");
        None
    }
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
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_outside_ci() {
        assert_eq!(detect(&env(&[])).kind, CiKind::None);
    }

    #[test]
    fn github_push_to_a_branch() {
        let f = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/feature/x"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_RUN_ID", "9876543210"),
            ("GITHUB_RUN_NUMBER", "42"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
        ]));
        assert_eq!(f.branch.as_deref(), Some("feature/x"));
        assert_eq!(f.build_id.as_deref(), Some("9876543210"));
        assert_eq!(f.build_number.as_deref(), Some("42"));
        assert_eq!(f.source_url.as_deref(), Some("https://github.com/acme/app"));
        assert_eq!(f.pr_number, None);
        assert_eq!(f.event.as_deref(), Some("push"));
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
    }

    #[test]
    fn github_pull_request_uses_the_source_branch_and_number() {
        let f = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/17/merge"),
            ("GITHUB_HEAD_REF", "fix/thing"),
        ]));
        assert_eq!(f.branch.as_deref(), Some("fix/thing"));
        assert_eq!(f.pr_number.as_deref(), Some("17"));
    }

    #[test]
    fn github_pull_request_target_reads_the_event_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, r#"{"number": 5, "pull_request": {"number": 23}}"#).unwrap();
        let f = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request_target"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_HEAD_REF", "contrib"),
            ("GITHUB_EVENT_PATH", path.to_str().unwrap()),
        ]));
        assert_eq!(f.pr_number.as_deref(), Some("23"));
        assert_eq!(f.branch.as_deref(), Some("contrib"));
    }

    #[test]
    fn github_tag_push() {
        let f = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
        ]));
        assert_eq!(f.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(f.branch, None);
        assert_eq!(f.ref_kind, Some(RefKind::Tag));
    }

    #[test]
    fn gitlab_merge_request() {
        let f = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_MERGE_REQUEST_IID", "8"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature"),
            ("CI_PIPELINE_ID", "1000"),
            ("CI_PIPELINE_IID", "12"),
        ]));
        assert_eq!(f.kind, CiKind::GitLab);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.pr_number.as_deref(), Some("8"));
        assert_eq!(f.branch.as_deref(), Some("feature"));
        assert_eq!(f.build_id.as_deref(), Some("1000"));
        assert_eq!(f.build_number.as_deref(), Some("12"));
    }

    #[test]
    fn gitlab_tag_pipeline_has_no_branch() {
        let f = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_TAG", "v2.0.0"),
            ("CI_COMMIT_REF_NAME", "v2.0.0"),
        ]));
        assert_eq!(f.tag.as_deref(), Some("v2.0.0"));
        assert_eq!(f.branch, None);
    }

    #[test]
    fn what_each_ci_says_it_builds() {
        let kind = |pairs: &[(&str, &str)]| detect(&env(pairs)).ref_kind;
        assert_eq!(
            kind(&[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_REF_NAME", "main")
            ]),
            Some(RefKind::Branch)
        );
        assert_eq!(
            kind(&[("GITLAB_CI", "true"), ("CI_COMMIT_TAG", "deploy-prod")]),
            Some(RefKind::Tag)
        );
        assert_eq!(
            kind(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "pull_request_target"),
                ("GITHUB_REF", "refs/heads/main")
            ]),
            Some(RefKind::PullRequest)
        );
        assert_eq!(kind(&[("TAG_NAME", "v1.0.0")]), Some(RefKind::Tag));
        assert_eq!(kind(&[("BUILD_ID", "7")]), None);
        assert_eq!(kind(&[]), None);
        let f = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "schedule"),
            ("CI_COMMIT_BRANCH", ""),
        ]));
        assert_eq!(f.event.as_deref(), Some("schedule"));
        assert_eq!(f.ref_kind, None);
    }

    #[test]
    fn generic_build_id() {
        let f = detect(&env(&[("BUILD_ID", "77"), ("BUILD_NUMBER", "3")]));
        assert_eq!(f.kind, CiKind::Generic);
        assert_eq!(f.build_id.as_deref(), Some("77"));
    }
}
