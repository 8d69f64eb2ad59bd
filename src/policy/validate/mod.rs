//! From a node tree to a [`Policy`], collecting every problem on the way.

mod retain;
mod rule;
mod when;

use super::error::{PolicyError, Problem};
use super::yaml::{self, Node, Span, Value};
use super::{Hooks, Policy, RegistryCheck, ReleaseFrom, ReleasePattern, Source};
use crate::suggest;
use tagguard_registry::Reference;

pub const TOP_KEYS: &[&str] = &[
    "version",
    "image",
    "images",
    "release",
    "short-sha-length",
    "tags",
    "hooks",
    "audit",
];
pub const RELEASE_KEYS: &[&str] = &["git-tag", "from"];
pub const HOOKS_KEYS: &[&str] = &["pre-push"];
pub const PRE_PUSH_KEYS: &[&str] = &["registry"];
pub const AUDIT_KEYS: &[&str] = &["record"];
pub const RULE_KEYS: &[&str] = &[
    "template",
    "when",
    "floating",
    "immutable",
    "on-conflict",
    "retain",
];
pub use retain::RETAIN_KEYS;

pub const SUPPORTED_VERSION: i64 = 1;
const DEFAULT_SHORT_SHA: usize = 7;

struct Validator<'s> {
    src: &'s str,
    problems: Vec<Problem>,
    /// The policy's `short-sha-length` once read (the default while it is broken).
    short_sha_length: usize,
}

pub fn validate(source: Source) -> Result<Policy, PolicyError> {
    let mut v = Validator {
        src: &source.text,
        problems: Vec::new(),
        short_sha_length: DEFAULT_SHORT_SHA,
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
            None => Some((ReleasePattern::default(), ReleaseFrom::default())),
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
        self.short_sha_length = short_sha_length.unwrap_or(DEFAULT_SHORT_SHA);
        let hooks = match get("hooks") {
            Some(node) => self.hooks(node),
            None => Some(Hooks::default()),
        };
        let record = match get("audit") {
            Some(node) => self.audit(node),
            None => Some(true),
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
        let (release, release_from) = release?;
        Some(Policy {
            images: images?,
            release,
            release_from,
            short_sha_length: short_sha_length?,
            rules: rules?,
            hooks: hooks?,
            record: record?,
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

    fn release(&mut self, node: &Node) -> Option<(ReleasePattern, ReleaseFrom)> {
        let entries = self.mapping(node, "release", RELEASE_KEYS)?;
        let from = match entries.iter().find(|(k, _)| *k == "from") {
            None => Some(ReleaseFrom::default()),
            Some((_, from)) => {
                let found = from
                    .as_str()
                    .and_then(|s| ReleaseFrom::ALL.into_iter().find(|f| f.name() == s));
                if found.is_none() {
                    self.problem(
                        from.span,
                        "`release.from` must be ci or git",
                        "invalid value",
                    )
                    .help = Some(
                        "ci: the CI's tag build is the release (its branch builds are not); git: any release tag at HEAD".to_owned(),
                    );
                }
                found
            }
        };
        let pattern = match entries.iter().find(|(k, _)| *k == "git-tag") {
            None => Some(ReleasePattern::default()),
            Some((_, pattern)) => {
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
        };
        Some((pattern?, from?))
    }

    /// `audit: { record: BOOL }`: whether `push` records what it wrote for `tagguard audit`.
    fn audit(&mut self, node: &Node) -> Option<bool> {
        let entries = self.mapping(node, "audit", AUDIT_KEYS)?;
        let Some((_, record)) = entries.iter().find(|(k, _)| *k == "record") else {
            return Some(true);
        };
        match record.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.expected(record, "audit.record", "true or false");
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
}

/// Why an image name (`[registry/]repository`, no tag) is not valid, if it is not: the image
/// reference parser's verdict, plus no tag or digest.
pub fn image_name_problem(name: &str) -> Option<String> {
    if name.contains('@') {
        return Some("a digest does not belong in an image name".to_owned());
    }
    match name.parse::<Reference>() {
        Err(e) => {
            // Registries take lowercase repository names only; a host is case-insensitive.
            let lower = name.to_lowercase();
            let fits = lower != name
                && lower
                    .parse::<Reference>()
                    .is_ok_and(|r| r.tag.is_none() && r.digest.is_none());
            Some(match fits {
                true => format!("{}; did you mean {lower}?", e.reason()),
                false => e.reason(),
            })
        }
        Ok(r) if r.tag.is_some() => {
            Some("a tag does not belong in an image name: tags come from the rules".to_owned())
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(image_name_problem("registry.example.com/team/app"), None);
        assert_eq!(image_name_problem("localhost:5000/app"), None);
        assert_eq!(image_name_problem("app"), None);
        assert_eq!(
            image_name_problem("ghcr.io/Team/App").as_deref(),
            Some(
                "repository path component \"Team\" must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`; did you mean ghcr.io/team/app?"
            )
        );
        assert!(
            !image_name_problem("ghcr.io/te am/app")
                .unwrap()
                .contains("did you mean")
        );
        assert!(image_name_problem("ghcr.io/team/app:1.0").is_some());
        assert!(image_name_problem("app@sha256:00").is_some());
        assert!(image_name_problem("").is_some());
    }
}
