//! `when:` conditions, from their YAML form.

use regex::Regex;
use semver::VersionReq;

use super::Validator;
use crate::policy::condition::{self, Condition};
use crate::policy::yaml::{Node, Value};
use crate::suggest;

impl Validator<'_> {
    pub(super) fn condition(&mut self, node: &Node) -> Option<Condition> {
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
            "event" => {
                let names: Vec<&Node> = match &value.value {
                    Value::Seq(items) => items.iter().collect(),
                    _ => vec![value],
                };
                let mut events = Vec::new();
                for name in names {
                    match name.as_str().filter(|s| !s.trim().is_empty()) {
                        Some(s) => events.push(s.trim().to_owned()),
                        None => {
                            self.expected(name, "event", "an event name such as \"schedule\"");
                            return None;
                        }
                    }
                }
                if events.is_empty() {
                    self.expected(value, "event", "an event name or a list of them");
                    return None;
                }
                Some(Condition::Event(events))
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
