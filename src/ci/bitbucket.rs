//! Bitbucket Pipelines: `BITBUCKET_*`.
//!
//! The build id is `BITBUCKET_BUILD_NUMBER`: unique in the repository across branches, and a
//! re-run gets a new one (`BITBUCKET_PIPELINE_UUID` is wrapped in braces, which a tag cannot
//! hold). Bitbucket says nothing in the environment about what started a pipeline.

use super::{CiFacts, CiKind, Vars, source_url, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.has("BITBUCKET_BUILD_NUMBER")
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::Bitbucket);
    facts.sha = vars.sha("BITBUCKET_COMMIT");
    facts.build_id = vars.get("BITBUCKET_BUILD_NUMBER");
    facts.build_number = vars.get("BITBUCKET_BUILD_NUMBER");
    facts.branch = vars.get("BITBUCKET_BRANCH");
    facts.tag = vars.get("BITBUCKET_TAG");
    facts.pr_number = vars.number("BITBUCKET_PR_ID");
    facts.pr_target = vars.get("BITBUCKET_PR_DESTINATION_BRANCH");
    facts.settle_ref_kind();
    let origin = vars.get("BITBUCKET_GIT_HTTP_ORIGIN");
    facts.source_url = origin.clone().and_then(source_url);
    facts.run_url = match (&facts.source_url, &facts.build_id) {
        (Some(repo), Some(number)) => {
            web_url(format!("{repo}/pipelines/results/{number}"), "pipeline")
        }
        _ => None,
    };
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    #[test]
    fn branch_tag_and_pull_request() {
        let base = [
            ("BITBUCKET_BUILD_NUMBER", "233"),
            ("BITBUCKET_GIT_HTTP_ORIGIN", "http://bitbucket.org/acme/app"),
        ];
        let with = |extra: &[(&str, &str)]| detect_with(&base, extra);
        let f = with(&[("BITBUCKET_BRANCH", "main")]);
        assert_eq!(f.kind, CiKind::Bitbucket);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(
            f.run_url.as_deref(),
            Some("http://bitbucket.org/acme/app/pipelines/results/233")
        );
        let f = with(&[("BITBUCKET_TAG", "v1.2.3")]);
        assert_eq!(f.ref_kind, Some(RefKind::Tag));
        let f = with(&[
            ("BITBUCKET_BRANCH", "fix"),
            ("BITBUCKET_PR_ID", "5"),
            ("BITBUCKET_PR_DESTINATION_BRANCH", "main"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(
            (f.pr_number.as_deref(), f.pr_target.as_deref()),
            (Some("5"), Some("main"))
        );
    }
}
