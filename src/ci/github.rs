//! GitHub Actions: `GITHUB_*`.

use super::{CiFacts, CiKind, Env, RefKind, Vars, source_url, web_url};

pub(super) fn facts(env: &Env, vars: &Vars) -> CiFacts {
    let event = vars.get("GITHUB_EVENT_NAME").unwrap_or_default();
    let git_ref = vars.get("GITHUB_REF").unwrap_or_default();
    let is_pr = matches!(event.as_str(), "pull_request" | "pull_request_target");
    let mut facts = CiFacts::new(CiKind::GitHub);
    facts.event = vars.get("GITHUB_EVENT_NAME");
    facts.sha = vars.get("GITHUB_SHA");
    facts.build_id = vars.get("GITHUB_RUN_ID");
    facts.build_number = vars.get("GITHUB_RUN_NUMBER");
    let repository = match (vars.get("GITHUB_SERVER_URL"), vars.get("GITHUB_REPOSITORY")) {
        (Some(server), Some(repo)) => Some(format!("{}/{repo}", server.trim_end_matches('/'))),
        _ => None,
    };
    facts.source_url = repository.clone().and_then(source_url);
    facts.run_url = match (&facts.source_url, &facts.build_id) {
        (Some(repo), Some(id)) => web_url(format!("{repo}/actions/runs/{id}"), "run"),
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
        facts.branch = vars.get("GITHUB_HEAD_REF").or(facts.branch);
        facts.pr_target = vars.get("GITHUB_BASE_REF");
        facts.pr_number = git_ref
            .strip_prefix("refs/pull/")
            .and_then(|rest| rest.split('/').next())
            .filter(|n| super::is_number(n))
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

#[cfg(test)]
mod tests {
    use super::super::{RefKind, detect, env_of};

    #[test]
    fn push_to_a_branch() {
        let f = detect(&env_of(&[
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
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/9876543210")
        );
        assert_eq!(f.pr_number, None);
        assert_eq!(f.event.as_deref(), Some("push"));
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
    }

    #[test]
    fn pull_request_uses_the_source_branch_and_number() {
        let f = detect(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/17/merge"),
            ("GITHUB_HEAD_REF", "fix/thing"),
            ("GITHUB_BASE_REF", "main"),
        ]));
        assert_eq!(f.branch.as_deref(), Some("fix/thing"));
        assert_eq!(f.pr_number.as_deref(), Some("17"));
        assert_eq!(f.pr_target.as_deref(), Some("main"));
    }

    #[test]
    fn pull_request_target_reads_the_event_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, r#"{"number": 5, "pull_request": {"number": 23}}"#).unwrap();
        let f = detect(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request_target"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_HEAD_REF", "contrib"),
            ("GITHUB_EVENT_PATH", path.to_str().unwrap()),
        ]));
        assert_eq!(f.pr_number.as_deref(), Some("23"));
        assert_eq!(f.branch.as_deref(), Some("contrib"));
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
    }

    #[test]
    fn tag_push() {
        let f = detect(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
        ]));
        assert_eq!(f.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(f.branch, None);
        assert_eq!(f.ref_kind, Some(RefKind::Tag));
    }
}
