//! AWS CodeBuild: `CODEBUILD_*`.
//!
//! The build id is `CODEBUILD_BUILD_NUMBER`: unique in the project and tag-safe as it is
//! (`CODEBUILD_BUILD_ID` is `project:uuid`, whose colon a tag cannot hold). What is built comes
//! from the webhook (`CODEBUILD_WEBHOOK_TRIGGER`: `branch/NAME`, `tag/NAME` or `pr/NUMBER`),
//! else from `CODEBUILD_SOURCE_VERSION` when it names a ref (`refs/heads/…`, `refs/tags/…`,
//! `pr/N`).

use super::{CiFacts, CiKind, Vars, branch_name, is_number, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.has("CODEBUILD_BUILD_ID")
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::CodeBuild);
    facts.sha = vars.sha("CODEBUILD_RESOLVED_SOURCE_VERSION");
    facts.build_id = vars.get("CODEBUILD_BUILD_NUMBER");
    facts.build_number = vars.get("CODEBUILD_BUILD_NUMBER");
    let what = vars
        .get("CODEBUILD_WEBHOOK_TRIGGER")
        .or_else(|| vars.get("CODEBUILD_SOURCE_VERSION"))
        .unwrap_or_default();
    if let Some(number) = what.strip_prefix("pr/").filter(|n| is_number(n)) {
        facts.pr_number = Some(number.to_owned());
        facts.branch = vars
            .get("CODEBUILD_WEBHOOK_HEAD_REF")
            .map(|r| branch_name(&r));
        facts.pr_target = vars
            .get("CODEBUILD_WEBHOOK_BASE_REF")
            .map(|r| branch_name(&r));
    } else if let Some(tag) = what
        .strip_prefix("tag/")
        .or_else(|| what.strip_prefix("refs/tags/"))
    {
        facts.tag = Some(tag.to_owned());
    } else if let Some(branch) = what
        .strip_prefix("branch/")
        .or_else(|| what.strip_prefix("refs/heads/"))
    {
        facts.branch = Some(branch.to_owned());
    }
    facts.settle_ref_kind();
    facts.event = vars
        .get("CODEBUILD_WEBHOOK_EVENT")
        .map(|e| match e.as_str() {
            "PUSH" => "push".to_owned(),
            e if e.starts_with("PULL_REQUEST_") => "pull_request".to_owned(),
            e => e.to_ascii_lowercase(),
        });
    facts.run_url = vars
        .get("CODEBUILD_PUBLIC_BUILD_URL")
        .or_else(|| console_url(vars))
        .and_then(|u| web_url(u, "build"));
    facts
}

/// The build's page in the AWS console, from its ARN
/// (`arn:aws:codebuild:REGION:ACCOUNT:build/PROJECT:UUID`).
fn console_url(vars: &Vars) -> Option<String> {
    let arn = vars.get("CODEBUILD_BUILD_ARN")?;
    let mut parts = arn.splitn(6, ':');
    let (region, build) = (parts.nth(3)?, parts.nth(1)?);
    let project = build.strip_prefix("build/")?;
    let id = vars.get("CODEBUILD_BUILD_ID")?;
    let (project, _) = project.split_once(':')?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/{}/?region={region}",
        id.replace(':', "%3A")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    const BASE: [(&str, &str); 4] = [
        (
            "CODEBUILD_BUILD_ID",
            "app:b1e6661e-e4f2-4156-9ab9-82a19EXAMPLE",
        ),
        (
            "CODEBUILD_BUILD_ARN",
            "arn:aws:codebuild:eu-west-1:123456789012:build/app:b1e6661e-e4f2-4156-9ab9-82a19EXAMPLE",
        ),
        ("CODEBUILD_BUILD_NUMBER", "42"),
        (
            "CODEBUILD_RESOLVED_SOURCE_VERSION",
            "0123456789abcdef0123456789abcdef01234567",
        ),
    ];

    fn with(extra: &[(&str, &str)]) -> super::super::CiFacts {
        detect_with(&BASE, extra)
    }

    #[test]
    fn a_webhook_branch_build() {
        let f = with(&[
            ("CODEBUILD_WEBHOOK_TRIGGER", "branch/feature/x"),
            ("CODEBUILD_WEBHOOK_EVENT", "PUSH"),
        ]);
        assert_eq!(f.kind, CiKind::CodeBuild);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(f.branch.as_deref(), Some("feature/x"));
        assert_eq!(f.build_id.as_deref(), Some("42"));
        assert_eq!(f.event.as_deref(), Some("push"));
        assert_eq!(
            f.run_url.as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/app/build/app%3Ab1e6661e-e4f2-4156-9ab9-82a19EXAMPLE/?region=eu-west-1"
            )
        );
    }

    #[test]
    fn tags_and_pull_requests() {
        let f = with(&[("CODEBUILD_WEBHOOK_TRIGGER", "tag/v1.2.3")]);
        assert_eq!(
            (f.ref_kind, f.tag.as_deref()),
            (Some(RefKind::Tag), Some("v1.2.3"))
        );
        let f = with(&[
            ("CODEBUILD_WEBHOOK_TRIGGER", "pr/5"),
            ("CODEBUILD_WEBHOOK_HEAD_REF", "refs/heads/fix"),
            ("CODEBUILD_WEBHOOK_BASE_REF", "refs/heads/main"),
            ("CODEBUILD_WEBHOOK_EVENT", "PULL_REQUEST_UPDATED"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.pr_number.as_deref(), Some("5"));
        assert_eq!(f.branch.as_deref(), Some("fix"));
        assert_eq!(f.pr_target.as_deref(), Some("main"));
        assert_eq!(f.event.as_deref(), Some("pull_request"));
    }

    #[test]
    fn a_started_build_names_its_ref_in_the_source_version() {
        let f = with(&[("CODEBUILD_SOURCE_VERSION", "refs/heads/main")]);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        let f = with(&[("CODEBUILD_SOURCE_VERSION", "0123456")]);
        assert_eq!(f.ref_kind, None);
    }
}
