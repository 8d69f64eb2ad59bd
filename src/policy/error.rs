//! Policy diagnostics: every problem found, each pointing into the file.

use miette::{Diagnostic, NamedSource, SourceSpan};

use super::yaml::Span;

/// A policy that is not valid, with all the problems found in it.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} in policy {name}", count(.problems.len()))]
#[diagnostic(code(tagguard::policy::invalid))]
pub struct PolicyError {
    pub name: String,
    #[source_code]
    pub source_code: NamedSource<String>,
    #[related]
    pub problems: Vec<Problem>,
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

/// One problem: what, where, and how to fix it when we can tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
    /// 1-based line, for plain-text consumers (JSON, editors).
    pub line: usize,
}

impl Problem {
    pub fn new(
        source: &str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            message: message.into(),
            span: span.into(),
            label: label.into(),
            help: None,
            line: line_of(source, span.offset),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The 1-based line holding byte `offset`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
