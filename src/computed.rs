//! Local copy of the tag-computation output (`tags::Computed`) that `check` consumes, until the
//! core lands on main; then this file goes and `check`/`decision` use `crate::tags` directly.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    pub images: Vec<String>,
    pub tags: Vec<ComputedTag>,
    pub version: Option<semver::Version>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedTag {
    pub tag: String,
    pub immutable: bool,
    pub floating: Option<Floating>,
    /// Index of the rule in the policy's `tags`.
    pub rule: usize,
    pub template: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floating {
    Latest,
    Major,
    Minor,
}
