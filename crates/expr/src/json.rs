//! JSON as `fromJSON()` reads it and `toJSON()` writes it (JavaScript's `JSON.parse`
//! and `JSON.stringify(value, null, 2)`).

use std::fmt::Write as _;

use crate::evaluator::Operand;
use crate::number::to_js_string;
use crate::value::{Object, Value};

/// Deepest nesting `fromJSON()` accepts (deeper input is reported as invalid JSON).
pub const MAX_JSON_DEPTH: usize = 1000;

/// `toJSON(value)` for a plain value.
pub(crate) fn to_pretty_string(v: &Value) -> String {
    write_pretty(&Operand::from_value(v))
}

/// Pretty JSON, two-space indent, `"key": value`, `[]`/`{}` when empty; NaN and
/// ±Infinity are written `null`, -0 is `0`, numbers as JavaScript prints them.
pub(crate) fn write_pretty(v: &Operand<'_>) -> String {
    let mut out = String::new();
    write_operand(&mut out, v, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_operand(out: &mut String, v: &Operand<'_>, level: usize) {
    match v {
        Operand::Null => out.push_str("null"),
        Operand::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Operand::Number(n) => write_number(out, *n),
        Operand::Str(s) => write_string(out, s),
        Operand::Ref(v) => write_value(out, v, level),
        Operand::Owned(v) => write_value(out, v, level),
        Operand::Filtered(items) => {
            write_seq(out, items.iter(), items.len(), level, |out, item, level| {
                write_operand(out, item, level);
            });
        }
    }
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, *n),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => write_seq(out, a.iter(), a.len(), level, write_value),
        Value::Object(o) => write_object(out, o, level),
    }
}

fn write_seq<T>(
    out: &mut String,
    items: impl Iterator<Item = T>,
    len: usize,
    level: usize,
    write: impl Fn(&mut String, T, usize),
) {
    if len == 0 {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('\n');
        indent(out, level + 1);
        write(out, item, level + 1);
    }
    out.push('\n');
    indent(out, level);
    out.push(']');
}

fn write_object(out: &mut String, o: &Object, level: usize) {
    if o.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('\n');
        indent(out, level + 1);
        write_string(out, k);
        out.push_str(": ");
        write_value(out, v, level + 1);
    }
    out.push('\n');
    indent(out, level);
    out.push('}');
}

fn write_number(out: &mut String, n: f64) {
    if n.is_finite() {
        out.push_str(&to_js_string(n));
    } else {
        out.push_str("null");
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `JSON.parse`: strict JSON (no trailing commas, comments, single quotes, NaN or
/// leading zeros). Duplicate keys: the last value wins; keys differing only in case:
/// the first wins. Numbers too large become ±Infinity.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let mut p = JsonParser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.fail("unexpected text after the value"));
    }
    Ok(v)
}

struct JsonParser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl JsonParser<'_> {
    fn fail(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.fail("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.fail("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.fail("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut pairs: Vec<(String, Value)> = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Object(Object::new()));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.fail("expected a key"));
            }
            let key = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.fail("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            // JSON.parse: a repeated key keeps its first position and its last value.
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = v,
                None => pairs.push((key, v)),
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.fail("expected ',' or '}'")),
            }
        }
        let mut o = Object::with_capacity(pairs.len());
        for (k, v) in pairs {
            o.insert_if_absent(k, v);
        }
        Ok(Value::Object(o))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        let s = self.s;
        if s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
            }
            _ => return Err(self.fail("invalid number")),
        }
        if s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let from = self.i;
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            if self.i == from {
                return Err(self.fail("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = s.get(self.i) {
                self.i += 1;
            }
            let from = self.i;
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            if self.i == from {
                return Err(self.fail("invalid number"));
            }
        }
        self.text[start..self.i]
            .parse::<f64>()
            .map(Value::Number)
            .map_err(|_| self.fail("invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.fail("bad \\u escape"))?;
        let mut v = 0;
        for &d in digits {
            let Some(h) = char::from(d).to_digit(16) else {
                return Err(self.fail("bad \\u escape"));
            };
            v = v * 16 + h;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.i;
            while let Some(&c) = self.s.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.text[run_start..self.i]);
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.fail("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            out.push(self.surrogate_pair(hi)?);
                        }
                        _ => return Err(self.fail("bad escape")),
                    }
                }
                _ => return Err(self.fail("unterminated string")),
            }
        }
    }

    /// Combines a `\uD8xx\uDCxx` pair; a lone surrogate becomes U+FFFD.
    fn surrogate_pair(&mut self, hi: u32) -> Result<char, String> {
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.i = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{fffd}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = match parse(input) {
            Ok(v) => to_pretty_string(&v),
            Err(_) => "error".to_owned(),
        };
        assert_eq!(got, expected, "parse({input:?})");
    }

    #[test]
    fn json_round_trips_like_javascript() {
        check("1", "1");
        check("-0", "0");
        check("1e400", "null");
        check("1.5e2", "150");
        check(" [ ] ", "[]");
        check("{}", "{}");
        check("[1,[2]]", "[\n  1,\n  [\n    2\n  ]\n]");
        check(
            r#"{"a":1,"b":{"c":null}}"#,
            "{\n  \"a\": 1,\n  \"b\": {\n    \"c\": null\n  }\n}",
        );
        check(r#"{"a":1,"a":2}"#, "{\n  \"a\": 2\n}");
        check(r#"{"a":1,"A":2}"#, "{\n  \"a\": 1\n}");
        check(r#""\u0041\n\u0001\ud83d\ude00""#, "\"A\\n\\u0001😀\"");
        check(r#""\ud800""#, "\"\u{fffd}\"");
    }

    #[test]
    fn invalid_json_is_rejected() {
        for bad in [
            "",
            "01",
            "[1,]",
            "{\"a\":1,}",
            "NaN",
            "'x'",
            "1 2",
            "[",
            "\"\t\"",
            "-",
            "1.",
            ".5",
            "tru",
        ] {
            check(bad, "error");
        }
        check(&"[".repeat(MAX_JSON_DEPTH + 2), "error");
    }
}
