//! Azure Pipelines: `BUILD_*` and `SYSTEM_*` (the predefined variables `Build.*`, `System.*`
//! as the agent puts them into the environment).
//!
//! The build id is `BUILD_BUILDID`: an integer unique in the organization, tag-safe as it is;
//! `BUILD_BUILDNUMBER` (the run's name, `20240102.1` by default) is the build number.

use super::{CiFacts, CiKind, Vars, branch_name, source_url, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.is("TF_BUILD", "true")
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::Azure);
    facts.sha = vars.sha("BUILD_SOURCEVERSION");
    facts.build_id = vars.get("BUILD_BUILDID");
    facts.build_number = vars.get("BUILD_BUILDNUMBER");
    let reason = vars.get("BUILD_REASON").unwrap_or_default();
    let source = vars.get("BUILD_SOURCEBRANCH").unwrap_or_default();
    if reason == "PullRequest" {
        facts.pr_number = vars
            .number("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")
            .or_else(|| vars.number("SYSTEM_PULLREQUEST_PULLREQUESTID"))
            .or_else(|| {
                source
                    .strip_prefix("refs/pull/")
                    .and_then(|rest| rest.split('/').next())
                    .filter(|n| super::is_number(n))
                    .map(str::to_owned)
            });
        facts.branch = vars
            .get("SYSTEM_PULLREQUEST_SOURCEBRANCH")
            .map(|b| branch_name(&b));
        facts.pr_target = vars
            .get("SYSTEM_PULLREQUEST_TARGETBRANCH")
            .map(|b| branch_name(&b));
    } else if let Some(tag) = source.strip_prefix("refs/tags/") {
        facts.tag = Some(tag.to_owned());
    } else if let Some(branch) = source.strip_prefix("refs/heads/") {
        facts.branch = Some(branch.to_owned());
    }
    facts.settle_ref_kind();
    if reason == "PullRequest" {
        // A pull request build is no release, even when Azure names no number.
        facts.ref_kind = Some(super::RefKind::PullRequest);
    }
    facts.event = match reason.as_str() {
        "" => None,
        "IndividualCI" | "BatchedCI" => Some("push".to_owned()),
        "PullRequest" => Some("pull_request".to_owned()),
        other => Some(other.to_ascii_lowercase()),
    };
    facts.source_url = vars.get("BUILD_REPOSITORY_URI").and_then(source_url);
    facts.run_url = match (
        vars.get("SYSTEM_COLLECTIONURI"),
        vars.get("SYSTEM_TEAMPROJECT"),
        &facts.build_id,
    ) {
        (Some(collection), Some(project), Some(id)) => web_url(
            format!(
                "{}/{}/_build/results?buildId={id}",
                collection.trim_end_matches('/'),
                project.replace(' ', "%20")
            ),
            "build",
        ),
        _ => None,
    };
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    const BASE: [(&str, &str); 6] = [
        ("TF_BUILD", "True"),
        ("BUILD_BUILDID", "1234"),
        ("BUILD_BUILDNUMBER", "20240102.3"),
        (
            "BUILD_SOURCEVERSION",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
        ("SYSTEM_TEAMPROJECT", "Web Shop"),
    ];

    fn with(extra: &[(&str, &str)]) -> super::super::CiFacts {
        detect_with(&BASE, extra)
    }

    #[test]
    fn a_branch_build_and_its_run() {
        let f = with(&[
            ("BUILD_SOURCEBRANCH", "refs/heads/main"),
            ("BUILD_REASON", "IndividualCI"),
        ]);
        assert_eq!(f.kind, CiKind::Azure);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(f.build_id.as_deref(), Some("1234"));
        assert_eq!(f.event.as_deref(), Some("push"));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://dev.azure.com/acme/Web%20Shop/_build/results?buildId=1234")
        );
    }

    #[test]
    fn tags_pull_requests_and_schedules() {
        let f = with(&[("BUILD_SOURCEBRANCH", "refs/tags/v1.2.3")]);
        assert_eq!(
            (f.ref_kind, f.tag.as_deref()),
            (Some(RefKind::Tag), Some("v1.2.3"))
        );
        let f = with(&[
            ("BUILD_REASON", "PullRequest"),
            ("BUILD_SOURCEBRANCH", "refs/pull/5/merge"),
            ("SYSTEM_PULLREQUEST_PULLREQUESTID", "991"),
            ("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "5"),
            ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/fix"),
            ("SYSTEM_PULLREQUEST_TARGETBRANCH", "main"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.pr_number.as_deref(), Some("5"));
        assert_eq!(
            (f.branch.as_deref(), f.pr_target.as_deref()),
            (Some("fix"), Some("main"))
        );
        let f = with(&[
            ("BUILD_REASON", "PullRequest"),
            ("BUILD_SOURCEBRANCH", "refs/pull/7/merge"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.pr_number.as_deref(), Some("7"));
        let f = with(&[
            ("BUILD_REASON", "Schedule"),
            ("BUILD_SOURCEBRANCH", "refs/heads/main"),
        ]);
        assert_eq!(f.event.as_deref(), Some("schedule"));
    }
}
