//! One rule of `tags:`: its template, `when`, `floating`, `immutable` and `on-conflict`.

use super::{RULE_KEYS, Validator};
use crate::policy::condition::Condition;
use crate::policy::error::line_of;
use crate::policy::guarantee;
use crate::policy::yaml::{Node, Span, Value};
use crate::policy::{Floating, OnConflict, Rule};
use crate::suggest;
use crate::template::{self, length};

impl Validator<'_> {
    pub(super) fn rules(&mut self, node: &Node) -> Option<Vec<Rule>> {
        let Value::Seq(items) = &node.value else {
            self.expected(node, "tags", "a list of rules");
            return None;
        };
        if items.is_empty() {
            self.problem(node.span, "`tags` is empty", "no rules").help = Some(
                "add at least one rule, e.g. `- template: \"sha-{{ short_sha }}\"`".to_owned(),
            );
            return None;
        }
        let env = template::environment();
        let mut rules = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match self.rule(&env, index, item) {
                Some(rule) => rules.push(rule),
                None => ok = false,
            }
        }
        ok.then_some(rules)
    }

    fn rule(
        &mut self,
        env: &minijinja::Environment<'static>,
        index: usize,
        node: &Node,
    ) -> Option<Rule> {
        // A bare string is shorthand for `- template: …`.
        let entries = match &node.value {
            Value::String(_) => vec![("template", node)],
            _ => self.mapping(node, "tags[]", RULE_KEYS)?,
        };
        let get = |k: &str| entries.iter().find(|(name, _)| *name == k).map(|(_, n)| *n);

        let when = match get("when") {
            None => Some(Condition::Always),
            Some(w) => self.condition(w),
        };
        let template = match get("template") {
            None => {
                self.problem(
                    node.span,
                    format!("rule {} has no `template`", index + 1),
                    "no template",
                );
                None
            }
            Some(t) => self.template(env, t, when.as_ref(), get("when")),
        };
        let floating = match get("floating") {
            None => Some(None),
            Some(f) => self.floating(f).map(Some),
        };
        let immutable = match get("immutable") {
            None => Some(None),
            Some(i) => match i.value {
                Value::Bool(b) => Some(Some((b, i.span))),
                _ => {
                    self.expected(i, "immutable", "true or false");
                    None
                }
            },
        };
        let on_conflict = match get("on-conflict") {
            None => Some(None),
            Some(node) => self.on_conflict(node).map(|c| Some((c, node.span))),
        };
        let (template, when, floating, immutable, on_conflict) =
            (template?, when?, floating?, immutable?, on_conflict?);
        let immutable_rule = floating.is_none() && immutable.is_none_or(|(b, _)| b);
        let retain = self.retain(
            get("retain"),
            immutable_rule,
            floating.is_some(),
            &template.0,
        )?;
        if let (false, Some((_, span))) = (immutable_rule, on_conflict) {
            self.problem(
                span,
                "`on-conflict` applies to immutable tags only",
                "on a tag that is not immutable",
            )
            .help = Some("mutable and floating tags never conflict: drop `on-conflict`".to_owned());
            return None;
        }
        if let (Some(_), Some((true, span))) = (floating, immutable) {
            self.problem(
                span,
                "a floating tag cannot be immutable",
                "conflicts with `floating`",
            )
            .help = Some("floating tags move with releases; drop `immutable: true`".to_owned());
            return None;
        }
        let (text, span) = template;
        Some(Rule {
            index,
            template: text,
            when,
            floating,
            immutable: immutable_rule,
            on_conflict: on_conflict.map_or(OnConflict::default(), |(c, _)| c),
            retain,
            span,
            line: line_of(self.src, span.offset),
        })
    }

    fn floating(&mut self, f: &Node) -> Option<Floating> {
        let found = f
            .as_str()
            .and_then(|s| Floating::NAMES.iter().position(|n| *n == s));
        if let Some(i) = found {
            return Some([Floating::Latest, Floating::Major, Floating::Minor][i]);
        }
        let p = self.problem(
            f.span,
            "`floating` must be latest, major or minor",
            "invalid value",
        );
        if let Some(near) = f
            .as_str()
            .and_then(|s| suggest::nearest(s, Floating::NAMES))
        {
            p.help = Some(format!("did you mean `{near}`?"));
        }
        None
    }

    fn on_conflict(&mut self, node: &Node) -> Option<OnConflict> {
        let found = node
            .as_str()
            .and_then(|s| OnConflict::ALL.into_iter().find(|c| c.name() == s));
        if found.is_none() {
            let p = self.problem(
                node.span,
                "`on-conflict` must be refuse or keep-same-revision",
                "invalid value",
            );
            if let Some(near) = node
                .as_str()
                .and_then(|s| suggest::nearest(s, OnConflict::ALL.iter().map(|c| c.name())))
            {
                p.help = Some(format!("did you mean `{near}`?"));
            }
        }
        found
    }

    fn template(
        &mut self,
        env: &minijinja::Environment<'static>,
        node: &Node,
        when: Option<&Condition>,
        when_node: Option<&Node>,
    ) -> Option<(String, Span)> {
        let text = match &node.value {
            Value::String(s) => s.clone(),
            // `template: 1` or `template: latest`-like scalars are fine as literal tags.
            Value::Int(n) => n.to_string(),
            _ => {
                self.expected(node, "template", "a string");
                return None;
            }
        };
        if text.trim().is_empty() {
            self.problem(node.span, "the template is empty", "empty template");
            return None;
        }
        // A broken `when` is reported on its own; meanwhile assume it promises everything.
        let guaranteed = when.map_or_else(
            || template::VARIABLES.iter().map(|(n, _)| *n).collect(),
            guarantee::when_holds,
        );
        if let Err(err) = template::check(env, &text, &guaranteed) {
            let span = inner_span(self.src, node.span, &text, err.range.clone());
            if let Some(name) = err.unguarded {
                let when_text = when_node
                    .and_then(|w| self.src.get(w.span.offset..w.span.offset + w.span.len))
                    .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
                let p = self.problem(span, err.message, format!("`{name}` is not guaranteed"));
                p.help = Some(unguarded_help(name, when_text.as_deref(), &guaranteed));
                return None;
            }
            if err.invalid_tag {
                let p = self.problem(span, err.message, "this template");
                p.help = Some(
                    "a tag is 1 to 128 of A-Z a-z 0-9 . _ -, not starting with . or -; give every case a value (`{% else %}…`, `| default(…)`) or limit the rule with `when:`".to_owned(),
                );
                return None;
            }
            let p = self.problem(span, format!("invalid template: {}", err.message), "here");
            if err.message.contains("unknown variable") {
                p.help = Some(format!(
                    "variables: {}",
                    template::VARIABLES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else if err.message.contains("filter") {
                p.help = Some(format!("filters: {}", template::FILTERS.join(", ")));
            }
            return None;
        }
        self.length(env, node, &text)?;
        Some((text, node.span))
    }

    /// Every rendering of the rule fits in a tag, proven for the longest value of each
    /// variable (`template::length`); else a problem naming the parts to bound.
    fn length(
        &mut self,
        env: &minijinja::Environment<'static>,
        node: &Node,
        text: &str,
    ) -> Option<()> {
        let longest = match length::longest(text, self.short_sha_length) {
            Ok(n) if n <= length::MAX_TAG_LEN => return Some(()),
            Ok(n) => n,
            Err(part) => {
                let span = inner_span(self.src, node.span, text, Some(part.range));
                self.problem(
                    span,
                    format!("tagguard cannot prove this rule's tags fit in 128 characters: {} has no known length", part.what),
                    "no known length",
                )
                .help = Some("bound the part with `| truncate(n)`, or the whole template with `{% filter truncate(128) %}…{% endfilter %}`".to_owned());
                return None;
            }
        };
        let mut used: Vec<(usize, String)> = env
            .template_from_str(text)
            .map(|t| t.undeclared_variables(false))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|name| Some((length::max_len(&name, self.short_sha_length)?, name)))
            .collect();
        used.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let parts = used
            .iter()
            .map(|(n, name)| format!("`{name}` {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let example = used
            .first()
            .filter(|(n, _)| *n > longest - length::MAX_TAG_LEN)
            .map(|(n, name)| {
                let keep = n - (longest - length::MAX_TAG_LEN);
                format!(", e.g. `{{{{ {name} | truncate({keep}) }}}}`")
            })
            .unwrap_or_default();
        self.problem(
            node.span,
            format!("this rule can render a tag of {longest} characters; a tag holds at most 128"),
            format!("up to {longest} characters"),
        )
        .help = Some(format!(
            "at their longest, {parts} characters (docs/policy.md, \"How long a tag can be\"); bound a part with `| truncate(n)`{example}, or drop one"
        ));
        None
    }
}

/// The span of `range` inside a template scalar when the file holds its text verbatim
/// (plain or quoted without escapes); else the whole scalar.
fn inner_span(src: &str, scalar: Span, text: &str, range: Option<std::ops::Range<usize>>) -> Span {
    let Some(range) = range else { return scalar };
    let raw = src
        .get(scalar.offset..scalar.offset + scalar.len)
        .unwrap_or("");
    let quote = usize::from(raw.starts_with(['"', '\'']));
    if raw.get(quote..quote + text.len()) == Some(text) {
        let len = range
            .end
            .saturating_sub(range.start)
            .max(1)
            .min(text.len().saturating_sub(range.start));
        Span::new(scalar.offset + quote + range.start.min(text.len()), len)
    } else {
        scalar
    }
}

/// How to fix a template that uses `name` where its `when` does not promise a value.
fn unguarded_help(name: &str, when: Option<&str>, guaranteed: &guarantee::Vars) -> String {
    let fix = match name {
        "version" | "major" | "minor" | "patch" | "git_tag" => "`when: release`".to_owned(),
        "prerelease" => "`when: prerelease`".to_owned(),
        "pr_number" => "`when: pull-request`".to_owned(),
        "build_id" | "build_number" => "`when: ci`".to_owned(),
        "branch" => "`when: { branch: \".\" }` (any branch)".to_owned(),
        _ => "a `when` that promises it".to_owned(),
    };
    let have: Vec<&str> = guaranteed.iter().copied().collect();
    let (applies, keep) = match when {
        Some(when) => (
            format!("`when: {when}` promises"),
            " (with the current condition under `all: [...]`)",
        ),
        None => (
            "a rule without `when` applies to every build, which promises".to_owned(),
            "",
        ),
    };
    format!(
        "{applies} only {}; limit the rule with {fix}{keep}, or write `{{{{ {name} | default(\"…\") }}}}` or `{{% if {name} is defined %}}`",
        have.join(", ")
    )
}
