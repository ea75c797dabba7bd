//! The functions: built-ins (`contains`, `startsWith`, `endsWith`, `format`, `join`,
//! `toJSON`, `fromJSON`, `case`) and the runtime ones (`success`, `failure`,
//! `cancelled`, `always`, `hashFiles`).

use std::borrow::Cow;

use crate::compare::{equals, upper_special};
use crate::evaluator::{Contexts, JobStatus, Operand};
use crate::value::Kind;
use crate::{hash_files, json, number};

/// Calls the function `name` (case-insensitive) with evaluated arguments. The parser
/// has already checked the name and the number of arguments; `Err` is the message.
pub(crate) fn call<'a>(
    name: &str,
    args: Vec<Operand<'a>>,
    ctx: &Contexts,
) -> Result<Operand<'a>, String> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "contains" => Ok(Operand::Bool(contains(arg(&args, 0), arg(&args, 1)))),
        "startswith" => Ok(Operand::Bool(affix(&args, |s, p| s.starts_with(p)))),
        "endswith" => Ok(Operand::Bool(affix(&args, |s, p| s.ends_with(p)))),
        "format" => format(&args).map(|s| Operand::Str(Cow::Owned(s))),
        "join" => Ok(Operand::Str(Cow::Owned(join(&args)))),
        "tojson" => Ok(Operand::Str(Cow::Owned(json::write_pretty(arg(&args, 0))))),
        "fromjson" => from_json(arg(&args, 0)),
        "case" => case(args),
        "success" => Ok(Operand::Bool(ctx.status == JobStatus::Success)),
        "failure" => Ok(Operand::Bool(ctx.status == JobStatus::Failure)),
        "cancelled" => Ok(Operand::Bool(ctx.status == JobStatus::Cancelled)),
        "always" => Ok(Operand::Bool(true)),
        "hashfiles" => {
            let Some(workspace) = &ctx.workspace else {
                return Err("hashFiles() needs a workspace, and none was given".to_owned());
            };
            let patterns: Vec<String> = args
                .iter()
                .map(|a| a.to_coerced_string().into_owned())
                .collect();
            hash_files::hash_files(workspace, &patterns)
                .map(|h| Operand::Str(Cow::Owned(h)))
                .map_err(|e| e.message)
        }
        _ => Err(format!("Unrecognized function: '{name}'")),
    }
}

const NULL: Operand<'static> = Operand::Null;

fn arg<'x, 'a>(args: &'x [Operand<'a>], i: usize) -> &'x Operand<'a> {
    args.get(i).unwrap_or(&NULL)
}

/// `contains(search, item)`: substring (ignoring case) for primitives, element
/// equality for arrays.
fn contains(search: &Operand<'_>, item: &Operand<'_>) -> bool {
    if search.is_primitive() {
        if !item.is_primitive() {
            return false;
        }
        let s = search.to_coerced_string();
        let i = item.to_coerced_string();
        if s.is_ascii() && i.is_ascii() {
            return s.to_ascii_lowercase().contains(&i.to_ascii_lowercase());
        }
        return s.to_lowercase().contains(&i.to_lowercase());
    }
    if search.kind() == Kind::Array {
        return search
            .elements()
            .unwrap_or_default()
            .iter()
            .any(|v| equals(item, v));
    }
    false
}

/// `startsWith` / `endsWith`: both primitive, compared upper-cased.
fn affix(args: &[Operand<'_>], test: impl Fn(&str, &str) -> bool) -> bool {
    let (s, p) = (arg(args, 0), arg(args, 1));
    if !s.is_primitive() || !p.is_primitive() {
        return false;
    }
    test(
        &upper_special(&s.to_coerced_string()),
        &upper_special(&p.to_coerced_string()),
    )
}

/// `format(fmt, args...)`: `{N}` is argument N, `{{`/`}}` are braces; anything else
/// with a brace is an invalid format string.
fn format(args: &[Operand<'_>]) -> Result<String, String> {
    let fs = arg(args, 0).to_coerced_string();
    let b = fs.as_bytes();
    let invalid = || format!("The following format string is invalid: {fs}");
    let mut out = String::with_capacity(fs.len());
    let mut index = 0;
    while index < b.len() {
        let lbrace = find(b, b'{', index);
        let rbrace = find(b, b'}', index);
        match (lbrace, rbrace) {
            (Some(l), r) if r.is_none_or(|r| r > l) => {
                if b.get(l + 1) == Some(&b'{') {
                    out.push_str(&fs[index..=l]);
                    index = l + 2;
                    continue;
                }
                if let Some(r) = r
                    && r > l + 1
                {
                    let digits = b[l + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits > 0 {
                        let n: usize = fs[l + 1..l + 1 + digits].parse().unwrap_or(usize::MAX);
                        let Some(value) = n.checked_add(1).and_then(|i| args.get(i)) else {
                            return Err(format!(
                                "The following format string references more arguments than were supplied: {fs}"
                            ));
                        };
                        out.push_str(&fs[index..l]);
                        out.push_str(&value.to_coerced_string());
                        index = r + 1;
                        continue;
                    }
                }
                return Err(invalid());
            }
            (_, Some(r)) => {
                if b.get(r + 1) == Some(&b'}') {
                    out.push_str(&fs[index..=r]);
                    index = r + 2;
                } else {
                    return Err(invalid());
                }
            }
            (_, None) => {
                out.push_str(&fs[index..]);
                break;
            }
        }
    }
    Ok(out)
}

fn find(b: &[u8], c: u8, from: usize) -> Option<usize> {
    b[from..].iter().position(|&x| x == c).map(|p| p + from)
}

/// `join(array, separator = ',')`; a primitive is returned as its string.
fn join(args: &[Operand<'_>]) -> String {
    let first = arg(args, 0);
    if first.is_primitive() {
        return first.to_coerced_string().into_owned();
    }
    let Some(items) = first.elements() else {
        return String::new();
    };
    let sep = match args.get(1) {
        Some(s) if s.is_primitive() => s.to_coerced_string(),
        _ => Cow::Borrowed(","),
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        out.push_str(&item.to_coerced_string());
    }
    out
}

fn from_json<'a>(input: &Operand<'_>) -> Result<Operand<'a>, String> {
    let text = input.to_coerced_string();
    if number::js_trim(&text).is_empty() {
        return Err("empty input".to_owned());
    }
    json::parse(&text)
        .map(Operand::from_owned)
        .map_err(|_| "Error parsing JSON when evaluating fromJson".to_owned())
}

/// `case(pred1, v1, pred2, v2, ..., default)`: the value after the first `true`
/// predicate; predicates must be booleans.
fn case(args: Vec<Operand<'_>>) -> Result<Operand<'_>, String> {
    let n = args.len();
    let mut i = 0;
    while i + 1 < n {
        match &args[i] {
            Operand::Bool(true) => return Ok(take(args, i + 1)),
            Operand::Bool(false) => {}
            _ => return Err("case predicate must evaluate to a boolean value".to_owned()),
        }
        i += 2;
    }
    Ok(take(args, n.saturating_sub(1)))
}

fn take(mut args: Vec<Operand<'_>>, i: usize) -> Operand<'_> {
    if i < args.len() {
        args.swap_remove(i)
    } else {
        Operand::Null
    }
}
