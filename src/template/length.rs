//! The longest text a template can render, proven from its syntax tree: every variable at its
//! longest value, every branch of every `if`, every filter at its widest.
//!
//! What is proven: text, variables, `~`, `if`/`else` (statements and expressions), `set`,
//! `with`, slices, comparisons and the filters of [`super::FILTERS`]. What is not (a `for`
//! loop, arithmetic, attributes, calls): the part's length is unknown, and a rule with an
//! unknown part must bound it with `truncate(n)` (as a filter or a `{% filter %}` block).

use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::value::Value;

use crate::{release, sanitize};

/// The most characters an OCI tag may have.
pub const MAX_TAG_LEN: usize = 128;

/// The longest commit hash a build may name (SHA-256 repositories; SHA-1 hashes are 40):
/// the context refuses any other.
pub const MAX_SHA_LEN: usize = 64;

/// `timestamp` and `commit_timestamp` are `%Y%m%d%H%M%S` of a time in years 0 to 9999.
pub const TIMESTAMP_LEN: usize = 14;

/// The decimal digits of the largest `u64`: a SemVer major, minor or patch number.
const MAX_NUMBER_LEN: usize = 20;

/// The longest value `name` can have in any build, given the policy's `short-sha-length`.
pub fn max_len(name: &str, short_sha_length: usize) -> Option<usize> {
    Some(match name {
        "sha" => MAX_SHA_LEN,
        "short_sha" => short_sha_length,
        "branch" | "git_tag" => sanitize::MAX_COMPONENT_LEN,
        "pr_number" | "build_id" | "build_number" => sanitize::MAX_ID_LEN,
        "timestamp" | "commit_timestamp" => TIMESTAMP_LEN,
        "version" => release::MAX_VERSION_LEN,
        "major" | "minor" | "patch" => MAX_NUMBER_LEN,
        // The version less its shortest possible `0.0.0-`.
        "prerelease" => release::MAX_VERSION_LEN - "0.0.0-".len(),
        _ => return None,
    })
}

/// An upper bound on a text: its characters, and whether it is surely ASCII (case changes
/// keep an ASCII text's length; other texts can grow, `ß` to `SS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Len {
    pub chars: usize,
    ascii: bool,
}

impl Len {
    fn text(s: &str) -> Len {
        Len {
            chars: s.chars().count(),
            ascii: s.is_ascii(),
        }
    }
    fn ascii(chars: usize) -> Len {
        Len { chars, ascii: true }
    }
    fn plus(self, other: Len) -> Len {
        Len {
            chars: self.chars.saturating_add(other.chars),
            ascii: self.ascii && other.ascii,
        }
    }
    fn max(self, other: Len) -> Len {
        Len {
            chars: self.chars.max(other.chars),
            ascii: self.ascii && other.ascii,
        }
    }
}

/// A part of the template whose length cannot be proven, and the construct that it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbounded {
    pub what: String,
    pub range: std::ops::Range<usize>,
}

type Bound = Result<Len, Unbounded>;

/// The longest rendering of `source`, or the part that has no proven bound.
pub fn longest(source: &str, short_sha_length: usize) -> Result<usize, Unbounded> {
    let whole = 0..source.len();
    let tree = minijinja::machinery::parse(source, "<rule>", Default::default()).map_err(|_| {
        Unbounded {
            what: "a template that does not parse".to_owned(),
            range: whole.clone(),
        }
    })?;
    let mut prover = Prover {
        short_sha_length,
        scope: BTreeMap::new(),
    };
    prover.stmts(std::slice::from_ref(&tree)).map(|l| l.chars)
}

struct Prover<'a> {
    short_sha_length: usize,
    /// Variables the template sets itself.
    scope: BTreeMap<&'a str, Len>,
}

fn unbounded(what: &str, span: minijinja::machinery::Span) -> Unbounded {
    Unbounded {
        what: what.to_owned(),
        range: span.start_offset as usize..span.end_offset as usize,
    }
}

impl<'a> Prover<'a> {
    fn stmts(&mut self, stmts: &[Stmt<'a>]) -> Bound {
        let mut total = Len::ascii(0);
        for stmt in stmts {
            total = total.plus(self.stmt(stmt)?);
        }
        Ok(total)
    }

    /// Each branch on its own scope; afterwards a variable may hold what either set.
    fn branches(&mut self, a: &[Stmt<'a>], b: &[Stmt<'a>]) -> Bound {
        let before = self.scope.clone();
        let left = self.stmts(a)?;
        let after_a = std::mem::replace(&mut self.scope, before);
        let right = self.stmts(b)?;
        for (name, len) in after_a {
            let merged = self.scope.get(name).map_or(len, |l| l.max(len));
            self.scope.insert(name, merged);
        }
        Ok(left.max(right))
    }

    fn stmt(&mut self, stmt: &Stmt<'a>) -> Bound {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitRaw(raw) => Ok(Len::text(raw.raw)),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::IfCond(c) => self.branches(&c.true_body, &c.false_body),
            Stmt::Set(set) => {
                let Expr::Var(var) = &set.target else {
                    return Err(unbounded("an unpacking `set`", set.span()));
                };
                let len = self.expr(&set.expr)?;
                self.scope.insert(var.id, len);
                Ok(Len::ascii(0))
            }
            Stmt::SetBlock(set) => {
                let Expr::Var(var) = &set.target else {
                    return Err(unbounded("an unpacking `set`", set.span()));
                };
                let body = self.stmts(&set.body);
                let len = match &set.filter {
                    Some(filter) => self.filter(filter, body)?,
                    None => body?,
                };
                self.scope.insert(var.id, len);
                Ok(Len::ascii(0))
            }
            Stmt::WithBlock(with) => {
                let outer = self.scope.clone();
                for (target, value) in &with.assignments {
                    let Expr::Var(var) = target else {
                        return Err(unbounded("an unpacking `with`", with.span()));
                    };
                    let len = self.expr(value)?;
                    self.scope.insert(var.id, len);
                }
                let body = self.stmts(&with.body);
                self.scope = outer;
                body
            }
            Stmt::FilterBlock(block) => {
                let body = self.stmts(&block.body);
                self.filter(&block.filter, body)
            }
            Stmt::ForLoop(l) => Err(unbounded("a `for` loop", l.span())),
            Stmt::AutoEscape(a) => Err(unbounded("an `autoescape` block", a.span())),
            Stmt::Do(d) => Err(unbounded("a `do` statement", d.span())),
        }
    }

    fn expr(&mut self, expr: &Expr<'a>) -> Bound {
        match expr {
            Expr::Var(var) => self
                .scope
                .get(var.id)
                .copied()
                .or_else(|| max_len(var.id, self.short_sha_length).map(Len::ascii))
                .ok_or_else(|| unbounded(&format!("`{}`", var.id), var.span())),
            Expr::Const(c) => Ok(Len::text(&c.value.to_string())),
            Expr::Slice(s) => {
                let inner = self.expr(&s.expr)?;
                // A slice never lengthens; `[:n]` keeps at most n.
                let stop = match (&s.start, &s.stop, &s.step) {
                    (None, Some(stop), None) => const_usize(stop),
                    _ => None,
                };
                Ok(Len {
                    chars: stop.map_or(inner.chars, |n| n.min(inner.chars)),
                    ascii: inner.ascii,
                })
            }
            Expr::UnaryOp(op) => match op.op {
                UnaryOpKind::Not => Ok(Len::text("false")),
                UnaryOpKind::Neg => Err(unbounded("arithmetic", op.span())),
            },
            Expr::BinOp(op) => match op.op {
                BinOpKind::Concat => Ok(self.expr(&op.left)?.plus(self.expr(&op.right)?)),
                BinOpKind::ScAnd | BinOpKind::ScOr => {
                    Ok(self.expr(&op.left)?.max(self.expr(&op.right)?))
                }
                BinOpKind::Eq
                | BinOpKind::Ne
                | BinOpKind::Lt
                | BinOpKind::Lte
                | BinOpKind::Gt
                | BinOpKind::Gte
                | BinOpKind::In => Ok(Len::text("false")),
                _ => Err(unbounded("arithmetic", op.span())),
            },
            Expr::Compare(_) | Expr::Test(_) => Ok(Len::text("false")),
            Expr::IfExpr(e) => {
                let yes = self.expr(&e.true_expr)?;
                let no = match &e.false_expr {
                    Some(no) => self.expr(no)?,
                    None => Len::ascii(0),
                };
                Ok(yes.max(no))
            }
            Expr::Filter(_) => {
                let body = Err(unbounded("a filter without input", expr.span()));
                self.filter(expr, body)
            }
            Expr::GetAttr(_) | Expr::GetItem(_) => Err(unbounded("an attribute", expr.span())),
            Expr::Call(_) => Err(unbounded("a call", expr.span())),
            Expr::List(_) | Expr::Tuple(_) | Expr::Map(_) => {
                Err(unbounded("a list or map", expr.span()))
            }
        }
    }

    /// A filter's output bound from its input's (`input` when the filter is a `{% filter %}`
    /// block or has no input expression; else the filter's own input expression).
    fn filter(&mut self, filter: &Expr<'a>, block_input: Bound) -> Bound {
        let Expr::Filter(f) = filter else {
            return Err(unbounded("a filter", filter.span()));
        };
        let input = match &f.expr {
            Some(e) => self.expr(e),
            None => block_input,
        };
        let args: Vec<&Expr<'a>> = f
            .args
            .iter()
            .filter_map(|a| match a {
                CallArg::Pos(e) => Some(e),
                _ => None,
            })
            .collect();
        let unknown = || unbounded(&format!("`{}` with these arguments", f.name), f.span());
        if args.len() != f.args.len() {
            return Err(unknown());
        }
        match (f.name, args.as_slice()) {
            // These bound any input, proven or not.
            ("truncate", [n]) => {
                let n = const_usize(n).ok_or_else(unknown)?;
                Ok(match input {
                    Ok(l) => Len {
                        chars: n.min(l.chars),
                        ascii: l.ascii,
                    },
                    Err(_) => Len {
                        chars: n,
                        ascii: false,
                    },
                })
            }
            ("sanitize", []) => Ok(Len::ascii(sanitize::MAX_COMPONENT_LEN)),
            ("date", [format]) => {
                let format = const_str(format).ok_or_else(unknown)?;
                date_len(&format).ok_or_else(unknown)
            }
            ("lower" | "upper", []) => {
                let l = input?;
                // A case change maps one character to at most three (`ﬃ` to `FFI`).
                Ok(if l.ascii {
                    l
                } else {
                    Len::ascii(l.chars.saturating_mul(3))
                })
            }
            ("trim", []) => input,
            ("default", []) => input,
            ("default", [fallback, ..]) => Ok(input?.max(self.expr(fallback)?)),
            ("replace", [from, to]) => {
                let (from, to) = (const_str(from).ok_or_else(unknown)?, const_str(to));
                let to = to.ok_or_else(unknown)?;
                let l = input?;
                let (f, t) = (from.chars().count(), to.chars().count());
                // Every occurrence at most: with an empty pattern, before every character and
                // at the end.
                let hits = l.chars.checked_div(f).unwrap_or(l.chars + 1);
                Ok(Len {
                    chars: l.chars + hits * t.saturating_sub(f),
                    ascii: l.ascii && to.is_ascii(),
                })
            }
            _ => Err(unknown()),
        }
    }
}

fn const_value(expr: &Expr<'_>) -> Option<Value> {
    match expr {
        Expr::Const(c) => Some(c.value.clone()),
        _ => None,
    }
}

fn const_usize(expr: &Expr<'_>) -> Option<usize> {
    const_value(expr)?.as_usize()
}

fn const_str(expr: &Expr<'_>) -> Option<String> {
    const_value(expr)?.as_str().map(str::to_owned)
}

/// The longest text `date(format)` gives for a time in years 0 to 9999: each strftime item at
/// its longest over every day of a leap year and the first and last days of that range.
fn date_len(format: &str) -> Option<Len> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).parse().ok()?;
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a real day");
    let last = NaiveTime::from_hms_opt(23, 59, 59).expect("a real time");
    let leap = (0..366).map(|n| day(2024, 1, 1) + chrono::Days::new(n));
    let edges = (1..=3)
        .map(|d| day(0, 1, d))
        .chain((29..=31).map(|d| day(9999, 12, d)));
    let times: Vec<NaiveDateTime> = leap.chain(edges).map(|d| d.and_time(last)).collect();
    let mut total = Len::ascii(0);
    for item in items {
        let widest = times
            .iter()
            .map(|t| {
                t.format_with_items(std::iter::once(item.clone()))
                    .to_string()
            })
            .max_by_key(|s| s.chars().count())?;
        total = total.plus(Len::text(&widest));
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(source: &str) -> usize {
        longest(source, 7).unwrap()
    }

    #[test]
    fn every_variable_at_its_longest() {
        assert_eq!(len("sha-{{ short_sha }}"), 4 + 7);
        assert_eq!(
            len("{{ branch }}-{{ timestamp }}-{{ build_id }}-{{ sha }}"),
            80 + 1 + 14 + 1 + 32 + 1 + 64
        );
        assert_eq!(len("v{{ version }}"), 81);
        assert_eq!(longest("{{ short_sha }}", 12), Ok(12));
    }

    #[test]
    fn branches_and_filters() {
        assert_eq!(
            len("{% if pr_number is defined %}pr-{{ pr_number }}{% else %}{{ branch }}{% endif %}"),
            80
        );
        assert_eq!(len("{{ branch | truncate(20) }}-{{ sha[:8] }}"), 29);
        assert_eq!(len("{{ build_id | default('local-build') }}"), 32);
        assert_eq!(len("{{ pr_number | default('x' ~ branch) }}"), 81);
        assert_eq!(len("{{ branch | replace('-', '--') }}"), 160);
        assert_eq!(len("{{ 'ß' | upper }}"), 3);
        assert_eq!(len("{{ commit_timestamp | date('%Y%m%d') }}"), 8);
        assert_eq!(
            len("{{ timestamp | date('%A %B %-d') }}"),
            9 + 1 + 9 + 1 + 2
        );
        assert_eq!(
            len("{% set b = branch | truncate(10) %}{{ b }}-{{ b }}"),
            21
        );
        assert_eq!(
            len(
                "{% filter truncate(100) %}{% for x in [1, 2] %}{{ x }}{% endfor %}{% endfilter %}"
            ),
            100
        );
    }

    #[test]
    fn what_cannot_be_proven_is_named() {
        let src = "x{% for c in branch %}{{ c }}{% endfor %}";
        let err = longest(src, 7).unwrap_err();
        assert_eq!(err.what, "a `for` loop");
        assert_eq!(&src[err.range], "for c in branch %}{{ c }}{% endfor");
        let err = longest("{{ branch * 2 }}", 7).unwrap_err();
        assert_eq!(err.what, "arithmetic");
        let err = longest("{{ branch | replace(sha, 'x') }}", 7).unwrap_err();
        assert_eq!(err.what, "`replace` with these arguments");
    }
}
