//! The policy file: which tags to compute and which of them are immutable or floating.
//!
//! Version 1 of the file format is a public contract (see docs/policy.md):
//! extend it, never break it.

mod condition;
mod error;
pub mod guarantee;
mod hooks;
pub mod retain;
mod schema;
mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use condition::{Condition, Facts};
pub use error::{PolicyError, Problem};
pub use hooks::{Hooks, RegistryCheck};
pub use retain::{Age, Alive, Retain};
pub use schema::schema;
pub use validate::image_name_problem;

/// The policy compiled in, used when the repository has no policy file.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.yml");

/// A policy that gives docker/metadata-action's default tags (`policy default --preset
/// metadata-action`), for users who migrate.
pub const METADATA_ACTION_POLICY: &str = include_str!("../../policies/metadata-action.yml");

/// The file looked for in the repository root when no `--policy` is given.
pub const DEFAULT_FILE_NAME: &str = ".tagguard.yml";

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub images: Vec<String>,
    pub release: ReleasePattern,
    /// `release.from`: who says a build is a release.
    pub release_from: ReleaseFrom,
    pub short_sha_length: usize,
    pub rules: Vec<Rule>,
    /// `hooks:`: how the git hooks behave.
    pub hooks: Hooks,
    /// `audit.record`: whether `push` records what it wrote beside the image, for
    /// `tagguard audit` (default true).
    pub record: bool,
    /// Where the policy came from and its text, so later errors can point into it.
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct Source {
    /// A path, or `<embedded default>`.
    pub name: String,
    pub text: String,
}

/// One entry of `tags:`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Position in `tags:`, from 0.
    pub index: usize,
    pub template: String,
    pub when: Condition,
    pub floating: Option<Floating>,
    pub immutable: bool,
    /// `on-conflict`: what an immutable tag that exists for another image means.
    pub on_conflict: OnConflict,
    /// `retain`: how long the tags of a mutable rule live (`tagguard prune`); `None`: for ever.
    pub retain: Option<Retain>,
    /// Where the template text stands in the policy source.
    pub span: yaml::Span,
    /// 1-based line of the template, for messages.
    pub line: usize,
}

/// How a floating tag moves: with every release in its scope, forward only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Floating {
    Latest,
    Major,
    Minor,
}

impl Floating {
    pub const NAMES: [&'static str; 3] = ["latest", "major", "minor"];

    pub fn name(self) -> &'static str {
        match self {
            Floating::Latest => "latest",
            Floating::Major => "major",
            Floating::Minor => "minor",
        }
    }
}

/// `on-conflict`: what to do when an immutable tag already names another image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Refuse (exit 3): the tag stays as it is and nothing is pushed.
    #[default]
    Refuse,
    /// Keep the existing image when its `org.opencontainers.image.revision` is this build's
    /// commit (a CI re-run); refuse otherwise.
    KeepSameRevision,
}

impl OnConflict {
    pub const ALL: [OnConflict; 2] = [OnConflict::Refuse, OnConflict::KeepSameRevision];

    pub fn name(self) -> &'static str {
        match self {
            OnConflict::Refuse => "refuse",
            OnConflict::KeepSameRevision => "keep-same-revision",
        }
    }
}

/// `release.from`: which facts make a build a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReleaseFrom {
    /// The CI decides: a tag build of a release tag is a release, a branch or pull request
    /// build is not, whatever tags HEAD carries. Without a CI (or one that does not say), git.
    #[default]
    Ci,
    /// Any release tag at HEAD makes a release.
    Git,
}

impl ReleaseFrom {
    pub const ALL: [ReleaseFrom; 2] = [ReleaseFrom::Ci, ReleaseFrom::Git];

    pub fn name(self) -> &'static str {
        match self {
            ReleaseFrom::Ci => "ci",
            ReleaseFrom::Git => "git",
        }
    }
}

/// `release.git-tag`: how release tags look, e.g. `v{version}` or `api/v{version}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePattern {
    prefix: String,
    suffix: String,
}

impl ReleasePattern {
    pub const PLACEHOLDER: &'static str = "{version}";

    /// Parses a pattern holding `{version}` exactly once.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        match pattern.split_once(Self::PLACEHOLDER) {
            Some((prefix, suffix)) if !suffix.contains(Self::PLACEHOLDER) => Ok(Self {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            }),
            Some(_) => Err("`{version}` may appear only once".to_owned()),
            None => Err("the pattern must contain `{version}`, e.g. \"v{version}\"".to_owned()),
        }
    }

    /// The version part of a git tag that has this pattern's shape. Only text that starts with
    /// a digit counts, so that a tag like `very-old` is not mistaken for release `ery-old`.
    pub fn version_text<'a>(&self, git_tag: &'a str) -> Option<&'a str> {
        let rest = git_tag
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        rest.starts_with(|c: char| c.is_ascii_digit())
            .then_some(rest)
    }

    /// The git tag this pattern gives a version.
    pub fn git_tag(&self, version: &str) -> String {
        format!("{}{version}{}", self.prefix, self.suffix)
    }
}

impl Default for ReleasePattern {
    fn default() -> Self {
        Self::parse("v{version}").expect("the default pattern is valid")
    }
}

impl Policy {
    /// Parses and validates policy text. `name` is shown in diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
        validate::validate(Source {
            name: name.to_owned(),
            text: text.to_owned(),
        })
    }

    /// The embedded default policy.
    pub fn embedded_default() -> Policy {
        Policy::parse("<embedded default>", DEFAULT_POLICY)
            .expect("the embedded default policy is valid")
    }

    /// Loads the policy: the given file, else `.tagguard.yml` in `root`, else the embedded default.
    pub fn load(explicit: Option<&Path>, root: Option<&Path>) -> Result<Policy, LoadError> {
        let path: PathBuf = match explicit {
            Some(path) => path.to_owned(),
            None => match root.map(|r| r.join(DEFAULT_FILE_NAME)) {
                Some(path) if path.exists() => path,
                _ => return Ok(Policy::embedded_default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Policy::parse(&path.display().to_string(), &text)?)
    }
}

/// Loading a policy fails because the file cannot be read or is not a valid policy.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("could not read policy at {path}: {source}")]
    #[diagnostic(code(tagguard::policy::read))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] PolicyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_patterns() {
        let p = ReleasePattern::parse("api/v{version}").unwrap();
        assert_eq!(p.version_text("api/v1.2.3"), Some("1.2.3"));
        assert_eq!(p.version_text("web/v1.2.3"), None);
        assert_eq!(p.version_text("api/vnext"), None);
        assert_eq!(p.git_tag("2.0.0"), "api/v2.0.0");
        assert!(ReleasePattern::parse("v").is_err());
        assert!(ReleasePattern::parse("{version}-{version}").is_err());
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let policy = Policy::embedded_default();
        assert!(policy.images.is_empty());
        assert!(policy.rules.len() >= 5);
    }
}
