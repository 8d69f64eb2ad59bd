//! Computing tags: a pure function of the policy and the build's context.

use std::collections::BTreeMap;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use semver::Version;
use serde::Serialize;

use crate::context::Context;
use crate::policy::{Facts, Floating, Policy, Rule};
use crate::release::{self, InvalidVersion, Release};
use crate::sanitize;
use crate::template;

/// The tags of one build, for every image of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Computed {
    pub images: Vec<String>,
    pub tags: Vec<ComputedTag>,
    /// The release version, if HEAD is a release.
    pub version: Option<Version>,
    /// The release's git tag.
    pub release_tag: Option<String>,
    /// OCI annotations/labels for the image, like docker/metadata-action's.
    pub labels: BTreeMap<String, String>,
    /// The work tree had uncommitted changes to tracked files.
    pub dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputedTag {
    pub tag: String,
    pub immutable: bool,
    pub floating: Option<Floating>,
    /// Index of the rule in the policy's `tags:` list, from 0.
    pub rule: usize,
    /// The rule's template, to name it in messages.
    pub template: String,
}

impl Computed {
    /// `image:tag` for every image and tag, images first.
    pub fn references(&self) -> Vec<String> {
        self.images
            .iter()
            .flat_map(|image| self.tags.iter().map(move |t| format!("{image}:{}", t.tag)))
            .collect()
    }

    /// Immutable tags that would be computed from uncommitted changes.
    pub fn dirty_immutable_tags(&self) -> Vec<&ComputedTag> {
        if !self.dirty {
            return Vec::new();
        }
        self.tags.iter().filter(|t| t.immutable).collect()
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ComputeError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Release(#[from] InvalidVersion),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rule(Box<RuleError>),
}

/// A rule that cannot give a tag in this build, pointing at the rule in the policy.
#[derive(Debug, thiserror::Error)]
#[error("rule {number} (line {line}) {message}")]
pub struct RuleError {
    /// 1-based position of the rule in `tags:`.
    pub number: usize,
    pub line: usize,
    pub message: String,
    pub code: &'static str,
    pub source_code: NamedSource<String>,
    pub span: SourceSpan,
    pub help: Option<String>,
}

impl Diagnostic for RuleError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_code)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_with_span(Some("this rule's template".to_owned()), self.span);
        Some(Box::new(std::iter::once(label)))
    }
}

impl RuleError {
    fn new(policy: &Policy, rule: &Rule, code: &'static str, message: String) -> Self {
        RuleError {
            number: rule.index + 1,
            line: rule.line,
            message,
            code,
            source_code: NamedSource::new(&policy.source.name, policy.source.text.clone()),
            span: rule.span.into(),
            help: None,
        }
    }

    fn with_help(mut self, help: Option<String>) -> ComputeError {
        self.help = help;
        ComputeError::Rule(Box::new(self))
    }
}

/// Computes the tags `policy` gives the build described by `ctx`, for `images` (the policy's
/// own when empty).
pub fn compute(
    policy: &Policy,
    ctx: &Context,
    images: &[String],
) -> Result<Computed, ComputeError> {
    let release = release::find(&policy.release, &ctx.git_tags)?;
    let vars = variables(policy, ctx, release.as_ref());
    let facts = Facts {
        version: release.as_ref().map(|r| &r.version),
        pull_request: ctx.pr_number.is_some(),
        ci: ctx.build_id.is_some(),
        branch: ctx.branch.as_deref(),
        git_tags: &ctx.git_tags,
    };
    let env = template::environment();
    let mut tags: Vec<ComputedTag> = Vec::new();
    for rule in policy.rules.iter().filter(|r| r.when.holds(&facts)) {
        let tag = render(policy, rule, &env, &vars)?;
        if let Some(earlier) = tags.iter().find(|t| t.tag == tag) {
            let kind = |immutable: bool, floating: Option<Floating>| match floating {
                Some(f) => format!("floating ({})", f.name()),
                None if immutable => "immutable".to_owned(),
                None => "mutable".to_owned(),
            };
            let (a, b) = (
                kind(earlier.immutable, earlier.floating),
                kind(rule.immutable, rule.floating),
            );
            if a != b {
                let message = format!(
                    "gives tag {tag:?} as {b}, but rule {} gives it as {a}",
                    earlier.rule + 1
                );
                return Err(RuleError::new(policy, rule, "tagguard::tags::conflict", message).with_help(Some(
                    "one tag cannot be both; make the templates differ or give both rules the same immutability".to_owned(),
                )));
            }
            continue;
        }
        tags.push(ComputedTag {
            tag,
            immutable: rule.immutable,
            floating: rule.floating,
            rule: rule.index,
            template: rule.template.clone(),
        });
    }
    let images = if images.is_empty() {
        policy.images.clone()
    } else {
        images.to_vec()
    };
    let labels = labels(ctx, release.as_ref(), &tags);
    Ok(Computed {
        images,
        tags,
        version: release.as_ref().map(|r| r.version.clone()),
        release_tag: release.map(|r| r.git_tag),
        labels,
        dirty: ctx.dirty,
    })
}

fn render(
    policy: &Policy,
    rule: &Rule,
    env: &minijinja::Environment<'static>,
    vars: &BTreeMap<&'static str, String>,
) -> Result<String, ComputeError> {
    let rendered = template::render(env, &rule.template, vars).map_err(|err| {
        let missing = template::VARIABLES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !vars.contains_key(name) && rule.template.contains(name))
            .collect::<Vec<_>>();
        let help = (!missing.is_empty()).then(|| {
            format!(
                "{} has no value in this build; limit the rule with `when:` (e.g. `when: release` for version variables) or use `| default(…)`",
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            )
        });
        let message = format!("could not be rendered: {}", err.message);
        RuleError::new(policy, rule, "tagguard::tags::render", message).with_help(help)
    })?;
    let tag = rendered.trim().to_owned();
    if let Some(reason) = sanitize::tag_problem(&tag) {
        let message = format!("renders the invalid tag {tag:?}: {reason}");
        return Err(
            RuleError::new(policy, rule, "tagguard::tags::invalid_tag", message).with_help(None),
        );
    }
    Ok(tag)
}

/// The template variables of this build; variables without a value are left out (undefined).
fn variables(
    policy: &Policy,
    ctx: &Context,
    release: Option<&Release>,
) -> BTreeMap<&'static str, String> {
    let mut vars = BTreeMap::new();
    let stamp =
        |t: &chrono::DateTime<chrono::Utc>| t.format(template::TIMESTAMP_FORMAT).to_string();
    vars.insert("sha", ctx.sha.clone());
    vars.insert(
        "short_sha",
        ctx.sha.chars().take(policy.short_sha_length).collect(),
    );
    vars.insert("timestamp", stamp(&ctx.build_time));
    if let Some(t) = &ctx.commit_time {
        vars.insert("commit_timestamp", stamp(t));
    }
    if let Some(branch) = &ctx.branch {
        vars.insert("branch", sanitize::tag_component(branch));
    }
    let git_tag = release.map(|r| r.git_tag.clone()).or(ctx.ci_tag.clone());
    if let Some(tag) = git_tag {
        vars.insert("git_tag", sanitize::tag_component(&tag));
    }
    for (name, value) in [
        ("pr_number", &ctx.pr_number),
        ("build_id", &ctx.build_id),
        ("build_number", &ctx.build_number),
    ] {
        if let Some(v) = value {
            vars.insert(name, sanitize::tag_component(v));
        }
    }
    if let Some(r) = release {
        let v = &r.version;
        vars.insert("version", release::tag_text(v));
        vars.insert("major", v.major.to_string());
        vars.insert("minor", v.minor.to_string());
        vars.insert("patch", v.patch.to_string());
        if !v.pre.is_empty() {
            vars.insert("prerelease", v.pre.to_string());
        }
    }
    vars
}

fn labels(
    ctx: &Context,
    release: Option<&Release>,
    tags: &[ComputedTag],
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        labels.insert(format!("org.opencontainers.image.{k}"), v);
    };
    put(
        "created",
        ctx.build_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    put("revision", ctx.sha.clone());
    if let Some(version) = release
        .map(|r| r.version.to_string())
        .or_else(|| tags.first().map(|t| t.tag.clone()))
    {
        put("version", version);
    }
    if let Some(url) = &ctx.source_url {
        put("source", url.clone());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::CiKind;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    fn ctx() -> Context {
        Context {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: Some("main".into()),
            git_tags: vec![],
            ci_tag: None,
            pr_number: None,
            build_id: None,
            build_number: None,
            commit_time: DateTime::from_timestamp(1_700_000_000, 0),
            build_time: DateTime::<Utc>::from_timestamp(1_704_164_645, 0).unwrap(),
            dirty: false,
            ci: CiKind::None,
            source_url: None,
        }
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
        let computed =
            compute(&Policy::embedded_default(), &c, &["reg.example/app".into()]).unwrap();
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
        let p = policy("version: 1\ntags:\n  - sha-{{ short_sha }}\n  - \"pr-{{ pr_number }}\"\n");
        let err = compute(&p, &ctx(), &[]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("rule 2 (line 4) could not be rendered"),
            "{text}"
        );
    }

    #[test]
    fn a_rendered_tag_must_be_valid() {
        let p = policy("version: 1\ntags:\n  - \"a/{{ short_sha }}\"\n");
        let err = compute(&p, &ctx(), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("rule 1 (line 3) renders the invalid tag \"a/0123456\""),
            "{err}"
        );
    }

    #[test]
    fn same_tag_with_conflicting_immutability_is_an_error() {
        let p = policy(
            "version: 1\ntags:\n  - template: edge\n  - template: edge\n    immutable: false\n",
        );
        let err = compute(&p, &ctx(), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule 2 (line 4) gives tag \"edge\" as mutable, but rule 1 gives it as immutable"
        );
        let p = policy("version: 1\ntags:\n  - template: edge\n  - template: edge\n");
        assert_eq!(tags(&p, &ctx()), ["edge"]);
    }

    #[test]
    fn source_date_epoch_is_just_the_build_time() {
        let p = policy("version: 1\ntags:\n  - \"{{ timestamp }}-{{ commit_timestamp }}\"\n");
        assert_eq!(tags(&p, &ctx()), ["20240102030405-20231114221320"]);
    }

    proptest! {
        #[test]
        fn any_branch_name_gives_valid_tags(branch in any::<String>(), build in "[0-9]{1,12}") {
            let p = policy("version: 1\ntags:\n  - \"{{ branch }}\"\n  - \"{{ branch }}-{{ build_id }}-{{ timestamp }}\"\n");
            let mut c = ctx();
            c.branch = Some(branch);
            c.build_id = Some(build);
            let computed = compute(&p, &c, &[]).unwrap();
            for t in computed.tags {
                prop_assert_eq!(sanitize::tag_problem(&t.tag), None);
            }
        }
    }
}
