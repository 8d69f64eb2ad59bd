//! CircleCI: `CIRCLE_*`.
//!
//! The build id is `CIRCLE_BUILD_NUM`, the job's number: unique in the project, in the job's
//! URL. A pull request is known by `CIRCLE_PULL_REQUEST` (its URL, ending in the number) or, on
//! forks, `CIRCLE_PR_NUMBER`; CircleCI gives the target branch and the trigger (schedule) as
//! pipeline values only, not in the environment.

use super::{CiFacts, CiKind, Vars, is_number, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.is("CIRCLECI", "true")
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::CircleCi);
    facts.sha = vars.sha("CIRCLE_SHA1");
    facts.build_id = vars.get("CIRCLE_BUILD_NUM");
    facts.build_number = vars.get("CIRCLE_BUILD_NUM");
    facts.branch = vars.get("CIRCLE_BRANCH");
    facts.tag = vars.get("CIRCLE_TAG");
    facts.pr_number = vars.number("CIRCLE_PR_NUMBER").or_else(|| {
        vars.get("CIRCLE_PULL_REQUEST")
            .and_then(|url| url.rsplit('/').next().map(str::to_owned))
            .filter(|n| is_number(n))
    });
    facts.settle_ref_kind();
    facts.run_url = vars.get("CIRCLE_BUILD_URL").and_then(|u| web_url(u, "job"));
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    #[test]
    fn branch_tag_and_pull_request() {
        let base = [
            ("CIRCLECI", "true"),
            ("CIRCLE_BUILD_NUM", "812"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/app/812"),
        ];
        let with = |extra: &[(&str, &str)]| detect_with(&base, extra);
        let f = with(&[("CIRCLE_BRANCH", "main")]);
        assert_eq!(f.kind, CiKind::CircleCi);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(f.build_id.as_deref(), Some("812"));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://circleci.com/gh/acme/app/812")
        );
        let f = with(&[("CIRCLE_TAG", "v1.2.3")]);
        assert_eq!((f.ref_kind, f.branch), (Some(RefKind::Tag), None));
        let f = with(&[
            ("CIRCLE_BRANCH", "fix"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/acme/app/pull/5"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(
            (f.pr_number.as_deref(), f.branch.as_deref()),
            (Some("5"), Some("fix"))
        );
    }
}
