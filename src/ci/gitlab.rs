//! GitLab CI/CD: `CI_*`.

use super::{CiFacts, CiKind, Vars, source_url, web_url};

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::GitLab);
    facts.sha = vars.get("CI_COMMIT_SHA");
    facts.tag = vars.get("CI_COMMIT_TAG");
    facts.pr_number = vars.get("CI_MERGE_REQUEST_IID");
    facts.pr_target = vars.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME");
    facts.branch = if facts.pr_number.is_some() {
        vars.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
            .or_else(|| vars.get("CI_COMMIT_REF_NAME"))
    } else if facts.tag.is_some() {
        None
    } else {
        vars.get("CI_COMMIT_BRANCH")
            .or_else(|| vars.get("CI_COMMIT_REF_NAME"))
    };
    facts.build_id = vars.get("CI_PIPELINE_ID");
    facts.build_number = vars.get("CI_PIPELINE_IID");
    facts.source_url = vars.get("CI_PROJECT_URL").and_then(source_url);
    facts.run_url = vars
        .get("CI_PIPELINE_URL")
        .and_then(|u| web_url(u, "pipeline"));
    facts.event = vars.get("CI_PIPELINE_SOURCE");
    facts.settle_ref_kind();
    facts.commit_time = vars
        .get("CI_COMMIT_TIMESTAMP")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect, env_of};

    #[test]
    fn merge_request() {
        let f = detect(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_MERGE_REQUEST_IID", "8"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
            ("CI_PIPELINE_ID", "1000"),
            ("CI_PIPELINE_IID", "12"),
        ]));
        assert_eq!(f.kind, CiKind::GitLab);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.pr_number.as_deref(), Some("8"));
        assert_eq!(f.pr_target.as_deref(), Some("main"));
        assert_eq!(f.branch.as_deref(), Some("feature"));
        assert_eq!(f.build_id.as_deref(), Some("1000"));
        assert_eq!(f.build_number.as_deref(), Some("12"));
    }

    #[test]
    fn tag_pipeline_has_no_branch() {
        let f = detect(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_TAG", "v2.0.0"),
            ("CI_COMMIT_REF_NAME", "v2.0.0"),
        ]));
        assert_eq!(f.tag.as_deref(), Some("v2.0.0"));
        assert_eq!(f.branch, None);
        assert_eq!(f.ref_kind, Some(RefKind::Tag));
    }

    #[test]
    fn branch_and_schedule() {
        let kind = |pairs: &[(&str, &str)]| detect(&env_of(pairs)).ref_kind;
        assert_eq!(
            kind(&[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_REF_NAME", "main")
            ]),
            Some(RefKind::Branch)
        );
        let f = detect(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "schedule"),
            ("CI_COMMIT_BRANCH", ""),
        ]));
        assert_eq!(f.event.as_deref(), Some("schedule"));
        assert_eq!(f.ref_kind, None);
    }
}
