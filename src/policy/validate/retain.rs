//! `retain:` of one rule: its keys, and that only a mutable, non-floating rule may have it.

use super::Validator;
use crate::policy::retain::{Age, Alive, Retain};
use crate::policy::yaml::{Node, Value};
use crate::suggest;

pub const RETAIN_KEYS: &[&str] = &["while", "newest", "younger-than"];

impl Validator<'_> {
    /// The rule's `retain`, when the rule may have one: `Some(None)` without the key, `None`
    /// after a problem.
    pub(super) fn retain(
        &mut self,
        node: Option<&Node>,
        immutable: bool,
        floating: bool,
        template: &str,
    ) -> Option<Option<Retain>> {
        let Some(node) = node else {
            return Some(None);
        };
        if immutable || floating {
            let (what, fix) = if floating {
                (
                    "a floating tag",
                    "floating tags move with releases and are never pruned",
                )
            } else {
                (
                    "an immutable tag",
                    "immutable tags are never pruned; to make this rule's tags temporary, add `immutable: false`",
                )
            };
            self.problem(
                node.span,
                format!("`retain` applies to mutable tags only, not to {what}"),
                "on a tag prune never deletes",
            )
            .help = Some(fix.to_owned());
            return None;
        }
        let entries = self.mapping(node, "retain", RETAIN_KEYS)?;
        if entries.is_empty() {
            self.problem(node.span, "`retain` is empty", "nothing keeps these tags")
                .help = Some(
                "say what keeps a tag: `while: branch-exists`, `while: pr-open`, `newest: 5` or `younger-than: 30d`".to_owned(),
            );
            return None;
        }
        let mut retain = Retain::default();
        let mut ok = true;
        for (key, value) in entries {
            match key {
                "while" => match self.alive(value, template) {
                    Some(a) => retain.while_alive = Some(a),
                    None => ok = false,
                },
                "newest" => match value.value {
                    Value::Int(n) if n >= 1 => retain.newest = usize::try_from(n).ok(),
                    _ => {
                        self.expected(value, "newest", "a whole number of at least 1");
                        ok = false;
                    }
                },
                _ => match value.as_str().map(Age::parse) {
                    Some(Ok(age)) => retain.younger_than = Some(age),
                    Some(Err(why)) => {
                        self.problem(
                            value.span,
                            format!("invalid `younger-than`: {why}"),
                            "here",
                        )
                        .help = Some(format!(
                            "write a whole number and a unit of {}, e.g. `30d`",
                            Age::UNITS
                        ));
                        ok = false;
                    }
                    None => {
                        self.expected(value, "younger-than", "an age such as \"30d\"");
                        ok = false;
                    }
                },
            }
        }
        ok.then_some(Some(retain))
    }

    fn alive(&mut self, node: &Node, template: &str) -> Option<Alive> {
        let found = node
            .as_str()
            .and_then(|s| Alive::ALL.into_iter().find(|a| a.name() == s));
        if let Some(a) = found
            && !uses(template, a.variable())
        {
            self.problem(
                node.span,
                format!(
                    "`while: {}` needs a template that names the {}",
                    a.name(),
                    a.variable()
                ),
                "nothing in the tag says which",
            )
            .help = Some(format!(
                "put `{{{{ {} }}}}` in the template, or keep these tags with `newest` or `younger-than`",
                a.variable()
            ));
            return None;
        }
        if found.is_none() {
            let p = self.problem(
                node.span,
                "`while` must be branch-exists or pr-open",
                "invalid value",
            );
            if let Some(near) = node
                .as_str()
                .and_then(|s| suggest::nearest(s, Alive::ALL.iter().map(|a| a.name())))
            {
                p.help = Some(format!("did you mean `{near}`?"));
            }
        }
        found
    }
}

/// Whether `template` uses the variable `name`.
fn uses(template: &str, name: &str) -> bool {
    let env = crate::template::environment();
    env.template_from_str(template)
        .is_ok_and(|t| t.undeclared_variables(false).contains(name))
}

#[cfg(test)]
mod tests {
    use crate::policy::{Age, Alive, Policy, Retain};

    #[test]
    fn every_key_is_read() {
        let policy = Policy::parse(
            "p.yml",
            "version: 1\ntags:\n  - template: \"br-{{ branch }}\"\n    when: { branch: \".\" }\n    immutable: false\n    retain: { while: branch-exists, newest: 3, younger-than: 30d }\n  - \"sha-{{ short_sha }}\"\n",
        )
        .unwrap();
        assert_eq!(
            policy.rules[0].retain,
            Some(Retain {
                while_alive: Some(Alive::BranchExists),
                newest: Some(3),
                younger_than: Some(Age::parse("30d").unwrap()),
            })
        );
        assert_eq!(policy.rules[1].retain, None);
    }

    #[test]
    fn while_needs_the_variable_it_asks_about() {
        let err = Policy::parse(
            "p.yml",
            "version: 1\ntags:\n  - template: \"edge-{{ short_sha }}\"\n    immutable: false\n    retain: { while: pr-open }\n",
        )
        .unwrap_err();
        assert!(
            err.problems[0].message.contains("names the pr_number"),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_retain_is_a_problem() {
        let err = Policy::parse(
            "p.yml",
            "version: 1\ntags:\n  - template: \"pr-{{ pr_number }}\"\n    when: pull-request\n    immutable: false\n    retain: {}\n",
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].message.contains("`retain` is empty"));
    }
}
