//! `${{ }}` templates inside YAML values: splitting a value into text and expressions the way
//! GitHub's reader does, turning `if:` values into the expression GitHub evaluates, and
//! checking an expression against the contexts and functions allowed at its place.

use crate::schema::{FunctionArity, split_context};

/// A part of a template value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// The trimmed expression and the byte range of the whole `${{ ... }}` in the value.
    Expression {
        expression: String,
        range: (usize, usize),
        /// Byte offset of the trimmed expression in the value.
        start: usize,
    },
}

/// Why a template value cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub code: &'static str,
    pub message: String,
    /// Byte range in the value.
    pub range: (usize, usize),
}

/// Splits `value` into text and `${{ }}` expressions. Inside an expression, `}}` within a
/// single-quoted string does not close it (`''` is an escaped quote).
pub fn split_template(value: &str) -> Result<Vec<Segment>, TemplateError> {
    let bytes = value.as_bytes();
    let mut segments: Vec<Segment> = Vec::new();
    let mut i = 0;
    let mut text_start = 0;
    while let Some(rel) = value[i..].find("${{") {
        let open = i + rel;
        let mut j = open + 3;
        let mut in_string = false;
        let mut close = None;
        while j < bytes.len() {
            match bytes[j] {
                b'\'' => in_string = !in_string,
                b'}' if !in_string && j > open + 3 && bytes[j - 1] == b'}' => {
                    close = Some(j);
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let Some(close) = close else {
            return Err(TemplateError {
                code: "expression-syntax",
                message: "the expression is not closed: `${{` has no matching `}}`".to_owned(),
                range: (open, value.len()),
            });
        };
        if open > text_start {
            push_text(&mut segments, &value[text_start..open]);
        }
        let inner = &value[open + 3..close - 1];
        let trimmed = inner.trim();
        let lead = inner.len() - inner.trim_start().len();
        if trimmed.is_empty() {
            return Err(TemplateError {
                code: "expression-syntax",
                message: "an expression was expected between `${{` and `}}`".to_owned(),
                range: (open, close + 1),
            });
        }
        segments.push(Segment::Expression {
            expression: trimmed.to_owned(),
            range: (open, close + 1),
            start: open + 3 + lead,
        });
        i = close + 1;
        text_start = i;
    }
    if text_start < value.len() {
        push_text(&mut segments, &value[text_start..]);
    }
    Ok(segments)
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.push_str(text);
    } else {
        segments.push(Segment::Text(text.to_owned()));
    }
}

/// The value of an expression that is only a string literal (`'{{ literal }}'`), if it is one.
pub fn string_literal_value(expression: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_string = false;
    for (i, c) in expression.char_indices() {
        if c == '\'' {
            in_string = !in_string;
            if in_string && i != 0 {
                out.push(c);
            }
        } else if !in_string {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// What a template value means once split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateValue {
    /// No expression (or only a string-literal expression).
    Literal(String),
    /// One expression, or `format(...)` joining text and expressions.
    Expression(String),
}

/// Joins segments the way GitHub does: one expression stays itself; text and expressions
/// become `format('text {0}', expr)`.
pub fn template_value(segments: &[Segment]) -> TemplateValue {
    match segments {
        [] => TemplateValue::Literal(String::new()),
        [Segment::Text(t)] => TemplateValue::Literal(t.clone()),
        [Segment::Expression { expression, .. }] => match string_literal_value(expression) {
            Some(s) => TemplateValue::Literal(s),
            None => TemplateValue::Expression(expression.clone()),
        },
        _ => {
            let mut format = String::new();
            let mut args = String::new();
            let mut n = 0;
            for segment in segments {
                match segment {
                    Segment::Text(t) => {
                        for c in t.chars() {
                            match c {
                                '\'' => format.push_str("''"),
                                '{' => format.push_str("{{"),
                                '}' => format.push_str("}}"),
                                c => format.push(c),
                            }
                        }
                    }
                    Segment::Expression { expression, .. } => {
                        format.push_str(&format!("{{{n}}}"));
                        n += 1;
                        args.push_str(", ");
                        args.push_str(expression);
                    }
                }
            }
            TemplateValue::Expression(format!("format('{format}'{args})"))
        }
    }
}

/// The expression GitHub evaluates for an `if:` value: `${{ }}` around the whole value
/// removed, text mixed with `${{ }}` turned into `format(...)`, `success() && (...)` added
/// when no status function (`success`, `failure`, `cancelled`, `always`) is called, and
/// `success()` for an empty value.
pub fn normalize_condition(value: &str) -> Result<String, TemplateError> {
    let condition = if value.contains("${{") {
        match template_value(&split_template(value)?) {
            TemplateValue::Literal(s) => s.trim().to_owned(),
            TemplateValue::Expression(e) => e,
        }
    } else {
        value.trim().to_owned()
    };
    Ok(if condition.is_empty() {
        "success()".to_owned()
    } else if calls_status_function(&condition) {
        condition
    } else {
        format!("success() && ({condition})")
    })
}

/// Whether the expression calls `success()`, `failure()`, `cancelled()` or `always()`
/// (case-insensitive), outside string literals and not as a property (`x.success()`).
pub fn calls_status_function(expression: &str) -> bool {
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let mut k = start;
            while k > 0 && chars[k - 1].is_whitespace() {
                k -= 1;
            }
            let after_dot = k > 0 && chars[k - 1] == '.';
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            if is_call
                && !after_dot
                && matches!(
                    word.as_str(),
                    "success" | "failure" | "cancelled" | "always"
                )
            {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

/// Why an expression is rejected at some place, or (a warning) looks wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpressionProblem {
    pub severity: crate::diagnostic::Severity,
    /// `expression-syntax`, `context-not-allowed`, `unknown-context` or `unknown-function`.
    pub code: &'static str,
    pub message: String,
    /// Byte range in the expression, when known.
    pub range: Option<(usize, usize)>,
    pub help: Option<String>,
}

/// Checks that `expression` parses and only uses the named values and functions in `context`
/// (a schema `context` list such as `["github", "hashFiles(1,255)"]`). Returns the problems:
/// at most one error, or warnings (an unknown property of `github`, `runner` or `strategy`).
pub fn check_expression(expression: &str, context: &[String]) -> Vec<ExpressionProblem> {
    let (names, functions) = split_context(context);
    match check_with(expression, &names, &functions) {
        Ok(expr) => unknown_properties(&expr),
        Err(problem) => vec![problem],
    }
}

/// The properties GitHub documents for the contexts whose shape is fixed.
const KNOWN_PROPERTIES: &[(&str, &[&str])] = &[
    (
        "github",
        &[
            "action",
            "action_path",
            "action_ref",
            "action_repository",
            "action_status",
            "actor",
            "actor_id",
            "api_url",
            "base_ref",
            "env",
            "event",
            "event_name",
            "event_path",
            "graphql_url",
            "head_ref",
            "job",
            "job_workflow_sha",
            "path",
            "ref",
            "ref_name",
            "ref_protected",
            "ref_type",
            "repository",
            "repository_id",
            "repository_owner",
            "repository_owner_id",
            "repositoryurl",
            "retention_days",
            "run_id",
            "run_number",
            "run_attempt",
            "secret_source",
            "server_url",
            "sha",
            "token",
            "triggering_actor",
            "workflow",
            "workflow_ref",
            "workflow_sha",
            "workspace",
        ],
    ),
    (
        "runner",
        &[
            "name",
            "os",
            "arch",
            "temp",
            "tool_cache",
            "debug",
            "environment",
        ],
    ),
    (
        "strategy",
        &["fail-fast", "job-index", "job-total", "max-parallel"],
    ),
];

/// Warnings for `github.<name>` (and `runner.`, `strategy.`) with a name GitHub does not have.
fn unknown_properties(expr: &gantry_expr::Expr) -> Vec<ExpressionProblem> {
    use gantry_expr::NodeKind;
    let mut out = Vec::new();
    for node in expr.nodes() {
        let NodeKind::Property { target, name } = &node.kind else {
            continue;
        };
        let NodeKind::NamedValue(context) = &target.kind else {
            continue;
        };
        let Some((context, known)) = KNOWN_PROPERTIES
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(context))
        else {
            continue;
        };
        if known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        let end = node.span.end.min(expr.source().len());
        let start = end.saturating_sub(name.len());
        out.push(ExpressionProblem {
            severity: crate::diagnostic::Severity::Warning,
            code: "unknown-property",
            message: format!("`{context}` has no property `{name}`, so it is always empty"),
            range: Some((start, end)),
            help: Some(
                crate::diagnostic::did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                    format!("the properties of `{context}` are: {}", known.join(", "))
                }),
            ),
        });
    }
    out
}

fn check_with(
    expression: &str,
    names: &[String],
    functions: &[FunctionArity],
) -> Result<gantry_expr::Expr, ExpressionProblem> {
    use gantry_expr::{ErrorKind, FunctionSig, ParseOptions};
    let options = ParseOptions {
        named_values: Some(names.to_vec()),
        functions: functions
            .iter()
            .map(|f| FunctionSig::new(f.name.clone(), f.min_args, f.max_args))
            .collect(),
    };
    let error = match gantry_expr::parse(expression, &options) {
        Ok(expr) => return Ok(expr),
        Err(error) => error,
    };
    let range = error
        .span
        .map(|s| (s.start.min(expression.len()), s.end.min(expression.len())));
    let word = range
        .and_then(|(a, b)| expression.get(a..b))
        .map(|w| w.trim().to_owned())
        .unwrap_or_default();
    let short = error
        .message
        .split(". Located at position")
        .next()
        .unwrap_or(&error.message)
        .to_owned();
    let (code, message, help) = match error.kind {
        ErrorKind::UnrecognizedNamedValue => {
            let name = if word.is_empty() { short.clone() } else { word };
            let known = KNOWN_CONTEXTS.iter().any(|c| c.eq_ignore_ascii_case(&name));
            let available = names.join(", ");
            if known {
                (
                    "context-not-allowed",
                    format!("the context `{name}` is not available"),
                    Some(format!("contexts available here: {available}")),
                )
            } else {
                let mut help =
                    crate::diagnostic::did_you_mean(&name, names.iter().map(String::as_str));
                if help.is_none() {
                    help = Some(format!("contexts available here: {available}"));
                }
                ("unknown-context", format!("unknown context `{name}`"), help)
            }
        }
        ErrorKind::UnrecognizedFunction => {
            let name = if word.is_empty() { short.clone() } else { word };
            let known = KNOWN_FUNCTIONS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&name));
            let available: Vec<&str> = gantry_expr::BUILTIN_FUNCTIONS
                .iter()
                .map(|(n, _, _)| *n)
                .chain(functions.iter().map(|f| f.name.as_str()))
                .collect();
            if known {
                (
                    "context-not-allowed",
                    format!("the function `{name}` is not available"),
                    Some(format!(
                        "functions available here: {}",
                        available.join(", ")
                    )),
                )
            } else {
                let help = crate::diagnostic::did_you_mean(&name, available.iter().copied())
                    .or_else(|| {
                        Some(format!(
                            "functions available here: {}",
                            available.join(", ")
                        ))
                    });
                (
                    "unknown-function",
                    format!("unknown function `{name}`"),
                    help,
                )
            }
        }
        ErrorKind::TooManyParameters | ErrorKind::TooFewParameters => {
            let name = if word.is_empty() { short.clone() } else { word };
            let arity = gantry_expr::BUILTIN_FUNCTIONS
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(&name))
                .map(|&(_, min, max)| (min, max))
                .or_else(|| {
                    functions
                        .iter()
                        .find(|f| f.name.eq_ignore_ascii_case(&name))
                        .map(|f| (f.min_args, f.max_args))
                });
            let takes = match arity {
                Some((0, 0)) => "no arguments".to_owned(),
                Some((min, max)) if min == max => format!("exactly {min} argument(s)"),
                Some((min, usize::MAX)) => format!("at least {min} argument(s)"),
                Some((min, max)) => format!("{min} to {max} arguments"),
                None => "a different number of arguments".to_owned(),
            };
            let too = if error.kind == ErrorKind::TooManyParameters {
                "too many"
            } else {
                "too few"
            };
            let status = ["success", "failure", "cancelled", "always"]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&name));
            let help = (arity == Some((0, 0)) && status).then(|| {
                "status functions take job names only in a job's `if` (`failure('build')`); in a step's `if` they take none".to_owned()
            });
            (
                "expression-syntax",
                format!("{too} arguments to `{name}`, which takes {takes}"),
                help,
            )
        }
        _ => (
            "expression-syntax",
            format!("invalid expression: {short}"),
            Some(syntax_help(&short)),
        ),
    };
    Err(ExpressionProblem {
        severity: crate::diagnostic::Severity::Error,
        code,
        message,
        range,
        help,
    })
}

/// A hint for a syntax error.
fn syntax_help(message: &str) -> String {
    if message.contains("'='") {
        return "compare with `==` or `!=`; there is no assignment in expressions".to_owned();
    }
    if message.contains('"') {
        return "strings in expressions use single quotes: `'text'`".to_owned();
    }
    if message.starts_with("Unexpected end of expression") {
        return "the expression stops too early: an operand or a `)` is missing".to_owned();
    }
    "see the expression syntax at https://docs.github.com/en/actions/reference/workflows-and-actions/expressions".to_owned()
}

/// Every context GitHub has (somewhere).
const KNOWN_CONTEXTS: &[&str] = &[
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs",
];

/// Functions that exist but only at some places.
const KNOWN_FUNCTIONS: &[&str] = &["hashFiles", "success", "failure", "cancelled", "always"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_finds_text_and_expressions() {
        let segments = split_template("echo ${{ matrix.node }} done").expect("valid");
        assert_eq!(
            segments,
            vec![
                Segment::Text("echo ".into()),
                Segment::Expression {
                    expression: "matrix.node".into(),
                    range: (5, 23),
                    start: 9
                },
                Segment::Text(" done".into()),
            ]
        );
    }

    #[test]
    fn closing_braces_inside_strings_do_not_close() {
        let segments = split_template("${{ format('}}', 1) }}").expect("valid");
        assert_eq!(segments.len(), 1);
    }

    #[test]
    fn unclosed_and_empty_expressions_are_errors() {
        assert!(split_template("${{ github.ref").is_err());
        assert_eq!(split_template("a ${{ }}").map_err(|e| e.range), Err((2, 8)));
    }

    #[test]
    fn mixed_text_becomes_format() {
        let v = template_value(&split_template("echo ${{ matrix.node }}").expect("valid"));
        assert_eq!(
            v,
            TemplateValue::Expression("format('echo {0}', matrix.node)".into())
        );
        let v = template_value(&split_template("it's {x} ${{ a }}").expect("valid"));
        assert_eq!(
            v,
            TemplateValue::Expression("format('it''s {{x}} {0}', a)".into())
        );
    }

    #[test]
    fn string_literal_expressions_are_literals() {
        let v = template_value(&split_template("${{ '{{ x }}' }}").expect("valid"));
        assert_eq!(v, TemplateValue::Literal("{{ x }}".into()));
    }

    #[test]
    fn conditions_are_normalized() {
        let check = |v: &str, e: &str| assert_eq!(normalize_condition(v).expect("valid"), e, "{v}");
        check("github.ref == 'a'", "success() && (github.ref == 'a')");
        check("${{ always() }}", "always()");
        check("", "success()");
        check("Success() || Failure()", "Success() || Failure()");
        check("'always()'", "success() && ('always()')");
        check("x.success()", "success() && (x.success())");
        check(
            "${{ github.ref }} == 'x'",
            "success() && (format('{0} == ''x''', github.ref))",
        );
    }
}
