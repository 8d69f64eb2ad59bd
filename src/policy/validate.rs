//! From a node tree to a [`Policy`], collecting every problem on the way.

use regex::Regex;
use semver::VersionReq;

use super::condition::{self, Condition};
use super::error::{PolicyError, Problem, line_of};
use super::yaml::{self, Node, Span, Value};
use super::{Floating, Hooks, Policy, RegistryCheck, ReleasePattern, Rule, Source};
use crate::suggest;
use crate::template;

pub const TOP_KEYS: &[&str] = &[
    "version",
    "image",
    "images",
    "release",
    "short-sha-length",
    "tags",
    "hooks",
];
pub const RELEASE_KEYS: &[&str] = &["git-tag"];
pub const HOOKS_KEYS: &[&str] = &["pre-push"];
pub const PRE_PUSH_KEYS: &[&str] = &["registry"];
pub const RULE_KEYS: &[&str] = &["template", "when", "floating", "immutable"];

pub const SUPPORTED_VERSION: i64 = 1;
const DEFAULT_SHORT_SHA: usize = 7;

struct Validator<'s> {
    src: &'s str,
    problems: Vec<Problem>,
}

pub fn validate(source: Source) -> Result<Policy, PolicyError> {
    let mut v = Validator {
        src: &source.text,
        problems: Vec::new(),
    };
    let policy = match yaml::parse(&source.text) {
        Ok(root) => v.policy(&root),
        Err((message, span)) => {
            v.problems.push(Problem::new(
                v.src,
                span,
                format!("invalid YAML: {message}"),
                "here",
            ));
            None
        }
    };
    let mut problems = v.problems;
    problems.sort_by_key(|p| p.span.offset());
    match policy {
        Some(mut policy) if problems.is_empty() => {
            policy.source = source;
            Ok(policy)
        }
        _ => Err(PolicyError {
            name: source.name.clone(),
            source_code: miette::NamedSource::new(source.name, source.text),
            problems,
        }),
    }
}

impl<'s> Validator<'s> {
    fn problem(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Problem {
        self.problems
            .push(Problem::new(self.src, span, message, label));
        self.problems.last_mut().expect("just pushed")
    }

    fn expected(&mut self, node: &Node, what: &str, expected: &str) {
        let found = node.kind();
        self.problem(
            node.span,
            format!("`{what}` must be {expected}, not {found}"),
            format!("expected {expected}"),
        );
    }

    /// The entries of a mapping, with unknown and repeated keys reported.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, what, "a mapping");
            return None;
        };
        let mut seen: Vec<(&str, &Node)> = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.problem(
                    key.span,
                    format!("keys in `{what}` must be strings"),
                    "not a string",
                );
                continue;
            };
            if !allowed.contains(&name) {
                let place = if what == "policy" {
                    "at the top level".to_owned()
                } else {
                    format!("in `{what}`")
                };
                let p = self.problem(
                    key.span,
                    format!("unknown key `{name}` {place}"),
                    "unknown key",
                );
                p.help = Some(match suggest::nearest(name, allowed.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("valid keys: {}", allowed.join(", ")),
                });
                continue;
            }
            if seen.iter().any(|(k, _)| *k == name) {
                self.problem(
                    key.span,
                    format!("`{name}` is given twice in `{what}`"),
                    "repeated key",
                );
                continue;
            }
            seen.push((name, value));
        }
        Some(seen)
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.value {
            Value::String(s) => Some(s),
            _ => {
                self.expected(node, what, "a string");
                None
            }
        }
    }

    fn policy(&mut self, root: &Node) -> Option<Policy> {
        if matches!(root.value, Value::Null) {
            self.problem(root.span, "the policy file is empty", "nothing here")
                .help = Some(format!(
                "start with `version: {SUPPORTED_VERSION}` and a `tags:` list; `tagguard policy default` prints an example"
            ));
            return None;
        }
        let entries = self.mapping(root, "policy", TOP_KEYS)?;
        let get = |k: &str| entries.iter().find(|(name, _)| *name == k).map(|(_, n)| *n);

        let version_ok = match get("version") {
            None => {
                self.problem(
                    Span::new(0, 0),
                    "the policy has no `version`",
                    "add `version: 1`",
                )
                .help = Some(format!(
                    "the first line should be `version: {SUPPORTED_VERSION}`"
                ));
                false
            }
            Some(node) => match node.value {
                Value::Int(SUPPORTED_VERSION) => true,
                Value::Int(n) => {
                    self.problem(
                        node.span,
                        format!("unsupported policy version {n}"),
                        "unsupported",
                    )
                    .help = Some(format!(
                        "this tagguard reads version {SUPPORTED_VERSION}; a newer policy needs a newer tagguard"
                    ));
                    false
                }
                _ => {
                    self.expected(node, "version", "the number 1");
                    false
                }
            },
        };

        let images = self.images(get("image"), get("images"));
        let release = match get("release") {
            Some(node) => self.release(node),
            None => Some(ReleasePattern::default()),
        };
        let short_sha_length = match get("short-sha-length") {
            None => Some(DEFAULT_SHORT_SHA),
            Some(node) => match node.value {
                Value::Int(n @ 4..=40) => Some(n as usize),
                _ => {
                    self.expected(node, "short-sha-length", "a whole number from 4 to 40");
                    None
                }
            },
        };
        let hooks = match get("hooks") {
            Some(node) => self.hooks(node),
            None => Some(Hooks::default()),
        };
        let rules = match get("tags") {
            None => {
                self.problem(Span::new(0, 0), "the policy has no `tags` list", "add `tags:`")
                    .help = Some("`tags:` lists the rules that compute tags; `tagguard policy default` prints an example".to_owned());
                None
            }
            Some(node) => self.rules(node),
        };
        if !version_ok {
            return None;
        }
        Some(Policy {
            images: images?,
            release: release?,
            short_sha_length: short_sha_length?,
            rules: rules?,
            hooks: hooks?,
            source: Source {
                name: String::new(),
                text: String::new(),
            },
        })
    }

    fn images(&mut self, image: Option<&Node>, images: Option<&Node>) -> Option<Vec<String>> {
        let nodes: Vec<&Node> = match (image, images) {
            (Some(one), Some(_)) => {
                self.problem(
                    one.span,
                    "give either `image` or `images`, not both",
                    "second way to name images",
                );
                return None;
            }
            (Some(one), None) => vec![one],
            (None, Some(list)) => match &list.value {
                Value::Seq(items) if !items.is_empty() => items.iter().collect(),
                _ => {
                    self.expected(list, "images", "a non-empty list of image names");
                    return None;
                }
            },
            (None, None) => return Some(Vec::new()),
        };
        let mut out = Vec::new();
        let mut ok = true;
        for node in nodes {
            let Some(name) = self.string(node, "image") else {
                ok = false;
                continue;
            };
            if let Some(why) = image_name_problem(name) {
                self.problem(
                    node.span,
                    format!("invalid image name {name:?}: {why}"),
                    "invalid image name",
                )
                .help = Some(
                    "an image is `[registry/]repository` without a tag, e.g. ghcr.io/acme/app"
                        .to_owned(),
                );
                ok = false;
            } else if out.contains(&name.to_owned()) {
                self.problem(
                    node.span,
                    format!("image {name} is listed twice"),
                    "repeated",
                );
                ok = false;
            } else {
                out.push(name.to_owned());
            }
        }
        ok.then_some(out)
    }

    fn release(&mut self, node: &Node) -> Option<ReleasePattern> {
        let entries = self.mapping(node, "release", RELEASE_KEYS)?;
        let Some((_, pattern)) = entries.iter().find(|(k, _)| *k == "git-tag") else {
            return Some(ReleasePattern::default());
        };
        let text = self.string(pattern, "release.git-tag")?;
        match ReleasePattern::parse(text) {
            Ok(p) => Some(p),
            Err(why) => {
                self.problem(
                    pattern.span,
                    format!("invalid release tag pattern {text:?}: {why}"),
                    "invalid pattern",
                );
                None
            }
        }
    }

    fn hooks(&mut self, node: &Node) -> Option<Hooks> {
        let entries = self.mapping(node, "hooks", HOOKS_KEYS)?;
        let Some((_, pre_push)) = entries.iter().find(|(k, _)| *k == "pre-push") else {
            return Some(Hooks::default());
        };
        let entries = self.mapping(pre_push, "hooks.pre-push", PRE_PUSH_KEYS)?;
        let Some((_, registry)) = entries.iter().find(|(k, _)| *k == "registry") else {
            return Some(Hooks::default());
        };
        // Unquoted `off` reads as the boolean false in YAML 1.1 parsers: take it as meant.
        let found = match registry.value {
            Value::Bool(false) => Some(RegistryCheck::Off),
            _ => registry
                .as_str()
                .and_then(|s| RegistryCheck::ALL.into_iter().find(|m| m.name() == s)),
        };
        match found {
            Some(mode) => Some(Hooks {
                pre_push_registry: mode,
            }),
            None => {
                let p = self.problem(
                    registry.span,
                    "`hooks.pre-push.registry` must be strict, warn or off",
                    "invalid value",
                );
                if let Some(near) = registry
                    .as_str()
                    .and_then(|s| suggest::nearest(s, RegistryCheck::ALL.iter().map(|m| m.name())))
                {
                    p.help = Some(format!("did you mean `{near}`?"));
                }
                None
            }
        }
    }

    fn rules(&mut self, node: &Node) -> Option<Vec<Rule>> {
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

        let template = match get("template") {
            None => {
                self.problem(
                    node.span,
                    format!("rule {} has no `template`", index + 1),
                    "no template",
                );
                None
            }
            Some(t) => self.template(env, t),
        };
        let when = match get("when") {
            None => Some(Condition::Always),
            Some(w) => self.condition(w),
        };
        let floating = match get("floating") {
            None => Some(None),
            Some(f) => match f
                .as_str()
                .and_then(|s| Floating::NAMES.iter().position(|n| *n == s))
            {
                Some(i) => Some(Some(
                    [Floating::Latest, Floating::Major, Floating::Minor][i],
                )),
                None => {
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
            },
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
        let (template, when, floating, immutable) = (template?, when?, floating?, immutable?);
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
            immutable: floating.is_none() && immutable.is_none_or(|(b, _)| b),
            span,
            line: line_of(self.src, span.offset),
        })
    }

    fn template(
        &mut self,
        env: &minijinja::Environment<'static>,
        node: &Node,
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
        if let Err(err) = template::check(env, &text) {
            let span = inner_span(self.src, node.span, &text, err.range);
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
        Some((text, node.span))
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        match &node.value {
            Value::String(name) => match Condition::named(name) {
                Some(c) => Some(c),
                None => {
                    let p = self.problem(
                        node.span,
                        format!("unknown condition `{name}`"),
                        "unknown condition",
                    );
                    p.help = Some(
                        match suggest::nearest(name, condition::NAMED.iter().copied()) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => format!(
                                "conditions: {}, or a mapping with {}",
                                condition::NAMED.join(", "),
                                condition::KEYS.join(", ")
                            ),
                        },
                    );
                    None
                }
            },
            Value::Map(_) => {
                let entries = self.mapping(node, "when", condition::KEYS)?;
                if entries.is_empty() {
                    self.problem(node.span, "an empty `when` mapping", "empty");
                    return None;
                }
                let mut all = Vec::new();
                let mut ok = true;
                for (key, value) in entries {
                    match self.keyed_condition(key, value) {
                        Some(c) => all.push(c),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(if all.len() == 1 {
                    all.remove(0)
                } else {
                    Condition::All(all)
                })
            }
            _ => {
                self.expected(node, "when", "a condition name or a mapping");
                None
            }
        }
    }

    fn keyed_condition(&mut self, key: &str, value: &Node) -> Option<Condition> {
        match key {
            "branch" | "git-tag" => {
                let pattern = self.string(value, key)?;
                match Regex::new(pattern) {
                    Ok(re) => Some(if key == "branch" {
                        Condition::Branch(re)
                    } else {
                        Condition::GitTag(re)
                    }),
                    Err(err) => {
                        let why = regex_reason(&err);
                        self.problem(
                            value.span,
                            format!("invalid regular expression in `{key}`: {why}"),
                            "invalid regex",
                        );
                        None
                    }
                }
            }
            "version" => {
                let text = match &value.value {
                    Value::String(s) => s.clone(),
                    Value::Int(n) => n.to_string(),
                    Value::Float(f) => f.to_string(),
                    _ => {
                        self.expected(value, "version", "a SemVer requirement such as \">=1.0.0\"");
                        return None;
                    }
                };
                match VersionReq::parse(&text) {
                    Ok(req) => Some(Condition::Version(req)),
                    Err(err) => {
                        self.problem(
                            value.span,
                            format!("invalid SemVer requirement {text:?}: {err}"),
                            "invalid requirement",
                        );
                        None
                    }
                }
            }
            "all" | "any" => {
                let Value::Seq(items) = &value.value else {
                    self.expected(value, key, "a list of conditions");
                    return None;
                };
                let parts: Vec<Option<Condition>> =
                    items.iter().map(|i| self.condition(i)).collect();
                let parts: Option<Vec<Condition>> = parts.into_iter().collect();
                let parts = parts?;
                Some(if key == "all" {
                    Condition::All(parts)
                } else {
                    Condition::Any(parts)
                })
            }
            "not" => Some(Condition::Not(Box::new(self.condition(value)?))),
            _ => unreachable!("mapping() only lets known keys through"),
        }
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

/// regex's own message is multi-line with a caret diagram; keep its last line.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Why an image name (`[registry/]repository`, no tag) is not valid, if it is not.
pub fn image_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if name.contains('@') {
        return Some("a digest does not belong in an image name".to_owned());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let has_host = parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost");
    if has_host {
        if first
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
        {
            return Some(format!("{first:?} is not a valid registry host"));
        }
        parts.remove(0);
    }
    let component = Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("valid regex");
    for part in parts {
        if part.contains(':') {
            return Some(
                "a tag does not belong in an image name: tags come from the rules".to_owned(),
            );
        }
        if !component.is_match(part) {
            return Some(format!(
                "repository path component {part:?} must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(image_name_problem("registry.example.com/team/app"), None);
        assert_eq!(image_name_problem("localhost:5000/app"), None);
        assert_eq!(image_name_problem("app"), None);
        assert!(image_name_problem("ghcr.io/Team/app").is_some());
        assert!(image_name_problem("ghcr.io/team/app:1.0").is_some());
        assert!(image_name_problem("app@sha256:00").is_some());
        assert!(image_name_problem("").is_some());
    }
}
