//! GitHub's loose comparisons: `==`, `<`, `>` with JavaScript-like coercions, strings
//! compared ignoring case, arrays and objects compared by identity.

use std::cmp::Ordering;

use crate::evaluator::Operand;
use crate::value::Kind;

/// Two operands after GitHub's coercion to a common kind.
enum Coerced<'x> {
    Null,
    Bool(bool, bool),
    Num(f64, f64),
    Str(&'x str, &'x str),
    /// Arrays or objects: whether they are the same one.
    Identity(bool),
    Mismatch,
}

fn coerce<'x>(l: &'x Operand<'_>, r: &'x Operand<'_>) -> Coerced<'x> {
    let (lk, rk) = (l.kind(), r.kind());
    if lk == rk {
        return match (l, r) {
            (Operand::Null, Operand::Null) => Coerced::Null,
            (Operand::Bool(a), Operand::Bool(b)) => Coerced::Bool(*a, *b),
            (Operand::Number(a), Operand::Number(b)) => Coerced::Num(*a, *b),
            (Operand::Str(a), Operand::Str(b)) => Coerced::Str(a, b),
            _ => Coerced::Identity(l.is_same(r)),
        };
    }
    match (lk, rk) {
        (Kind::Number, Kind::String) => Coerced::Num(l.to_number(), r.to_number()),
        (Kind::String, Kind::Number) => Coerced::Num(l.to_number(), r.to_number()),
        (Kind::Null | Kind::Boolean, _) => number_vs(l.to_number(), r, rk),
        (_, Kind::Null | Kind::Boolean) => match number_vs(r.to_number(), l, lk) {
            Coerced::Num(a, b) => Coerced::Num(b, a),
            other => other,
        },
        _ => Coerced::Mismatch,
    }
}

/// A number (from null or a boolean) against `other`.
fn number_vs<'x>(n: f64, other: &Operand<'_>, kind: Kind) -> Coerced<'x> {
    match kind {
        Kind::Null | Kind::Boolean | Kind::Number | Kind::String => {
            Coerced::Num(n, other.to_number())
        }
        Kind::Array | Kind::Object => Coerced::Mismatch,
    }
}

/// Upper-cases like GitHub (JavaScript `toUpperCase`, but the dotless `ı` is kept).
pub(crate) fn upper_special(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == 'ı' {
            out.push(c);
        } else {
            out.extend(c.to_uppercase());
        }
    }
    out
}

/// Orders strings ignoring case, by UTF-16 code units as JavaScript does.
fn compare_strings(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let a = a.bytes().map(|c| c.to_ascii_uppercase());
        let b = b.bytes().map(|c| c.to_ascii_uppercase());
        return a.cmp(b);
    }
    let (a, b) = (upper_special(a), upper_special(b));
    a.encode_utf16().cmp(b.encode_utf16())
}

fn strings_equal(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    upper_special(a) == upper_special(b)
}

/// `l == r`
pub(crate) fn equals(l: &Operand<'_>, r: &Operand<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Null => true,
        Coerced::Bool(a, b) => a == b,
        Coerced::Num(a, b) => a == b,
        Coerced::Str(a, b) => strings_equal(a, b),
        Coerced::Identity(same) => same,
        Coerced::Mismatch => false,
    }
}

/// `l > r`
pub(crate) fn greater_than(l: &Operand<'_>, r: &Operand<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Bool(a, b) => a && !b,
        Coerced::Num(a, b) => a > b,
        Coerced::Str(a, b) => compare_strings(a, b) == Ordering::Greater,
        Coerced::Null | Coerced::Identity(_) | Coerced::Mismatch => false,
    }
}

/// `l < r`
pub(crate) fn less_than(l: &Operand<'_>, r: &Operand<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Bool(a, b) => !a && b,
        Coerced::Num(a, b) => a < b,
        Coerced::Str(a, b) => compare_strings(a, b) == Ordering::Less,
        Coerced::Null | Coerced::Identity(_) | Coerced::Mismatch => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Contexts, Value, eval_str};

    /// Evaluates `src` and shows the result as `Kind json`.
    fn check(src: &str, expected: &str) {
        let mut ctx = Contexts::new();
        ctx.insert(
            "obj",
            Value::from(serde_json::json!({"a": [1, 2], "s": "abc", "n": null})),
        );
        let got = match eval_str(src, &ctx) {
            Ok(v) => format!("{} {}", v.kind(), v.to_json()),
            Err(e) => format!("error: {}", e.message),
        };
        assert_eq!(got, expected, "{src}");
    }

    #[test]
    fn loose_equality() {
        check("1 == '1'", "Boolean true");
        check("'abc' == 'ABC'", "Boolean true");
        check("null == 0", "Boolean true");
        check("null == ''", "Boolean true");
        check("null == false", "Boolean true");
        check("true == 1", "Boolean true");
        check("true == '1'", "Boolean true");
        check("'' == 0", "Boolean true");
        check("' 1 ' == 1", "Boolean true");
        check("'0x10' == 16", "Boolean true");
        check("NaN == NaN", "Boolean false");
        check("'abc' == NaN", "Boolean false");
        check("obj.a == obj.a", "Boolean true");
        check("obj.a == fromJSON('[1,2]')", "Boolean false");
        check("obj.a == 'Array'", "Boolean false");
        check("obj.missing == obj.n", "Boolean true");
        check("obj.missing != obj.other", "Boolean false");
        check("-0 == 0", "Boolean true");
        check("'ı' == 'I'", "Boolean false");
        check("'ß' == 'SS'", "Boolean true");
    }

    #[test]
    fn ordering() {
        check("'a' < 'B'", "Boolean true");
        check("'B' < 'a'", "Boolean false");
        check("'10' > 9", "Boolean true");
        check("'abc' > 1", "Boolean false");
        check("'abc' < 1", "Boolean false");
        check("true > false", "Boolean true");
        check("null < 1", "Boolean true");
        check("null >= null", "Boolean true");
        check("obj.a > 0", "Boolean false");
        check("Infinity > 1e308", "Boolean true");
        check("1 <= NaN", "Boolean false");
    }

    #[test]
    fn truthiness_and_logic() {
        check("!''", "Boolean true");
        check("!'0'", "Boolean false");
        check("!0", "Boolean true");
        check("!-0", "Boolean true");
        check("!NaN", "Boolean true");
        check("!obj.a", "Boolean false");
        check("!fromJSON('{}')", "Boolean false");
        check("0 || '' || null", "Null null");
        check("'a' && 0", "Number 0");
        check("obj.s || 'x'", "String \"abc\"");
        check("obj.a && obj.a", "Array [1,2]");
    }

    #[test]
    fn indexing() {
        check("obj.a[1.9]", "Number 2");
        check("obj.a['1']", "Number 2");
        check("obj.a[true]", "Number 2");
        check("obj.a[-1]", "Null null");
        check("obj.A[0]", "Number 1");
        check("obj['S']", "String \"abc\"");
        check("obj.s[0]", "Null null");
        check("obj.*", "Array [[1,2],\"abc\",null]");
        check("obj.*[0]", "Array [1]");
        check("obj.a.*", "Array [1,2]");
        check("obj.s.*", "Array []");
        check(
            "fromJSON('[{\"a\":1},{\"a\":2},{\"b\":3}]').*.a",
            "Array [1,2]",
        );
        check("fromJSON('[[1,2],[3]]').*[1]", "Array [2]");
    }

    #[test]
    fn string_coercion_in_functions() {
        check(
            "format('{0} {1} {2} {3}', null, true, 1.50, obj.a)",
            "String \" true 1.5 Array\"",
        );
        check("format('{{{0}}}', 'x')", "String \"{x}\"");
        check("format('{0:x}', 'y')", "String \"y\"");
        check("join(obj.a, '-')", "String \"1-2\"");
        check("join(obj.a)", "String \"1,2\"");
        check("join('abc', '-')", "String \"abc\"");
        check("join(obj, '-')", "String \"\"");
        check("contains(obj.a, '2')", "Boolean true");
        check("contains('ABC', 'b')", "Boolean true");
        check("contains(obj.a, obj.a)", "Boolean false");
        check("startsWith('Hello', 'HE')", "Boolean true");
        check("endsWith(123, 23)", "Boolean true");
        check("startsWith(obj.a, '')", "Boolean false");
        check("toJSON(obj.s)", "String \"\\\"abc\\\"\"");
        check("toJSON(fromJSON('[]'))", "String \"[]\"");
        check("case(false, 1, obj.s == 'ABC', 2, 3)", "Number 2");
        check(
            "case(1, 2, 3)",
            "error: case predicate must evaluate to a boolean value. Located within expression: case(1, 2, 3)",
        );
        check(
            "fromJSON(' ')",
            "error: empty input. Located within expression: fromJSON(' ')",
        );
    }
}
