//! YAML text -> a generic tree with a location for every value. The only module of Gantry that
//! touches the YAML library (serde-saphyr); everything else works on [`Node`].
//!
//! The YAML rules are GitHub's: YAML 1.2 core schema (`on:` stays the string `on`, `yes`/`no`
//! are strings), no duplicate keys, no `<<` merge keys, anchors and aliases allowed but their
//! expansion bounded so an alias bomb fails fast.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy};

use crate::diagnostic::Diagnostic;
use crate::span::{Pos, Span, Spanned};

/// Largest workflow file accepted, in bytes (GitHub's own limit is about 1 MiB too).
pub const MAX_FILE_SIZE: usize = 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted (GitHub's limit: a mapping in a
/// mapping is depth 2).
pub const MAX_DEPTH: usize = 50;
/// Most YAML events that aliases may replay in one file (guards against alias bombs).
pub const MAX_ALIAS_REPLAY: usize = 100_000;
/// Most values (scalars, sequences, mappings) in one file.
pub const MAX_NODES: usize = 250_000;

/// A YAML value. Mapping keys are strings: scalar keys are converted the way GitHub does
/// (`1:` is the key `"1"`, `true:` is `"true"`, an empty key is `""`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Node {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// `"null"`, `"boolean"`, `"number"`, `"string"`, `"sequence"` or `"mapping"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Number(_) => "number",
            Node::String(_) => "string",
            Node::Seq(_) => "sequence",
            Node::Map(_) => "mapping",
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Node::Seq(_) | Node::Map(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Spanned<String>, Spanned<Node>)]> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Spanned<Node>]> {
        match self {
            Node::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a mapping (exact match).
    pub fn get(&self, key: &str) -> Option<&Spanned<Node>> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(_, v)| v)
    }

    /// A scalar as the string GitHub would use: `null` -> `""`, `true` -> `"true"`, numbers in
    /// their canonical (JavaScript) form. `None` for sequences and mappings.
    pub fn scalar_to_string(&self) -> Option<String> {
        match self {
            Node::Null => Some(String::new()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Number(n) => Some(format_number(*n)),
            Node::String(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// Whether a string value contains `${{`, i.e. is evaluated at run time.
    pub fn has_expression(&self) -> bool {
        match self {
            Node::String(s) => s.contains("${{"),
            Node::Seq(items) => items.iter().any(|i| i.value.has_expression()),
            Node::Map(entries) => entries
                .iter()
                .any(|(k, v)| k.value.contains("${{") || v.value.has_expression()),
            _ => false,
        }
    }

    /// The value as JSON (numbers that are integers become JSON integers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                    // The range check above makes the conversion exact.
                    Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
            }
            Node::String(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Depth of the deepest collection (a scalar is 0, `[1]` is 1, `[[1]]` is 2).
    pub fn depth(&self) -> usize {
        match self {
            Node::Seq(items) => 1 + items.iter().map(|i| i.value.depth()).max().unwrap_or(0),
            Node::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(_, v)| v.value.depth())
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// Formats a number the way JavaScript's `String(n)` does, which is how GitHub turns a YAML
/// number into a string: `1.0` -> `1`, `1e21` -> `1e+21`, `0.0000001` -> `1e-7`.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if n == 0.0 {
        return "0".to_owned();
    }
    // Shortest round-trip digits and exponent, e.g. "1.2345e3".
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n_pos = exp + 1; // position of the decimal point relative to the digits
    let body = if k <= n_pos && n_pos <= 21 {
        format!("{digits}{}", "0".repeat((n_pos - k) as usize))
    } else if 0 < n_pos && n_pos <= 21 {
        let (a, b) = digits.split_at(n_pos as usize);
        format!("{a}.{b}")
    } else if -6 < n_pos && n_pos <= 0 {
        format!("0.{}{digits}", "0".repeat((-n_pos) as usize))
    } else {
        let sign = if n_pos > 0 { "+" } else { "-" };
        let e = (n_pos - 1).abs();
        if k == 1 {
            format!("{digits}e{sign}{e}")
        } else {
            let (a, b) = digits.split_at(1);
            format!("{a}.{b}e{sign}{e}")
        }
    };
    if n < 0.0 { format!("-{body}") } else { body }
}

/// Limits applied while reading YAML.
#[derive(Clone, Debug)]
pub struct YamlLimits {
    pub max_file_size: usize,
    pub max_depth: usize,
    pub max_alias_replay: usize,
    pub max_nodes: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            max_file_size: MAX_FILE_SIZE,
            max_depth: MAX_DEPTH,
            max_alias_replay: MAX_ALIAS_REPLAY,
            max_nodes: MAX_NODES,
        }
    }
}

/// Parses one YAML document into a located tree. On failure, a diagnostic says why and where.
pub fn parse_yaml(source: &str, limits: &YamlLimits) -> Result<Spanned<Node>, Box<Diagnostic>> {
    if source.len() > limits.max_file_size {
        // Point at where the limit is crossed.
        let mut limit = limits.max_file_size;
        while !source.is_char_boundary(limit) {
            limit -= 1;
        }
        let at = LineIndex::new(source).pos(limit);
        return Err(Box::new(
            Diagnostic::error(
                "file-too-large",
                format!(
                    "the file is {} bytes, more than the limit of {} bytes",
                    source.len(),
                    limits.max_file_size
                ),
                Span::new(at, at),
            )
            .with_label(Span::new(at, at), "the limit is crossed here")
            .with_help("split the workflow into smaller files or reusable workflows"),
        ));
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: limits.max_alias_replay,
            max_replay_stack_depth: 32,
        },
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth + 2,
            max_documents: 1,
            max_nodes: limits.max_nodes,
            max_events: limits.max_nodes.saturating_mul(4),
        },
    };
    let raw: serde_saphyr::Spanned<RawNode> = serde_saphyr::from_str_with_options(source, options)
        .map_err(|e| Box::new(yaml_error_to_diagnostic(&e, source)))?;
    let lines = LineIndex::new(source);
    let root = convert(raw, &lines);
    if let Some(span) = too_deep(&root, limits.max_depth) {
        return Err(Box::new(
            Diagnostic::error(
                "max-depth",
                format!(
                    "the workflow nests sequences and mappings more than {} levels deep",
                    limits.max_depth
                ),
                span,
            )
            .with_label(span, "too deep")
            .with_help(
                "flatten this value; a matrix value can be a JSON string read with `fromJSON`",
            ),
        ));
    }
    Ok(root)
}

/// The span of the first collection nested deeper than `max` levels (the root mapping is
/// level 1), if any.
fn too_deep(node: &Spanned<Node>, max: usize) -> Option<Span> {
    fn walk(node: &Spanned<Node>, level: usize, max: usize) -> Option<Span> {
        let children: Box<dyn Iterator<Item = &Spanned<Node>>> = match &node.value {
            Node::Seq(items) => Box::new(items.iter()),
            Node::Map(entries) => Box::new(entries.iter().map(|(_, v)| v)),
            _ => return None,
        };
        if level > max {
            return Some(Span::new(node.span.start, node.span.start));
        }
        for child in children {
            if let Some(span) = walk(child, level + 1, max) {
                return Some(span);
            }
        }
        None
    }
    walk(node, 1, max)
}

fn yaml_error_to_diagnostic(error: &serde_saphyr::Error, source: &str) -> Diagnostic {
    let plain = error.without_snippet().to_string();
    let message = strip_location_prefix(&plain);
    let location = error.location();
    let span = location.and_then(|l| {
        if l.line() == 0 {
            return None;
        }
        let lines = LineIndex::new(source);
        let line = u32::try_from(l.line()).ok()?;
        let column = u32::try_from(l.column()).ok()?;
        let start = lines.pos_at_line_col(line, column);
        let len = usize::try_from(l.span().len()).unwrap_or(1).max(1);
        let end_offset = source[start.offset..]
            .char_indices()
            .nth(len)
            .map_or(source.len(), |(i, _)| start.offset + i);
        let end_offset = source[start.offset..end_offset]
            .find('\n')
            .map_or(end_offset, |i| start.offset + i);
        Some(Span::new(start, lines.pos(end_offset.max(start.offset))))
    });
    let lower = message.to_lowercase();
    let (code, text, help): (&str, String, Option<&str>) = if lower.contains("merge key") {
        (
            "yaml-merge-key",
            "YAML merge keys (`<<`) are not supported".to_owned(),
            Some(
                "GitHub does not support `<<` merge keys; repeat the keys, or use an alias (`*name`) for a whole value",
            ),
        )
    } else if lower.contains("duplicate mapping key") {
        let key = message
            .split_once("duplicate mapping key: ")
            .map_or("", |(_, k)| k)
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or("");
        (
            "duplicate-key",
            format!("the key `{key}` is defined twice in this mapping"),
            Some("remove one of the two entries"),
        )
    } else if lower.contains("tab") {
        (
            "yaml-syntax",
            format!("invalid YAML: {message}"),
            Some("YAML indentation must use spaces, not tabs"),
        )
    } else if lower.contains("documents {") {
        (
            "yaml-syntax",
            "the file holds more than one YAML document".to_owned(),
            Some(
                "a workflow file is one document: remove this `---` and what follows, or move it to its own file",
            ),
        )
    } else if lower.contains("mapping key (sequences and mappings cannot be keys)") {
        (
            "invalid-key",
            "a mapping key must be a string, not a sequence or a mapping".to_owned(),
            Some(
                "write the key as plain text (`name:`); complex keys (`? [a, b]`) are not allowed",
            ),
        )
    } else if lower.contains("depth {") || lower.contains("recursion") {
        (
            "max-depth",
            "the workflow nests sequences and mappings too deeply".to_owned(),
            Some("flatten this value; GitHub accepts at most 50 levels"),
        )
    } else if lower.contains("alias") || lower.contains("budget") || lower.contains("replay") {
        (
            "yaml-too-complex",
            format!("the file expands to too many values ({message})"),
            Some(
                "anchors and aliases must not multiply without bound; a workflow expands to at most 100000 values",
            ),
        )
    } else if lower.contains("multiple documents") || lower.contains("more than one document") {
        (
            "yaml-syntax",
            format!("invalid YAML: {message}"),
            Some("a workflow file holds one YAML document; remove the `---` separators"),
        )
    } else {
        ("yaml-syntax", format!("invalid YAML: {message}"), None)
    };
    // Tabs: point at the first tab of the line, not at the character after it.
    let span = match span {
        Some(s) if lower.contains("tab") => {
            let lines = LineIndex::new(source);
            let line_start = lines.pos_at_line_col(s.start.line, 1).offset;
            let line_end = source[line_start..]
                .find('\n')
                .map_or(source.len(), |i| line_start + i);
            match source[line_start..line_end].find('\t') {
                Some(i) => {
                    let at = lines.pos(line_start + i);
                    Some(Span::new(at, lines.pos(line_start + i + 1)))
                }
                None => Some(s),
            }
        }
        other => other,
    };
    let mut d = Diagnostic::error(code, text, span);
    if code == "duplicate-key"
        && let Some(s) = span
        && let Some(first) = first_definition(source, s)
    {
        d = d
            .with_label(first, "first defined here")
            .with_label(s, "defined again here");
    }
    if let Some(help) = help {
        d = d.with_help(help);
    } else if code == "yaml-syntax"
        && let Some(s) = span
        && let Some(open) = unclosed_bracket_before(source, s.start.offset)
    {
        let lines = LineIndex::new(source);
        let at = lines.pos(open);
        let bracket = &source[open..open + 1];
        d = d
            .with_label(Span::new(at, lines.pos(open + 1)), format!("this `{bracket}` is never closed"))
            .with_help(format!(
                "close the `{bracket}` opened on line {}, or write the list as a block with `- ` items",
                at.line
            ));
    } else if code == "yaml-syntax" {
        d = d.with_help("check the indentation, quotes and brackets at and just before this place");
    }
    d
}

/// The span of an earlier key with the same text and indentation as the key at `again`.
fn first_definition(source: &str, again: Span) -> Option<Span> {
    let key = source.get(again.start.offset..again.end.offset)?;
    let lines = LineIndex::new(source);
    let line_start = lines.pos_at_line_col(again.start.line, 1).offset;
    let indent = &source[line_start..again.start.offset];
    let mut offset = 0;
    for line in source[..line_start].split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(indent)
            && rest.starts_with(key)
            && rest[key.len()..].trim_start().starts_with(':')
        {
            let start = offset + indent.len();
            return Some(Span::new(lines.pos(start), lines.pos(start + key.len())));
        }
        offset += line.len();
    }
    None
}

/// The offset of a `[` or `{` opened on a line before `offset` and not closed on that line
/// (a likely cause of a flow-collection syntax error), looking back a few lines.
fn unclosed_bracket_before(source: &str, offset: usize) -> Option<usize> {
    let before = source.get(..offset)?;
    let error_line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let mut end = error_line_start;
    for _ in 0..20 {
        if end == 0 {
            break;
        }
        let start = source[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &source[start..end - 1];
        let mut stack: Vec<usize> = Vec::new();
        let mut quote: Option<char> = None;
        for (i, c) in line.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if i == 0 || line[..i].ends_with(' ') => break,
                (None, '[' | '{') => stack.push(start + i),
                (None, ']' | '}') => {
                    stack.pop();
                }
                _ => {}
            }
        }
        if let Some(open) = stack.first() {
            return Some(*open);
        }
        end = start;
    }
    None
}

/// `error: line 3 column 2: tabs disallowed` -> `tabs disallowed`.
fn strip_location_prefix(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message).trim();
    let mut rest = first_line.strip_prefix("error: ").unwrap_or(first_line);
    if let Some(after) = rest.strip_prefix("line ")
        && let Some((_, tail)) = after.split_once(": ")
        && after.contains("column")
    {
        rest = tail;
    }
    // Drop the locations the library appends; the diagnostic has its own.
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    rest.trim_end_matches(['.', ' ']).to_owned()
}

/// Maps byte offsets to 1-based line and character column.
pub(crate) struct LineIndex<'a> {
    pub(crate) source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { source, starts }
    }

    /// The position of byte `offset` (clamped to the source, moved back to a char boundary).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        let column = self.source[line_start..offset].chars().count() + 1;
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            offset,
        }
    }

    /// The position of a 1-based line and character column.
    pub(crate) fn pos_at_line_col(&self, line: u32, column: u32) -> Pos {
        let Some(&start) = self.starts.get(line.saturating_sub(1) as usize) else {
            return self.pos(self.source.len());
        };
        let end = self
            .starts
            .get(line as usize)
            .map_or(self.source.len(), |e| e.saturating_sub(1));
        let offset = self.source[start..end]
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map_or(end, |(i, _)| start + i);
        Pos {
            line,
            column,
            offset,
        }
    }
}

/// The tree as serde-saphyr hands it over, before locations are converted.
enum RawNode {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Seq(Vec<serde_saphyr::Spanned<RawNode>>),
    Map(
        Vec<(
            serde_saphyr::Spanned<RawKey>,
            serde_saphyr::Spanned<RawNode>,
        )>,
    ),
}

struct RawKey(String);

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Number(v as f64))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode::Number(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(RawNode::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::String(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_saphyr::Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<RawKey>>()? {
            let value = map.next_value::<serde_saphyr::Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawNodeVisitor)
    }
}

struct RawKeyVisitor;

impl<'de> Visitor<'de> for RawKeyVisitor {
    type Value = RawKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string mapping key (sequences and mappings cannot be keys)")
    }
    fn visit_unit<E>(self) -> Result<RawKey, E> {
        Ok(RawKey(String::new()))
    }
    fn visit_none<E>(self) -> Result<RawKey, E> {
        Ok(RawKey(String::new()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawKey, E> {
        Ok(RawKey(format_number(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawKey, E> {
        Ok(RawKey(format_number(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawKey, E> {
        Ok(RawKey(format_number(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawKey, E> {
        Ok(RawKey(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawKey, E> {
        Ok(RawKey(v))
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawKeyVisitor)
    }
}

/// The span of a value: where it is defined (for an alias, the anchored value, so the text
/// shown is the text that is wrong).
fn location_span(
    referenced: &serde_saphyr::Location,
    defined: &serde_saphyr::Location,
    lines: &LineIndex<'_>,
) -> Span {
    let loc = if defined.line() > 0 {
        defined
    } else {
        referenced
    };
    if loc.line() == 0 {
        return Span::default();
    }
    let s = loc.span();
    let start = match s.byte_offset() {
        Some(b) => lines.pos(usize::try_from(b).unwrap_or(usize::MAX)),
        None => lines.pos_at_line_col(
            u32::try_from(loc.line()).unwrap_or(u32::MAX),
            u32::try_from(loc.column()).unwrap_or(u32::MAX),
        ),
    };
    let end = match s.byte_len() {
        Some(len) => lines.pos(start.offset + usize::try_from(len).unwrap_or(0)),
        None => start,
    };
    Span::new(start, end)
}

fn convert(raw: serde_saphyr::Spanned<RawNode>, lines: &LineIndex<'_>) -> Spanned<Node> {
    let mut span = location_span(&raw.referenced, &raw.defined, lines);
    let node = match raw.value {
        RawNode::Null => Node::Null,
        RawNode::Bool(b) => Node::Bool(b),
        RawNode::Number(n) => Node::Number(n),
        RawNode::String(s) => {
            // A block scalar (`|`, `>-`...) starts at its header, as GitHub reports it.
            if let Some(header) = block_header_start(lines.source, span.start.offset) {
                span.start = lines.pos(header);
            }
            Node::String(s)
        }
        RawNode::Seq(items) => {
            let items: Vec<Spanned<Node>> = items.into_iter().map(|i| convert(i, lines)).collect();
            if let Some(last) = items.last() {
                span.end = span.end.max(last.span.end);
            }
            Node::Seq(items)
        }
        RawNode::Map(entries) => {
            let entries: Vec<(Spanned<String>, Spanned<Node>)> = entries
                .into_iter()
                .map(|(k, v)| {
                    let key_span = location_span(&k.referenced, &k.defined, lines);
                    (Spanned::new(k.value.0, key_span), convert(v, lines))
                })
                .collect();
            if let Some((k, v)) = entries.last() {
                span.end = span.end.max(k.span.end).max(v.span.end);
            }
            Node::Map(entries)
        }
    };
    Spanned::new(node, span)
}

/// The offset of the `|` or `>` header of a block scalar whose content starts at `content`.
fn block_header_start(source: &str, content: usize) -> Option<usize> {
    let before = source.get(..content)?;
    // The header is on an earlier line than the content.
    let line_start = before.trim_end_matches([' ', '\t']).rfind('\n')?;
    let header_line = &before[..line_start];
    let header_line_start = header_line.rfind('\n').map_or(0, |i| i + 1);
    let header_line = &header_line[header_line_start..];
    // Drop a trailing comment, then look at the last token.
    let code = match header_line.find(" #") {
        Some(i) => &header_line[..i],
        None => header_line,
    };
    let code = code.trim_end();
    let token_start = code.rfind([' ', '\t']).map_or(0, |i| i + 1);
    let token = &code[token_start..];
    let mut chars = token.chars();
    let first = chars.next()?;
    let is_header = matches!(first, '|' | '>') && chars.all(|c| matches!(c, '-' | '+' | '1'..='9'));
    is_header.then_some(header_line_start + token_start)
}

/// Where, in the source, the text of a single-line string scalar starts: the byte offset of
/// the first character of `value` within the file, if the scalar is written on one line as is
/// (plain) or quoted without escapes. Used to point carets inside a value.
pub fn value_text_offset(source: &str, span: Span, value: &str) -> Option<usize> {
    if span.start.line != span.end.line || !span.is_known() {
        return None;
    }
    let text = source.get(span.start.offset..span.end.offset)?;
    if text == value {
        return Some(span.start.offset);
    }
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))?;
    (inner == value).then_some(span.start.offset + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Spanned<Node> {
        parse_yaml(src, &YamlLimits::default()).expect("valid YAML")
    }

    #[test]
    fn numbers_format_like_javascript() {
        let check = |n: f64, s: &str| assert_eq!(format_number(n), s);
        check(1.0, "1");
        check(1.5, "1.5");
        check(-2.0, "-2");
        check(0.1, "0.1");
        check(1e21, "1e+21");
        check(1e20, "100000000000000000000");
        check(1.23e-7, "1.23e-7");
        check(0.000001, "0.000001");
        check(123456.789, "123456.789");
        check(f64::INFINITY, "Infinity");
    }

    #[test]
    fn on_and_yes_stay_strings() {
        let root = parse("on: push\nx: yes\ny: true\n");
        let Node::Map(entries) = &root.value else {
            panic!("mapping expected");
        };
        assert_eq!(entries[0].0.value, "on");
        assert_eq!(entries[1].1.value, Node::String("yes".into()));
        assert_eq!(entries[2].1.value, Node::Bool(true));
    }

    #[test]
    fn spans_have_line_column_and_end() {
        let src = "jobs:\n  test:\n    needs: [a, tset]\n";
        let root = parse(src);
        let needs = root
            .value
            .get("jobs")
            .and_then(|j| j.value.get("test"))
            .and_then(|t| t.value.get("needs"))
            .expect("needs");
        let Node::Seq(items) = &needs.value else {
            panic!("sequence expected");
        };
        let s = items[1].span;
        assert_eq!((s.start.line, s.start.column), (3, 16));
        assert_eq!((s.end.line, s.end.column), (3, 20));
        assert_eq!(&src[s.start.offset..s.end.offset], "tset");
    }

    #[test]
    fn aliases_expand() {
        let root = parse("a: &x [1, 2]\nb: *x\n");
        assert_eq!(
            root.value.get("a").map(|n| &n.value),
            root.value.get("b").map(|n| &n.value)
        );
    }

    #[test]
    fn scalar_keys_become_strings() {
        let root = parse("1: a\ntrue: b\n~: c\n");
        let keys: Vec<&str> = root
            .value
            .as_map()
            .expect("map")
            .iter()
            .map(|(k, _)| k.value.as_str())
            .collect();
        assert_eq!(keys, ["1", "true", ""]);
    }

    #[test]
    fn yaml_errors_are_located() {
        let err = parse_yaml("a: 1\na: 2\n", &YamlLimits::default()).expect_err("duplicate");
        assert_eq!(err.code, "duplicate-key");
        assert_eq!(err.line_column(), Some((2, 1)));
        let err =
            parse_yaml("a: &x {b: 1}\nc:\n  <<: *x\n", &YamlLimits::default()).expect_err("merge");
        assert_eq!(err.code, "yaml-merge-key");
        assert_eq!(err.line_column(), Some((3, 3)));
    }

    #[test]
    fn value_text_offset_finds_quoted_text() {
        let src = "a: \"x y\"\nb: x y\n";
        let root = parse(src);
        let a = root.value.get("a").expect("a");
        assert_eq!(value_text_offset(src, a.span, "x y"), Some(4));
        let b = root.value.get("b").expect("b");
        assert_eq!(value_text_offset(src, b.span, "x y"), Some(12));
    }
}
