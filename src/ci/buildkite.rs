//! Buildkite: `BUILDKITE_*`.
//!
//! The build id is `BUILDKITE_BUILD_NUMBER`: unique in the pipeline, in the build's URL
//! (`BUILDKITE_BUILD_ID` is a UUID, also tag-safe but long). On a tag build Buildkite puts the
//! tag's name in `BUILDKITE_BRANCH` too; `BUILDKITE_TAG` tells them apart.
//! `BUILDKITE_PULL_REQUEST` is the number, or `false`. `BUILDKITE_SOURCE` says what started
//! the build: `schedule`, `ui` (manual), `webhook`, `api`, `trigger_job`.

use super::{CiFacts, CiKind, Vars, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.is("BUILDKITE", "true")
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::Buildkite);
    facts.sha = vars.sha("BUILDKITE_COMMIT");
    facts.build_id = vars.get("BUILDKITE_BUILD_NUMBER");
    facts.build_number = vars.get("BUILDKITE_BUILD_NUMBER");
    facts.branch = vars.get("BUILDKITE_BRANCH");
    facts.tag = vars.get("BUILDKITE_TAG");
    facts.pr_number = vars.number("BUILDKITE_PULL_REQUEST");
    if facts.pr_number.is_some() {
        facts.pr_target = vars.get("BUILDKITE_PULL_REQUEST_BASE_BRANCH");
    }
    facts.settle_ref_kind();
    facts.event = vars.get("BUILDKITE_SOURCE").map(|s| match s.as_str() {
        "ui" => "manual".to_owned(),
        "webhook" if facts.pr_number.is_some() => "pull_request".to_owned(),
        "webhook" => "push".to_owned(),
        other => other.to_owned(),
    });
    facts.run_url = vars
        .get("BUILDKITE_BUILD_URL")
        .and_then(|u| web_url(u, "build"));
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect_with};

    #[test]
    fn branch_tag_pull_request_and_schedule() {
        let base = [
            ("BUILDKITE", "true"),
            ("BUILDKITE_BUILD_NUMBER", "59"),
            ("BUILDKITE_COMMIT", "HEAD"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ];
        let with = |extra: &[(&str, &str)]| detect_with(&base, extra);
        let f = with(&[("BUILDKITE_BRANCH", "main"), ("BUILDKITE_TAG", "")]);
        assert_eq!(f.kind, CiKind::Buildkite);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(f.sha, None, "HEAD is not a commit hash");
        let f = with(&[("BUILDKITE_BRANCH", "v1.2.3"), ("BUILDKITE_TAG", "v1.2.3")]);
        assert_eq!((f.ref_kind, f.branch), (Some(RefKind::Tag), None));
        let f = with(&[
            ("BUILDKITE_BRANCH", "fix"),
            ("BUILDKITE_PULL_REQUEST", "5"),
            ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", "main"),
            ("BUILDKITE_SOURCE", "webhook"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(
            (f.pr_target.as_deref(), f.event.as_deref()),
            (Some("main"), Some("pull_request"))
        );
        let f = with(&[
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_SOURCE", "schedule"),
        ]);
        assert_eq!(f.event.as_deref(), Some("schedule"));
    }
}
