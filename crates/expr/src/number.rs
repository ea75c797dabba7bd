//! Number ↔ string conversions as GitHub's evaluator performs them (JavaScript rules).

/// JavaScript's `Number.prototype.toString()` (radix 10): shortest round-trip digits,
/// plain notation for 1e-7 <= |x| < 1e21, otherwise `1.5e+21` / `1e-7`.
pub(crate) fn to_js_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("`{:e}` output always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = i32::try_from(digits.len()).expect("a double has at most 17 significant digits");
    let n = exp + 1;
    let mut out = String::with_capacity(32);
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// JavaScript's `x.toFixed(15)` (exact decimal value, ties away from zero).
fn to_fixed_15(x: f64) -> String {
    if !x.is_finite() || x.abs() >= 1e21 {
        return to_js_string(x);
    }
    let neg = x < 0.0;
    let a = x.abs();
    // A tie at the 16th decimal needs the exact expansion to end there with a 5, i.e.
    // `a * 2^16` is an odd integer (multiplying by a power of two is exact here).
    let scaled = a * 65536.0;
    let mut s = if scaled.fract() == 0.0 && scaled % 2.0 == 1.0 {
        let mut t = format!("{a:.16}");
        t.pop(); // the trailing '5'
        round_up_last_digit(&mut t);
        t
    } else {
        format!("{a:.15}")
    };
    if neg {
        s.insert(0, '-');
    }
    s
}

fn round_up_last_digit(s: &mut String) {
    let mut bytes = std::mem::take(s).into_bytes();
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        match bytes[i] {
            b'.' => continue,
            b'9' => bytes[i] = b'0',
            d => {
                bytes[i] = d + 1;
                break;
            }
        }
    }
    *s = String::from_utf8(bytes).expect("only ASCII digits were changed");
}

/// The string a number becomes in templates and string functions: the official
/// evaluator rounds to 15 decimals, then prints like JavaScript (`0.1`, `1e+21`, `1.23e-7`).
pub(crate) fn coerce_to_string(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let fixed = to_fixed_15(x);
    to_js_string(parse_js_number(&fixed))
}

/// White space as JavaScript's `String.prototype.trim` and `Number()` see it.
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// JavaScript's `String.prototype.trim`.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// JavaScript's `Number(string)`: trims white space; `''` → 0; `0x`/`0o`/`0b` integers;
/// optional sign, decimal digits, fraction, exponent, or `Infinity`; anything else NaN.
pub(crate) fn parse_js_number(s: &str) -> f64 {
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    let b = t.as_bytes();
    if b.len() > 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return parse_radix(&t[2..], radix);
        }
    }
    let (sign, body) = match b[0] {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if body == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(body.as_bytes()) {
        return f64::NAN;
    }
    // The syntax is checked above; Rust's parser rounds correctly and overflows to ∞.
    body.parse::<f64>().map_or(f64::NAN, |v| sign * v)
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut exact: u128 = 0;
    let mut overflow = false;
    let mut approx = 0.0_f64;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return f64::NAN;
        };
        approx = approx * f64::from(radix) + f64::from(d);
        if !overflow {
            match exact
                .checked_mul(u128::from(radix))
                .and_then(|v| v.checked_add(u128::from(d)))
            {
                Some(v) => exact = v,
                None => overflow = true,
            }
        }
    }
    if overflow {
        approx
    } else {
        #[allow(clippy::cast_precision_loss)]
        let v = exact as f64;
        v
    }
}

/// `digits [. digits] [e [+-] digits]` or `. digits [...]` (at least one mantissa digit).
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_str(x: f64, expected: &str) {
        assert_eq!(coerce_to_string(x), expected, "coerce_to_string({x:?})");
    }

    fn check_js(x: f64, expected: &str) {
        assert_eq!(to_js_string(x), expected, "to_js_string({x:?})");
    }

    fn check_num(s: &str, expected: f64) {
        let got = parse_js_number(s);
        if expected.is_nan() {
            assert!(got.is_nan(), "parse_js_number({s:?}) = {got}, expected NaN");
        } else {
            assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "parse_js_number({s:?}) = {got}"
            );
        }
    }

    #[test]
    fn javascript_number_to_string() {
        check_js(1.0, "1");
        check_js(-1.5, "-1.5");
        check_js(1e21, "1e+21");
        check_js(1e20, "100000000000000000000");
        check_js(1.23e-7, "1.23e-7");
        check_js(0.000001, "0.000001");
        check_js(123456789012345680000.0, "123456789012345680000");
        check_js(f64::NAN, "NaN");
        check_js(f64::NEG_INFINITY, "-Infinity");
        check_js(-0.0, "0");
        check_js(5e-324, "5e-324");
        check_js(1.7976931348623157e308, "1.7976931348623157e+308");
    }

    #[test]
    fn coerced_numbers_round_to_15_decimals() {
        check_str(0.1 + 0.2, "0.3");
        check_str(1.0000000000000002, "1");
        check_str(2.71, "2.71");
        check_str(1e-16, "0");
        check_str(-1e-16, "0");
        check_str(1.23e-7, "1.23e-7");
        check_str(1e21, "1e+21");
        check_str(12345678901234567890.0, "12345678901234567000");
        check_str(1.0 / 65536.0, "0.000015258789063");
        check_str(-1.0 / 65536.0, "-0.000015258789063");
        check_str(f64::INFINITY, "Infinity");
        check_str(f64::NAN, "NaN");
    }

    #[test]
    fn javascript_string_to_number() {
        check_num("", 0.0);
        check_num("  \n", 0.0);
        check_num(" 12 ", 12.0);
        check_num("0x1F", 31.0);
        check_num("0X1f", 31.0);
        check_num("0b101", 5.0);
        check_num("0o17", 15.0);
        check_num("-0x1", f64::NAN);
        check_num("0x", f64::NAN);
        check_num("1.", 1.0);
        check_num(".5", 0.5);
        check_num(".", f64::NAN);
        check_num("1e3", 1000.0);
        check_num("1e", f64::NAN);
        check_num("+1.5E-1", 0.15);
        check_num("-0", -0.0);
        check_num("Infinity", f64::INFINITY);
        check_num("-Infinity", f64::NEG_INFINITY);
        check_num("infinity", f64::NAN);
        check_num("inf", f64::NAN);
        check_num("NaN", f64::NAN);
        check_num("1_000", f64::NAN);
        check_num("1e400", f64::INFINITY);
        check_num("abc", f64::NAN);
        check_num("\u{feff}7", 7.0);
    }
}
