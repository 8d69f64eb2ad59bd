//! Tag computation, on hand-made contexts.

use super::*;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

fn ctx() -> Context {
    let mut c = Context::for_commit(
        "0123456789abcdef0123456789abcdef01234567",
        DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    );
    c.branch = Some("main".into());
    c.build_time = DateTime::<Utc>::from_timestamp(1_704_164_645, 0).unwrap();
    c
}

fn policy(yaml: &str) -> Policy {
    Policy::parse("test.yml", yaml).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn tags(p: &Policy, c: &Context) -> Vec<String> {
    compute(p, c, &[])
        .unwrap()
        .tags
        .into_iter()
        .map(|t| t.tag)
        .collect()
}

#[test]
fn default_policy_on_a_stable_release_in_ci() {
    let mut c = ctx();
    c.git_tags = vec!["v1.4.2".into()];
    c.build_id = Some("9876".into());
    c.build_number = Some("12".into());
    let got = tags(&Policy::embedded_default(), &c);
    assert_eq!(
        got,
        [
            "1.4.2",
            "1.4",
            "1",
            "latest",
            "sha-0123456",
            "20240102030405-9876"
        ]
    );
}

#[test]
fn default_policy_never_floats_prereleases_or_major_zero() {
    let mut c = ctx();
    c.git_tags = vec!["v2.0.0-rc.1".into()];
    assert_eq!(
        tags(&Policy::embedded_default(), &c),
        ["2.0.0-rc.1", "sha-0123456"]
    );
    c.git_tags = vec!["v0.3.1".into()];
    assert_eq!(
        tags(&Policy::embedded_default(), &c),
        ["0.3.1", "0.3", "latest", "sha-0123456"]
    );
}

#[test]
fn floating_and_immutability_come_from_the_rules() {
    let mut c = ctx();
    c.git_tags = vec!["v1.4.2".into()];
    let computed = compute(&Policy::embedded_default(), &c, &["reg.example/app".into()]).unwrap();
    let by_tag = |t: &str| computed.tags.iter().find(|x| x.tag == t).unwrap().clone();
    assert!(by_tag("1.4.2").immutable);
    assert_eq!(by_tag("1.4").floating, Some(Floating::Minor));
    assert!(!by_tag("latest").immutable);
    assert_eq!(computed.references()[0], "reg.example/app:1.4.2");
    assert_eq!(computed.labels["org.opencontainers.image.version"], "1.4.2");
    assert_eq!(
        computed.labels["org.opencontainers.image.created"],
        "2024-01-02T03:04:05Z"
    );
}

#[test]
fn build_metadata_is_mapped_for_tags_and_kept_in_labels() {
    let mut c = ctx();
    c.git_tags = vec!["v1.2.3+build.7".into()];
    let computed = compute(&Policy::embedded_default(), &c, &[]).unwrap();
    assert_eq!(computed.tags[0].tag, "1.2.3_build.7");
    assert_eq!(
        computed.labels["org.opencontainers.image.version"],
        "1.2.3+build.7"
    );
}

#[test]
fn mutable_rules_and_branch_conditions() {
    let p = policy(
        "version: 1\ntags:\n  - template: \"{{ branch }}-{{ timestamp | date('%Y%m%d') }}\"\n    when: { branch: \"^main$\" }\n  - template: \"pr-{{ pr_number }}\"\n    when: pull-request\n    immutable: false\n",
    );
    assert_eq!(tags(&p, &ctx()), ["main-20240102"]);
    let mut c = ctx();
    c.branch = Some("feature/x".into());
    c.pr_number = Some("12".into());
    let computed = compute(&p, &c, &[]).unwrap();
    assert_eq!(computed.tags.len(), 1);
    assert_eq!(computed.tags[0].tag, "pr-12");
    assert!(!computed.tags[0].immutable);
}

#[test]
fn a_variable_without_a_value_is_an_error_naming_the_rule() {
    // Caught when the policy loads, before any build can meet it.
    let err = Policy::parse(
        "test.yml",
        "version: 1\ntags:\n  - sha-{{ short_sha }}\n  - \"pr-{{ pr_number }}\"\n",
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].line, 4);
    assert_eq!(
        err.problems[0].message,
        "`pr_number` may have no value when this rule applies"
    );
}

#[test]
fn every_rule_that_cannot_give_a_tag_is_reported() {
    // Valid with sample values, invalid with this build's branch name.
    let slash = "  - template: \"{{ branch | replace('x', '/') }}\"\n    when: { branch: \".\" }\n";
    let p = policy(&format!("version: 1\ntags:\n{slash}  - ok\n{slash}"));
    let mut c = ctx();
    c.branch = Some("fix".into());
    let err = compute(&p, &c, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 rules of policy test.yml cannot give a tag in this build"
    );
    let ComputeError::Rules(all) = err else {
        panic!("{err:?}")
    };
    let numbers: Vec<(usize, usize)> = all.errors.iter().map(|e| (e.number, e.line)).collect();
    assert_eq!(numbers, [(1, 3), (3, 6)]);
}

#[test]
fn a_rendered_tag_must_be_valid() {
    // A template that renders an invalid tag with any values is refused when it loads ...
    let err =
        Policy::parse("test.yml", "version: 1\ntags:\n  - \"a/{{ short_sha }}\"\n").unwrap_err();
    assert!(
        err.problems[0]
            .message
            .contains("renders the invalid tag \"a/0123456\""),
        "{err:?}"
    );
    // ... one that does so with this build's values, when it renders.
    let p = policy(
        "version: 1\ntags:\n  - template: \"{{ branch | replace('x', '/') }}\"\n    when: { branch: \".\" }\n",
    );
    let mut c = ctx();
    c.branch = Some("fix".into());
    let err = compute(&p, &c, &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rule 1 (test.yml:3) renders the invalid tag \"fi/\""),
        "{err}"
    );
}

#[test]
fn same_tag_with_conflicting_immutability_is_an_error() {
    let p =
        policy("version: 1\ntags:\n  - template: edge\n  - template: edge\n    immutable: false\n");
    let err = compute(&p, &ctx(), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule 2 (test.yml:4) gives tag \"edge\" as mutable, but rule 1 gives it as immutable"
    );
    let p = policy("version: 1\ntags:\n  - template: edge\n  - template: edge\n");
    assert_eq!(tags(&p, &ctx()), ["edge"]);
}

#[test]
fn source_date_epoch_is_just_the_build_time() {
    let p = policy("version: 1\ntags:\n  - \"{{ timestamp }}-{{ commit_timestamp }}\"\n");
    assert_eq!(tags(&p, &ctx()), ["20240102030405-20231114221320"]);
}

#[test]
fn a_rule_that_can_be_too_long_is_refused_when_it_loads() {
    let long = "version: 1\ntags:\n  - template: \"{{ sha }}-{{ sha }}-{{ branch }}\"\n    when: { branch: \".\" }\n";
    let err = Policy::parse("test.yml", long).unwrap_err();
    assert_eq!(
        err.problems[0].message,
        "this rule can render a tag of 210 characters; a tag holds at most 128"
    );
}

#[test]
fn times_beyond_year_9999_are_refused() {
    let p = policy("version: 1\ntags:\n  - \"{{ timestamp }}\"\n");
    let mut c = ctx();
    c.build_time = DateTime::from_timestamp(253_402_300_800, 0).unwrap();
    let err = compute(&p, &c, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the build time +10000-01-01T00:00:00+00:00 is not in the years 0 to 9999 that a 14-digit timestamp holds"
    );
}

/// Templates that use every variable, filter and branch the length proof knows.
const PROVEN: &[&str] = &[
    "{{ branch }}-{{ timestamp }}-{{ build_id }}",
    "{% if pr_number is defined %}pr-{{ pr_number }}-{{ sha }}{% else %}{{ git_tag | default('none') }}{% endif %}",
    "{{ version | default(short_sha) }}{% if prerelease is defined %}-{{ prerelease | upper }}{% endif %}",
    "{{ branch | lower | replace('-', '__') | truncate(60) }}.{{ build_number | default(commit_timestamp | date('%A%B')) }}",
    "{{ major | default('0') }}.{{ minor | default('0') }}.{{ patch | default('0') }}-{{ branch | sanitize }}",
];

proptest! {
    /// The proven longest tag is never shorter than a real rendering, whatever the values.
    #[test]
    fn no_rendering_is_longer_than_proven(
        branch in any::<String>(),
        ids in proptest::collection::vec(any::<String>(), 3),
        pre in "[0-9A-Za-z-]{1,74}",
        numbers in proptest::collection::vec(any::<u64>(), 3),
    ) {
        let env = crate::template::environment();
        let mut c = ctx();
        c.branch = Some(branch.clone());
        c.git_tags = vec![format!("v{}.{}.{}-{pre}", numbers[0], numbers[1], numbers[2])];
        c.pr_number = Some(ids[0].clone());
        c.build_id = Some(ids[1].clone());
        c.build_number = Some(ids[2].clone());
        let p = policy("version: 1\nshort-sha-length: 12\ntags:\n  - \"x\"\n");
        let Ok(release) = release::find(&p.release, &c.git_tags) else {
            return Ok(());
        };
        let vars = variables(&p, &c, release.as_ref());
        for source in PROVEN {
            let longest = crate::template::length::longest(source, 12).unwrap();
            let tag = crate::template::render(&env, source, &vars).unwrap();
            prop_assert!(tag.chars().count() <= longest, "{} > {} for {:?}", tag, longest, source);
        }
    }

    #[test]
    fn any_branch_name_gives_valid_tags(branch in any::<String>(), build in any::<String>()) {
        let p = policy("version: 1\ntags:\n  - template: \"{{ branch }}\"\n    when: { branch: \"\" }\n  - template: \"{{ branch }}-{{ build_id }}-{{ timestamp }}\"\n    when: { all: [ci, { branch: \"\" }] }\n");
        let mut c = ctx();
        c.branch = Some(branch);
        c.build_id = Some(build.clone());
        c.build_number = Some(build);
        let computed = compute(&p, &c, &[]).unwrap();
        for t in computed.tags {
            prop_assert_eq!(tagguard_registry::tag_problem(&t.tag), None);
        }
    }
}

#[test]
fn computed_tags_carry_their_rule_and_what_a_conflict_means() {
    let mut c = ctx();
    c.git_tags = vec!["v1.4.2".into()];
    c.build_id = Some("9876".into());
    c.build_number = Some("12".into());
    let computed = compute(&Policy::embedded_default(), &c, &[]).unwrap();
    let by_tag = |t: &str| computed.tags.iter().find(|x| x.tag == t).unwrap().clone();
    assert_eq!(by_tag("1.4.2").on_conflict, OnConflict::KeepSameRevision);
    assert_eq!(
        by_tag("sha-0123456").on_conflict,
        OnConflict::KeepSameRevision
    );
    assert_eq!(
        by_tag("20240102030405-9876").on_conflict,
        OnConflict::Refuse
    );
    let version = by_tag("1.4.2");
    assert_eq!(version.rule, 1);
    assert_eq!(
        version.rule_label(&computed.policy),
        format!("rule 1 (<embedded default>:{})", version.rule_line)
    );
    let text = crate::policy::DEFAULT_POLICY;
    let line = text.lines().nth(version.rule_line - 1).unwrap();
    assert!(line.contains("{{ version }}"), "{line}");
}
