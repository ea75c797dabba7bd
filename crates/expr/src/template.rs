//! Strings with embedded `${{ }}` expressions, as workflow values are written.

use std::fmt;

use crate::error::{Error, ErrorKind, Span, Stage};
use crate::evaluator::{Contexts, evaluate, evaluate_to_string};
use crate::expr::Expr;
use crate::number::is_js_whitespace;
use crate::parser::{ParseOptions, parse};
use crate::value::Value;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Text copied as is.
    Literal {
        /// The text.
        text: String,
        /// Where it is in the template (bytes).
        span: Span,
    },
    /// A `${{ expression }}`.
    Expression {
        /// The parsed expression (its spans are relative to its own source).
        expr: Expr,
        /// Where the whole `${{ ... }}` is in the template (bytes).
        span: Span,
        /// Byte offset of the expression's source (after trimming) in the template:
        /// add it to a span of `expr` to point into the template.
        offset: usize,
    },
}

/// A string such as `Hello ${{ github.actor }}!`, split into literal text and expressions.
///
/// `}}` inside a quoted string does not end an expression; a `${{` without its `}}` and
/// an empty `${{ }}` are errors. Error spans are relative to the template string.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

const OPEN: &str = "${{";

impl Template {
    /// Splits and parses `s`, allowing what a running job allows
    /// ([`ParseOptions::runtime`]).
    pub fn parse(s: &str) -> Result<Template, Error> {
        Template::parse_with(s, &ParseOptions::runtime())
    }

    /// Splits and parses `s` with the given options. The first error is returned.
    pub fn parse_with(s: &str, opts: &ParseOptions) -> Result<Template, Error> {
        let mut parts = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < s.len() {
            let Some(start) = s[i..].find(OPEN).map(|p| p + i) else {
                parts.push(Part::Literal {
                    text: s[i..].to_owned(),
                    span: Span::new(i, s.len()),
                });
                break;
            };
            if start > i {
                parts.push(Part::Literal {
                    text: s[i..start].to_owned(),
                    span: Span::new(i, start),
                });
            }
            let Some(end) = closing(b, start + OPEN.len()) else {
                return Err(Error::new(
                    Stage::Parsing,
                    ErrorKind::UnclosedExpression,
                    "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.".to_owned(),
                    Some(Span::new(start, s.len())),
                ));
            };
            // `end` is the index of the second '}' of "}}".
            let raw = &s[start + OPEN.len()..end - 1];
            let leading = raw.len() - raw.trim_start_matches(is_js_whitespace).len();
            let trimmed = raw.trim_matches(is_js_whitespace);
            let span = Span::new(start, end + 1);
            if trimmed.is_empty() {
                return Err(Error::new(
                    Stage::Parsing,
                    ErrorKind::EmptyExpression,
                    "An expression was expected".to_owned(),
                    Some(span),
                ));
            }
            let offset = start + OPEN.len() + leading;
            let expr = parse(trimmed, opts).map_err(|e| e.shifted(offset))?;
            parts.push(Part::Expression { expr, span, offset });
            i = end + 1;
        }
        Ok(Template {
            source: s.to_owned(),
            parts,
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal and expression parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The expressions with the byte offset of each one's source in the template.
    pub fn expressions(&self) -> impl Iterator<Item = (&Expr, usize)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expression { expr, offset, .. } => Some((expr, *offset)),
            Part::Literal { .. } => None,
        })
    }

    /// Whether there is no `${{ }}` at all.
    pub fn is_literal(&self) -> bool {
        self.expressions().next().is_none()
    }

    /// The expression, when the template is exactly one `${{ }}` with at most white
    /// space around it (as in `if: ${{ x }}`).
    ///
    /// Note that [`Template::evaluate`] still treats surrounding white space as text,
    /// as GitHub does: only a template with no text at all yields the value itself.
    pub fn single_expression(&self) -> Option<&Expr> {
        let mut found = None;
        for part in &self.parts {
            match part {
                Part::Literal { text, .. } if text.chars().all(is_js_whitespace) => {}
                Part::Literal { .. } => return None,
                Part::Expression { expr, .. } => {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(expr);
                }
            }
        }
        found
    }

    /// Evaluates the template. A template that is exactly one `${{ }}` (no text around
    /// it) yields that value as is (an object stays an object); otherwise the result is
    /// a string with each expression's value coerced (`null` → `''`, objects → `Object`).
    pub fn evaluate(&self, ctx: &Contexts) -> Result<Value, Error> {
        if let [Part::Expression { expr, offset, .. }] = self.parts.as_slice() {
            return evaluate(expr, ctx).map_err(|e| e.shifted(*offset));
        }
        self.evaluate_to_string(ctx).map(Value::String)
    }

    /// Evaluates the template to the string GitHub would produce.
    pub fn evaluate_to_string(&self, ctx: &Contexts) -> Result<String, Error> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal { text, .. } => out.push_str(text),
                Part::Expression { expr, offset, .. } => {
                    evaluate_to_string(expr, ctx, &mut out).map_err(|e| e.shifted(*offset))?;
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Finds the `}}` closing an expression whose text starts at `from`: quotes toggle a
/// string in which `}}` does not count. Returns the index of the second `}`.
fn closing(b: &[u8], from: usize) -> Option<usize> {
    let mut in_string = false;
    for i in from..b.len() {
        match b[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && i > 0 && b[i - 1] == b'}' => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Contexts {
        let mut c = Contexts::new();
        c.insert(
            "github",
            Value::from(serde_json::json!({"actor": "octocat", "event": {"n": 3}})),
        );
        c
    }

    /// The evaluated template as `Kind:json`, or `error: message @start..end`.
    fn check(template: &str, expected: &str) {
        let got = match Template::parse(template).and_then(|t| t.evaluate(&ctx())) {
            Ok(v) => format!("{}:{}", v.kind(), v.to_json()),
            Err(e) => {
                let span = e
                    .span
                    .map_or(String::new(), |s| format!(" @{}..{}", s.start, s.end));
                format!("error: {}{span}", e.message)
            }
        };
        assert_eq!(got, expected, "template {template:?}");
    }

    #[test]
    fn templates() {
        check("", "String:\"\"");
        check("plain text", "String:\"plain text\"");
        check("${{ github.actor }}", "String:\"octocat\"");
        check("${{ github.event }}", "Object:{\"n\":3}");
        check("${{ github.event.n }}", "Number:3");
        check(" ${{ github.event.n }}", "String:\" 3\"");
        check("Hi ${{ github.actor }}!", "String:\"Hi octocat!\"");
        check("${{ github.event }} ${{ null }}.", "String:\"Object .\"");
        check("${{ '}}' }}", "String:\"}}\"");
        check("${{ 'it''s' }}", "String:\"it's\"");
        check("a ${{ 1 }}${{ 2 }} b", "String:\"a 12 b\"");
        check(
            "${{",
            "error: The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found. @0..3",
        );
        check(
            "x ${{ '}} ",
            "error: The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found. @2..10",
        );
        check("${{ }}", "error: An expression was expected @0..6");
        check("{{ x }}", "String:\"{{ x }}\"");
        check(
            "ab ${{ 1 >> 2 }}",
            "error: Unexpected symbol: '>'. Located at position 4 within expression: 1 >> 2 @10..11",
        );
        check(
            "ab ${{ format('{0') }}",
            "error: The following format string is invalid: {0. Located within expression: format('{0') @7..19",
        );
    }

    #[test]
    fn single_expression_allows_surrounding_blanks() {
        let t = Template::parse("  ${{ github.actor }}\n").expect("valid template");
        assert_eq!(
            t.single_expression().map(Expr::source),
            Some("github.actor")
        );
        assert!(
            Template::parse("a ${{ 1 }}")
                .expect("valid")
                .single_expression()
                .is_none()
        );
        assert!(
            Template::parse("${{ 1 }}${{ 2 }}")
                .expect("valid")
                .single_expression()
                .is_none()
        );
        assert!(
            Template::parse("no expression")
                .expect("valid")
                .is_literal()
        );
    }
}
