//! Jenkins: `BUILD_*`, `GIT_COMMIT`, and the multibranch variables (`BRANCH_NAME`,
//! `CHANGE_*`, `TAG_NAME`). Other CIs that set only `BUILD_ID`/`BUILD_NUMBER` are read the same
//! way, as [`CiKind::Generic`].
//!
//! The build id is `BUILD_ID`, the job's build number (since Jenkins 1.597): unique in the job,
//! which in a multibranch project is one branch, so the timestamp before it in the default
//! build tag keeps builds of different branches apart. On a tag build Jenkins puts the tag's
//! name in `BRANCH_NAME` too; on a change request `BRANCH_NAME` is `PR-N` and the source branch
//! is `CHANGE_BRANCH`.

use super::{CiFacts, CiKind, Vars, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.has("JENKINS_URL") || vars.has("JENKINS_HOME")
}

pub(super) fn facts(vars: &Vars, kind: CiKind) -> CiFacts {
    let mut facts = CiFacts::new(kind);
    facts.build_id = vars.get("BUILD_ID");
    facts.build_number = vars.get("BUILD_NUMBER");
    facts.tag = vars.get("TAG_NAME");
    facts.pr_number = vars.get("CHANGE_ID");
    if facts.pr_number.is_some() {
        facts.branch = vars
            .get("CHANGE_BRANCH")
            .or_else(|| vars.get("BRANCH_NAME"));
        facts.pr_target = vars.get("CHANGE_TARGET");
    } else {
        facts.branch = vars.get("BRANCH_NAME");
    }
    facts.settle_ref_kind();
    if kind == CiKind::Jenkins {
        facts.sha = vars.sha("GIT_COMMIT");
        facts.run_url = vars.get("BUILD_URL").and_then(|u| web_url(u, "build"));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    #[test]
    fn multibranch_branch_tag_and_change_request() {
        let base = [
            ("JENKINS_URL", "https://ci.example.com/"),
            ("BUILD_ID", "7"),
            ("BUILD_NUMBER", "7"),
            ("BUILD_URL", "https://ci.example.com/job/app/job/main/7/"),
        ];
        let with = |extra: &[(&str, &str)]| detect_with(&base, extra);
        let f = with(&[("BRANCH_NAME", "main")]);
        assert_eq!(f.kind, CiKind::Jenkins);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://ci.example.com/job/app/job/main/7/")
        );
        let f = with(&[("BRANCH_NAME", "v1.2.3"), ("TAG_NAME", "v1.2.3")]);
        assert_eq!((f.ref_kind, f.branch), (Some(RefKind::Tag), None));
        let f = with(&[
            ("BRANCH_NAME", "PR-5"),
            ("CHANGE_ID", "5"),
            ("CHANGE_BRANCH", "fix"),
            ("CHANGE_TARGET", "main"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(
            (f.branch.as_deref(), f.pr_target.as_deref()),
            (Some("fix"), Some("main"))
        );
    }
}
