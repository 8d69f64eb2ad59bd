//! Computing tags: a pure function of the policy and the build's context.

use std::collections::BTreeMap;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use semver::Version;
use serde::Serialize;

use crate::ci::RefKind;
use crate::context::Context;
use crate::policy::{Facts, Floating, OnConflict, Policy, ReleaseFrom, Rule};
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
    /// The first changed tracked files when `dirty` (see `git::DIRTY_FILES_SHOWN`).
    pub dirty_files: Vec<String>,
    /// The policy's name (its path, or `<embedded default>`), for messages about rules.
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputedTag {
    pub tag: String,
    pub immutable: bool,
    pub floating: Option<Floating>,
    /// The rule's number: its position in the policy's `tags:` list, from 1, as messages and
    /// every output count rules.
    pub rule: usize,
    /// The 1-based line of the rule's template in the policy.
    pub rule_line: usize,
    /// The rule's template, to name it in messages.
    pub template: String,
    /// What an existing immutable tag that names another image means for this tag.
    pub on_conflict: OnConflict,
}

impl ComputedTag {
    /// `rule 5 (.tagguard.yml:16)`: how messages name the rule, given the policy's name
    /// ([`Computed::policy`]).
    pub fn rule_label(&self, policy: &str) -> String {
        format!("rule {} ({policy}:{})", self.rule, self.rule_line)
    }
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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rules(Box<RuleErrors>),
    #[error("the {what} {time} is not in the years 0 to 9999 that a 14-digit timestamp holds")]
    #[diagnostic(
        code(tagguard::tags::time),
        help(
            "the build time comes from --timestamp, SOURCE_DATE_EPOCH or the clock; the commit time from git or CI_COMMIT_TIMESTAMP"
        )
    )]
    Time { what: &'static str, time: String },
}

/// Several rules that cannot give a tag in this build: all of them, not only the first.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} rules of policy {policy} cannot give a tag in this build", .errors.len())]
#[diagnostic(code(tagguard::tags::rules))]
pub struct RuleErrors {
    pub policy: String,
    #[related]
    pub errors: Vec<RuleError>,
}

/// A rule that cannot give a tag in this build, pointing at the rule in the policy.
#[derive(Debug, thiserror::Error)]
#[error("rule {number} ({policy}:{line}) {message}")]
pub struct RuleError {
    /// 1-based position of the rule in `tags:`.
    pub number: usize,
    /// The policy's name: its path or `<embedded default>`.
    pub policy: String,
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
            policy: policy.source.name.clone(),
            line: rule.line,
            message,
            code,
            source_code: NamedSource::new(&policy.source.name, policy.source.text.clone()),
            span: rule.span.into(),
            help: None,
        }
    }

    fn with_help(mut self, help: Option<String>) -> RuleError {
        self.help = help;
        self
    }
}

/// Computes the tags `policy` gives the build described by `ctx`, for `images` (the policy's
/// own when empty). Every rule that cannot give a tag is reported, not only the first.
pub fn compute(
    policy: &Policy,
    ctx: &Context,
    images: &[String],
) -> Result<Computed, ComputeError> {
    let release = release::find(&policy.release, &release_candidates(policy, ctx))?;
    for (what, time) in [
        ("build time", ctx.build_time),
        ("commit time", ctx.commit_time),
    ] {
        if !(0..=9999).contains(&chrono::Datelike::year(&time)) {
            let time = time.to_rfc3339();
            return Err(ComputeError::Time { what, time });
        }
    }
    let vars = variables(policy, ctx, release.as_ref());
    let facts = Facts {
        version: release.as_ref().map(|r| &r.version),
        pull_request: ctx.pr_number.is_some(),
        tag_build: ctx.ref_kind == Some(RefKind::Tag) && ctx.ci_tag.is_some(),
        ci: ctx.build_id.is_some() && ctx.build_number.is_some(),
        branch: ctx.branch.as_deref(),
        git_tags: &ctx.git_tags,
        event: ctx.event.as_deref(),
    };
    let env = template::environment();
    let mut tags: Vec<ComputedTag> = Vec::new();
    let mut errors: Vec<RuleError> = Vec::new();
    for rule in policy.rules.iter().filter(|r| r.when.holds(&facts)) {
        let tag = match render(policy, rule, &env, &vars) {
            Ok(tag) => tag,
            Err(e) => {
                errors.push(*e);
                continue;
            }
        };
        if let Some(earlier) = tags.iter().find(|t| t.tag == tag) {
            if let Some(e) = conflict(policy, rule, earlier) {
                errors.push(e);
            }
            continue;
        }
        tags.push(ComputedTag {
            tag,
            immutable: rule.immutable,
            floating: rule.floating,
            rule: rule.index + 1,
            rule_line: rule.line,
            template: rule.template.clone(),
            on_conflict: rule.on_conflict,
        });
    }
    match errors.len() {
        0 => {}
        1 => return Err(ComputeError::Rule(Box::new(errors.remove(0)))),
        _ => {
            return Err(ComputeError::Rules(Box::new(RuleErrors {
                policy: policy.source.name.clone(),
                errors,
            })));
        }
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
        dirty_files: ctx.dirty_files.clone(),
        policy: policy.source.name.clone(),
    })
}

/// The tags that may make this build a release. With `release.from: ci`, the CI decides when
/// it says what it builds: a tag build is a release of its own tag only, a branch or pull
/// request build is no release, whatever tags HEAD carries.
fn release_candidates(policy: &Policy, ctx: &Context) -> Vec<String> {
    match (policy.release_from, ctx.ref_kind) {
        (ReleaseFrom::Ci, Some(RefKind::Tag)) => ctx.ci_tag.iter().cloned().collect(),
        (ReleaseFrom::Ci, Some(RefKind::Branch | RefKind::PullRequest)) => Vec::new(),
        (ReleaseFrom::Git, _) | (ReleaseFrom::Ci, None) => ctx.git_tags.clone(),
    }
}

/// The same tag from two rules must agree on what kind of tag it is.
fn conflict(policy: &Policy, rule: &Rule, earlier: &ComputedTag) -> Option<RuleError> {
    let kind = |immutable: bool, floating: Option<Floating>| match floating {
        Some(f) => format!("floating ({})", f.name()),
        None if immutable => "immutable".to_owned(),
        None => "mutable".to_owned(),
    };
    let (a, b) = (
        kind(earlier.immutable, earlier.floating),
        kind(rule.immutable, rule.floating),
    );
    (a != b).then(|| {
        let message = format!(
            "gives tag {:?} as {b}, but rule {} gives it as {a}",
            earlier.tag, earlier.rule
        );
        RuleError::new(policy, rule, "tagguard::tags::conflict", message).with_help(Some(
            "one tag cannot be both; make the templates differ or give both rules the same immutability".to_owned(),
        ))
    })
}

fn render(
    policy: &Policy,
    rule: &Rule,
    env: &minijinja::Environment<'static>,
    vars: &BTreeMap<&'static str, String>,
) -> Result<String, Box<RuleError>> {
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
        Box::new(RuleError::new(policy, rule, "tagguard::tags::render", message).with_help(help))
    })?;
    let tag = rendered.trim().to_owned();
    if let Some(reason) = tagguard_registry::tag_problem(&tag) {
        let message = format!("renders the invalid tag {tag:?}: {reason}");
        return Err(Box::new(
            RuleError::new(policy, rule, "tagguard::tags::invalid_tag", message).with_help(None),
        ));
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
    vars.insert("commit_timestamp", stamp(&ctx.commit_time));
    if let Some(branch) = &ctx.branch {
        vars.insert("branch", sanitize::tag_component(branch));
    }
    // Any tag at HEAD gives `git_tag` a value, so that a `git-tag:` condition promises it.
    let git_tag = release
        .map(|r| r.git_tag.clone())
        .or(ctx.ci_tag.clone())
        .or_else(|| ctx.git_tags.first().cloned());
    if let Some(tag) = git_tag {
        vars.insert("git_tag", sanitize::tag_component(&tag));
    }
    for (name, value) in [
        ("pr_number", &ctx.pr_number),
        ("build_id", &ctx.build_id),
        ("build_number", &ctx.build_number),
    ] {
        if let Some(v) = value {
            vars.insert(name, sanitize::tag_id(v));
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
mod tests;
