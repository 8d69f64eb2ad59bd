//! A YAML document as a tree of nodes that remember where they stand in the file, so that
//! every problem the validator finds can point at its line.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A byte range in the policy source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.offset, span.len).into()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A value and the span of its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Node {
    /// What a user would call this kind of value, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses `source` into a node tree, or returns the parser's message and where it stopped.
pub fn parse(source: &str) -> Result<Node, (String, Span)> {
    match serde_saphyr::from_str::<Spanned<Value>>(source) {
        Ok(spanned) => Ok(node_from(spanned, source)),
        Err(err) => {
            let span = err
                .location()
                .map(|loc| span_of(&loc, source))
                .unwrap_or_default();
            Err((plain_message(&err.without_snippet().to_string()), span))
        }
    }
}

/// The parser's message without what the diagnostic shows anyway (the position) or what
/// only a library user could act on.
fn plain_message(message: &str) -> String {
    let mut text = message.trim().trim_end_matches('.').to_owned();
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    if let Some(key) = text.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key).trim();
        return format!("the key `{key}` is given twice in one mapping");
    }
    text
}

fn node_from(spanned: Spanned<Value>, source: &str) -> Node {
    let span = span_of(&spanned.referenced, source);
    Node {
        value: spanned.value,
        span,
    }
}

fn span_of(loc: &serde_saphyr::Location, source: &str) -> Span {
    let span = loc.span();
    if let (Some(offset), Some(len)) = (span.byte_offset(), span.byte_len()) {
        return Span::new(offset as usize, len as usize);
    }
    // Fall back to line and column (1-based, in characters).
    let line = loc.line().saturating_sub(1) as usize;
    let column = loc.column().saturating_sub(1) as usize;
    let line_start: usize = source.split_inclusive('\n').take(line).map(str::len).sum();
    let offset = source[line_start.min(source.len())..]
        .char_indices()
        .nth(column)
        .map_or(source.len(), |(i, _)| line_start + i);
    Span::new(offset, 0)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(item);
        }
        Ok(Value::Seq(items.into_iter().map(raw_node).collect()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((raw_node(key), raw_node(value)));
        }
        Ok(Value::Map(entries))
    }
}

/// Nested nodes are built before the source is at hand; `resolve` fixes their spans afterwards.
fn raw_node(spanned: Spanned<Value>) -> Node {
    let span = spanned.referenced.span();
    let (offset, len) = match (span.byte_offset(), span.byte_len()) {
        (Some(o), Some(l)) => (o as usize, l as usize),
        _ => (usize::MAX, 0),
    };
    Node {
        value: spanned.value,
        span: Span::new(offset, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(src: &'a str, node: &Node) -> &'a str {
        &src[node.span.offset..node.span.offset + node.span.len]
    }

    #[test]
    fn nested_nodes_know_their_bytes() {
        let src = "version: 1\ntags:\n  - template: \"sha-{{ short_sha }}\"\n    when: release\n";
        let root = parse(src).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!("{root:?}")
        };
        let (key, value) = &entries[1];
        assert_eq!(text(src, key), "tags");
        let Value::Seq(items) = &value.value else {
            panic!("{value:?}")
        };
        let Value::Map(rule) = &items[0].value else {
            panic!("{items:?}")
        };
        assert_eq!(text(src, &rule[0].1), "\"sha-{{ short_sha }}\"");
        assert_eq!(text(src, &rule[1].1), "release");
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let src = "version: 1\ntags:\n  - template: [\n";
        let (message, span) = parse(src).unwrap_err();
        assert!(message.contains("unclosed bracket"), "{message}");
        assert!(span.offset > 10, "{span:?}");
    }
}
