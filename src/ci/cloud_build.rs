//! Google Cloud Build: its substitutions, which reach a step's environment only with
//! `options: automapSubstitutions: true` (or the step's own `automapSubstitutions`).
//!
//! Cloud Build numbers no builds: `BUILD_ID` (a UUID) is both the build id and the build
//! number, without its dashes: the UUID's 32 hex digits, whole within the 32 characters a build
//! id may have in a tag (see docs/policy.md, "How long a tag can be"), where the dashed 36 would
//! be cut. A step is known to run in Cloud Build by `BUILDER_OUTPUT`, which Cloud Build
//! sets in every step; without the automapped substitutions tagguard warns and knows nothing
//! more.

use super::{CiFacts, CiKind, Vars, web_url};

pub(super) fn detected(vars: &Vars) -> bool {
    vars.has("BUILDER_OUTPUT")
        || (vars.has("PROJECT_ID") && vars.has("PROJECT_NUMBER") && vars.has("BUILD_ID"))
}

pub(super) fn facts(vars: &Vars) -> CiFacts {
    let mut facts = CiFacts::new(CiKind::CloudBuild);
    if !vars.has("BUILD_ID") {
        log::warn!(
            "this is a Cloud Build step without its substitutions in the environment, so tagguard \
             sees no build ID, branch, tag or pull request: set `options: automapSubstitutions: \
             true` in cloudbuild.yaml (see docs/ci/cloud-build.md)"
        );
        return facts;
    }
    facts.sha = vars.sha("COMMIT_SHA").or_else(|| vars.sha("REVISION_ID"));
    let uuid = vars.get("BUILD_ID");
    facts.build_id = uuid.as_ref().map(|id| id.replace('-', ""));
    facts.build_number = facts.build_id.clone();
    facts.tag = vars.get("TAG_NAME");
    facts.pr_number = vars.number("_PR_NUMBER");
    if facts.pr_number.is_some() {
        facts.branch = vars.get("_HEAD_BRANCH").or_else(|| vars.get("BRANCH_NAME"));
        facts.pr_target = vars.get("_BASE_BRANCH");
        facts.event = Some("pull_request".to_owned());
    } else {
        facts.branch = vars.get("BRANCH_NAME");
    }
    facts.settle_ref_kind();
    facts.run_url = match (vars.get("PROJECT_ID"), &uuid) {
        (Some(project), Some(id)) => {
            let region = vars
                .get("LOCATION")
                .map(|l| format!(";region={l}"))
                .unwrap_or_default();
            web_url(
                format!(
                    "https://console.cloud.google.com/cloud-build/builds{region}/{id}?project={project}"
                ),
                "build",
            )
        }
        _ => None,
    };
    facts
}

#[cfg(test)]
mod tests {
    use super::super::{CiKind, RefKind, detect, detect_with, env_of};

    const AUTOMAPPED: [(&str, &str); 5] = [
        ("BUILDER_OUTPUT", "/builder/outputs"),
        ("PROJECT_ID", "acme-prod"),
        ("PROJECT_NUMBER", "123456789012"),
        ("LOCATION", "europe-west1"),
        ("BUILD_ID", "f2b3c0de-1111-4a4a-9b9b-0123456789ab"),
    ];

    fn with(extra: &[(&str, &str)]) -> super::super::CiFacts {
        detect_with(&AUTOMAPPED, extra)
    }

    #[test]
    fn branch_tag_and_pull_request_triggers() {
        let f = with(&[("BRANCH_NAME", "main"), ("TAG_NAME", "")]);
        assert_eq!(f.kind, CiKind::CloudBuild);
        assert_eq!(f.ref_kind, Some(RefKind::Branch));
        assert_eq!(
            f.build_id.as_deref(),
            Some("f2b3c0de11114a4a9b9b0123456789ab")
        );
        assert_eq!(
            f.run_url.as_deref(),
            Some(
                "https://console.cloud.google.com/cloud-build/builds;region=europe-west1/f2b3c0de-1111-4a4a-9b9b-0123456789ab?project=acme-prod"
            )
        );
        let f = with(&[("TAG_NAME", "v1.2.3")]);
        assert_eq!(
            (f.ref_kind, f.tag.as_deref()),
            (Some(RefKind::Tag), Some("v1.2.3"))
        );
        let f = with(&[
            ("_PR_NUMBER", "5"),
            ("_HEAD_BRANCH", "fix"),
            ("_BASE_BRANCH", "main"),
        ]);
        assert_eq!(f.ref_kind, Some(RefKind::PullRequest));
        assert_eq!(f.branch.as_deref(), Some("fix"));
        assert_eq!(f.pr_target.as_deref(), Some("main"));
    }

    #[test]
    fn without_automapped_substitutions_it_knows_the_ci_only() {
        let f = detect(&env_of(&[("BUILDER_OUTPUT", "/builder/outputs")]));
        assert_eq!(f.kind, CiKind::CloudBuild);
        assert_eq!((f.build_id, f.ref_kind), (None, None));
    }
}
