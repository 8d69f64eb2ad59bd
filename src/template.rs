//! Tag templates: a locked-down minijinja environment with tagguard's variables and filters.
//!
//! Templates are checked when the policy loads (syntax, unknown variables, unknown filters)
//! and rendered per build. Strict undefined: a variable without a value in this build is an
//! error unless the template asks `is defined` or uses `default`. Fuel bounds the work any
//! template can do, so a hostile policy cannot hang a pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use chrono::NaiveDateTime;
use chrono::format::StrftimeItems;
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use crate::sanitize;

pub mod length;

/// Every variable a template may use, with what it holds (shown in errors and the schema).
pub const VARIABLES: &[(&str, &str)] = &[
    ("sha", "full commit hash"),
    (
        "short_sha",
        "abbreviated commit hash (short-sha-length, default 7)",
    ),
    (
        "branch",
        "branch name, sanitized for tags (source branch on pull requests)",
    ),
    (
        "git_tag",
        "the release tag, else the CI's tag, else the first tag at HEAD; sanitized for tags",
    ),
    ("pr_number", "pull/merge request number"),
    (
        "build_id",
        "CI build ID (GITHUB_RUN_ID, CI_PIPELINE_ID, BUILD_ID)",
    ),
    (
        "build_number",
        "CI build number (GITHUB_RUN_NUMBER, CI_PIPELINE_IID, BUILD_NUMBER)",
    ),
    (
        "timestamp",
        "build time, UTC, %Y%m%d%H%M%S (SOURCE_DATE_EPOCH wins over the clock)",
    ),
    ("commit_timestamp", "commit time, UTC, %Y%m%d%H%M%S"),
    (
        "version",
        "release version; SemVer build metadata `+` becomes `_`",
    ),
    ("major", "release major version"),
    ("minor", "release minor version"),
    ("patch", "release patch version"),
    (
        "prerelease",
        "release pre-release part, e.g. rc.1 (only on pre-releases)",
    ),
];

/// The format of `timestamp` and `commit_timestamp`, and what `date()` parses.
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M%S";

/// Fuel for one render: far more than any real tag template needs (a few hundred).
const FUEL: u64 = 50_000;

/// The environment every template is compiled and rendered in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    env.set_debug(false);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("trim", |v: String| v.trim().to_owned());
    env.add_filter("replace", minijinja::filters::replace);
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("truncate", truncate);
    env.add_filter("date", date);
    env.add_filter("sanitize", |v: String| sanitize::tag_component(&v));
    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env
}

/// The filters a template may use, for "unknown filter" hints and the docs.
pub const FILTERS: &[&str] = &[
    "date", "default", "lower", "replace", "sanitize", "trim", "truncate", "upper",
];

/// `truncate(n)`: the first `n` characters, no ellipsis.
fn truncate(value: String, n: i64) -> Result<String, Error> {
    let n = usize::try_from(n).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "truncate() takes a length of 0 or more",
        )
    })?;
    Ok(value.chars().take(n).collect())
}

/// `date(fmt)`: reformat a `timestamp`/`commit_timestamp` with a strftime format.
fn date(value: String, format: String) -> Result<String, Error> {
    let time = NaiveDateTime::parse_from_str(&value, TIMESTAMP_FORMAT).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("date() works on timestamp and commit_timestamp, not on {value:?}"),
        )
    })?;
    let items = StrftimeItems::new(&format).parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("date() got an invalid strftime format {format:?}"),
        )
    })?;
    Ok(time.format_with_items(items.into_iter()).to_string())
}

/// What went wrong in a template and where inside its source (byte range), when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub range: Option<Range<usize>>,
    /// The variable used without a guard that the rule's `when` does not promise.
    pub unguarded: Option<&'static str>,
    /// The template renders a text that is no valid tag.
    pub invalid_tag: bool,
}

impl TemplateError {
    fn from_minijinja(err: &Error) -> Self {
        let message = match err.detail() {
            Some(detail) => detail.to_owned(),
            None => err.kind().to_string(),
        };
        Self {
            message,
            range: err.range(),
            unguarded: None,
            invalid_tag: false,
        }
    }
}

/// Checks a template once at load time: it parses, uses only known variables and filters,
/// renders against sample values, and uses a variable outside `guaranteed` (those its rule's
/// `when` promises a value) only where it is guarded (`default`, `is defined`).
pub fn check(
    env: &Environment<'static>,
    source: &str,
    guaranteed: &BTreeSet<&'static str>,
) -> Result<(), TemplateError> {
    let template = env
        .template_from_str(source)
        .map_err(|e| TemplateError::from_minijinja(&e))?;
    let used = template.undeclared_variables(false);
    let mut unknown: Vec<&String> = used
        .iter()
        .filter(|name| !VARIABLES.iter().any(|(known, _)| known == name))
        .collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        let hint = crate::suggest::nearest(name, VARIABLES.iter().map(|(n, _)| *n))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(TemplateError {
            message: format!("unknown variable `{name}`{hint}"),
            range: find_identifier(source, name),
            unguarded: None,
            invalid_tag: false,
        });
    }
    let all: BTreeSet<&'static str> = VARIABLES.iter().map(|(n, _)| *n).collect();
    let rendered = template
        .render(sample_values(&all))
        .map_err(|e| TemplateError::from_minijinja(&e))?;
    a_valid_tag(&rendered, &[])?;
    let optional: Vec<&'static str> = VARIABLES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| used.contains(*n) && !guaranteed.contains(n))
        .collect();
    let mut invalid = Ok(());
    for present in subsets(&optional) {
        let mut defined = guaranteed.clone();
        defined.extend(present.iter().copied());
        let rendered = template.render(sample_values(&defined));
        let missing: Vec<&'static str> = optional
            .iter()
            .copied()
            .filter(|n| !present.contains(n))
            .collect();
        let err = match rendered {
            Ok(tag) => {
                // An unguarded variable is the likelier mistake: look for one first.
                if invalid.is_ok() {
                    invalid = a_valid_tag(&tag, &missing);
                }
                continue;
            }
            Err(err) => err,
        };
        if err.kind() != ErrorKind::UndefinedError {
            return Err(TemplateError::from_minijinja(&err));
        }
        let name = blamed(source, err.range(), &missing);
        return Err(TemplateError {
            message: format!("`{name}` may have no value when this rule applies"),
            range: find_identifier(source, name),
            unguarded: Some(name),
            invalid_tag: false,
        });
    }
    invalid
}

/// A sample rendering must be a valid tag, else every real build would fail the same way.
fn a_valid_tag(rendered: &str, missing: &[&str]) -> Result<(), TemplateError> {
    let tag = rendered.trim();
    let Some(reason) = tagguard_registry::tag_problem(tag) else {
        return Ok(());
    };
    let when = match missing {
        [] => "with sample values".to_owned(),
        names => format!(
            "when {} {} no value",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if names.len() == 1 { "has" } else { "have" }
        ),
    };
    Err(TemplateError {
        message: format!("the rule renders the invalid tag {tag:?} {when}: {reason}"),
        range: None,
        unguarded: None,
        invalid_tag: true,
    })
}

/// The variable an undefined-value error is about: one of `missing` named in the failing
/// expression, else the first of them the template names.
fn blamed(source: &str, range: Option<Range<usize>>, missing: &[&'static str]) -> &'static str {
    let expression = range.and_then(|r| source.get(r)).unwrap_or("");
    let named = |text: &str| {
        missing
            .iter()
            .copied()
            .filter(|m| find_identifier(text, m).is_some())
            .min_by_key(|m| find_identifier(text, m).map(|r| r.start))
    };
    named(expression)
        .or_else(|| named(source))
        .or_else(|| missing.first().copied())
        .unwrap_or("?")
}

/// Which of the optional variables have a value, in the orders worth trying: every subset
/// while there are few, else none, each alone, all but each, and all.
fn subsets(optional: &[&'static str]) -> Vec<Vec<&'static str>> {
    let n = optional.len();
    if n <= 6 {
        return (0u32..1 << n)
            .map(|mask| {
                (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| optional[i])
                    .collect()
            })
            .collect();
    }
    let mut out = vec![Vec::new()];
    for i in 0..n {
        out.push(vec![optional[i]]);
        out.push((0..n).filter(|j| *j != i).map(|j| optional[j]).collect());
    }
    out.push(optional.to_vec());
    out
}

/// Renders a template with this build's variables (absent ones are undefined).
pub fn render(
    env: &Environment<'static>,
    source: &str,
    vars: &BTreeMap<&'static str, String>,
) -> Result<String, TemplateError> {
    let ctx: BTreeMap<&str, Value> = vars
        .iter()
        .map(|(k, v)| (*k, Value::from(v.as_str())))
        .collect();
    env.render_str(source, ctx)
        .map_err(|e| TemplateError::from_minijinja(&e))
}

fn sample_values(defined: &BTreeSet<&'static str>) -> BTreeMap<&'static str, Value> {
    let sample = |name: &str| -> Value {
        match name {
            "sha" => "0123456789abcdef0123456789abcdef01234567".into(),
            "short_sha" => "0123456".into(),
            "timestamp" | "commit_timestamp" => "20240102030405".into(),
            "version" => "1.2.3-rc.1".into(),
            "prerelease" => "rc.1".into(),
            "major" | "minor" | "patch" | "pr_number" | "build_number" => "1".into(),
            "build_id" => "123456789".into(),
            _ => "main".into(),
        }
    };
    defined.iter().map(|n| (*n, sample(n))).collect()
}

/// The byte range of the first whole-word occurrence of `name` inside `{{ }}`/`{% %}`.
fn find_identifier(source: &str, name: &str) -> Option<Range<usize>> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    source.match_indices(name).find_map(|(i, _)| {
        let before = source[..i].chars().next_back();
        let after = source[i + name.len()..].chars().next();
        let whole = !before.is_some_and(is_ident) && !after.is_some_and(is_ident);
        whole.then(|| i..i + name.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<&'static str> {
        VARIABLES.iter().map(|(n, _)| *n).collect()
    }

    fn some(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    #[test]
    fn a_variable_the_rule_does_not_promise_must_be_guarded() {
        let env = environment();
        let release = some(&["sha", "version", "major"]);
        let src = "{{ version }}-{{ branch }}";
        let err = check(&env, src, &release).unwrap_err();
        assert_eq!(err.unguarded, Some("branch"));
        assert_eq!(
            err.message,
            "`branch` may have no value when this rule applies"
        );
        assert_eq!(&src[err.range.unwrap()], "branch");
        for guarded in [
            "{{ version }}-{{ branch | default('none') }}",
            "{{ version }}{% if branch is defined %}-{{ branch }}{% endif %}",
            "{{ version }}{% if branch is undefined %}x{% else %}{{ branch }}{% endif %}",
        ] {
            assert_eq!(check(&env, guarded, &release), Ok(()), "{guarded}");
        }
        // Guarding one variable does not guard another behind it.
        let src = "{% if branch is defined %}{{ pr_number }}{% endif %}";
        let err = check(&env, src, &release).unwrap_err();
        assert_eq!(err.unguarded, Some("pr_number"));
        let src = "{{ branch if pr_number is defined else major }}";
        let err = check(&env, src, &release).unwrap_err();
        assert_eq!(err.unguarded, Some("branch"));
    }

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn truncate_keeps_the_first_characters_without_ellipsis() {
        let env = environment();
        let out = render(
            &env,
            "{{ branch | truncate(4) }}",
            &vars(&[("branch", "feature")]),
        );
        assert_eq!(out.unwrap(), "feat");
    }

    #[test]
    fn date_reformats_timestamps() {
        let env = environment();
        let v = vars(&[
            ("timestamp", "20240102030405"),
            ("commit_timestamp", "20231231235959"),
        ]);
        let out = render(
            &env,
            "{{ timestamp | date('%Y%m%d') }}-{{ commit_timestamp | date('%H%M') }}",
            &v,
        );
        assert_eq!(out.unwrap(), "20240102-2359");
    }

    #[test]
    fn date_rejects_bad_formats_instead_of_panicking() {
        let env = environment();
        let v = vars(&[("timestamp", "20240102030405")]);
        let err = render(&env, "{{ timestamp | date('%Q') }}", &v).unwrap_err();
        assert!(err.message.contains("invalid strftime"), "{err:?}");
    }

    #[test]
    fn unknown_variables_point_at_the_name() {
        let env = environment();
        let src = "v-{{ verison }}";
        let err = check(&env, src, &all()).unwrap_err();
        assert_eq!(
            err.message,
            "unknown variable `verison`; did you mean `version`?"
        );
        assert_eq!(&src[err.range.unwrap()], "verison");
    }

    #[test]
    fn syntax_errors_have_a_range() {
        let env = environment();
        let err = check(&env, "v-{{ version ", &all()).unwrap_err();
        assert!(err.range.is_some(), "{err:?}");
    }

    #[test]
    fn unknown_filters_fail_at_load() {
        let env = environment();
        let err = check(&env, "{{ branch | shout }}", &all()).unwrap_err();
        assert!(
            err.message.contains("shout") || err.message.contains("filter"),
            "{err:?}"
        );
    }

    #[test]
    fn a_template_must_render_a_valid_tag() {
        let env = environment();
        let err = check(&env, "a/{{ short_sha }}", &all()).unwrap_err();
        assert_eq!(
            err.message,
            "the rule renders the invalid tag \"a/0123456\" with sample values: '/' is not allowed in a tag (only A-Z a-z 0-9 . _ -)"
        );
        let src = "{% if pr_number is defined %}pr-{{ pr_number }}{% endif %}";
        let err = check(&env, src, &some(&["sha"])).unwrap_err();
        assert!(
            err.message
                .starts_with("the rule renders the invalid tag \"\" when `pr_number` has no value"),
            "{err:?}"
        );
        let src = "{% if pr_number is defined %}pr-{{ pr_number }}{% else %}main{% endif %}";
        assert_eq!(check(&env, src, &some(&["sha"])), Ok(()));
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let env = environment();
        let src = "{% for a in 'xxxxxxxxxx' * 1000 %}{% for b in 'xxxxxxxxxx' * 1000 %}x{% endfor %}{% endfor %}";
        assert_eq!(
            check(&env, src, &all()).unwrap_err().message,
            "engine ran out of fuel"
        );
        let src = "{{ ('x' * 40000) * 40000 }}";
        assert_eq!(
            check(&env, src, &all()).unwrap_err().message,
            "engine ran out of fuel"
        );
    }

    #[test]
    fn undefined_variables_are_errors_unless_asked_about() {
        let env = environment();
        assert!(render(&env, "pr-{{ pr_number }}", &vars(&[])).is_err());
        let out = render(
            &env,
            "{% if pr_number is defined %}pr{% else %}x{% endif %}",
            &vars(&[]),
        );
        assert_eq!(out.unwrap(), "x");
        let out = render(&env, "{{ build_id | default('local') }}", &vars(&[]));
        assert_eq!(out.unwrap(), "local");
    }
}
