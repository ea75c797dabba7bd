//! Evaluating job-level fields (`if:`, `strategy`, `runs-on`, `name`, `with:`...) with the
//! contexts GitHub's schema allows at each place, and the job-level status functions.
//!
//! GitHub's job-level `success()` and `failure()` look at the whole needs graph above a job
//! (and take job names as arguments), which the expression engine's single job status cannot
//! express; they are supplied as functions ([`Contexts::define_function`]) computed from the
//! ancestors' results.

use gantry_expr::{Contexts, Expr, FunctionSig, NodeKind, ParseOptions, Template, Value};
use gantry_protocol::Conclusion;
use serde_json::Value as Json;

use crate::yaml::Node;

/// Contexts of a job-level `if:`.
pub(crate) const JOB_IF: &[&str] = &["github", "inputs", "vars", "needs"];
/// Contexts of `strategy` (matrix, fail-fast, max-parallel).
pub(crate) const STRATEGY: &[&str] = &["github", "inputs", "vars", "needs"];
/// Contexts of fields evaluated per leg: `runs-on`, `name`, `timeout-minutes`,
/// `continue-on-error`, `container`, `services`, `environment`, a call's `with:`.
pub(crate) const LEG: &[&str] = &["github", "inputs", "vars", "needs", "strategy", "matrix"];
/// Contexts of `run-name` and of `workflow_call` input defaults.
pub(crate) const WORKFLOW: &[&str] = &["github", "inputs", "vars"];
/// Contexts of `on.workflow_call.outputs.*.value`.
pub(crate) const CALL_OUTPUT: &[&str] = &["github", "inputs", "vars", "jobs"];

/// Parse options allowing `names` and the built-in functions.
pub(crate) fn options(names: &[&str]) -> ParseOptions {
    ParseOptions::new().with_named_values(names.iter().copied())
}

/// Parse options of a job-level `if:` (with the job status functions).
pub(crate) fn job_if_options() -> ParseOptions {
    let mut opts = options(JOB_IF);
    for sig in FunctionSig::job_status_functions() {
        opts = opts.with_function(sig);
    }
    opts
}

/// What the status functions of one job see.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatusView {
    /// The run was cancelled.
    pub cancelled: bool,
    /// Results of every job above this one in the needs graph (direct needs included).
    pub ancestors: Vec<Conclusion>,
    /// The direct needs by job id (for `success('a')`, `failure('a')`).
    pub needs: Vec<(String, Conclusion)>,
}

impl StatusView {
    /// `success()` with no arguments.
    pub fn success(&self) -> bool {
        !self.cancelled && self.ancestors.iter().all(|c| *c == Conclusion::Success)
    }

    /// `failure()` with no arguments.
    pub fn failure(&self) -> bool {
        self.ancestors.contains(&Conclusion::Failure)
    }

    fn named(&self, args: &[Value]) -> Result<Vec<Conclusion>, String> {
        args.iter()
            .map(|arg| {
                let name = arg.to_coerced_string();
                self.needs
                    .iter()
                    .find(|(id, _)| id.eq_ignore_ascii_case(&name))
                    .map(|(_, c)| *c)
                    .ok_or_else(|| format!("`{name}` is not a job this job needs"))
            })
            .collect()
    }

    /// Installs `success`, `failure`, `cancelled` and `always` into `ctx`.
    pub fn install(&self, ctx: &mut Contexts) {
        let view = self.clone();
        ctx.define_function("success", move |args| {
            if args.is_empty() {
                return Ok(Value::Bool(view.success()));
            }
            let named = view.named(args)?;
            Ok(Value::Bool(
                !view.cancelled && named.iter().all(|c| *c == Conclusion::Success),
            ))
        });
        let view = self.clone();
        ctx.define_function("failure", move |args| {
            if args.is_empty() {
                return Ok(Value::Bool(view.failure()));
            }
            let named = view.named(args)?;
            Ok(Value::Bool(named.contains(&Conclusion::Failure)))
        });
        let cancelled = self.cancelled;
        ctx.define_function("cancelled", move |_| Ok(Value::Bool(cancelled)));
        ctx.define_function("always", |_| Ok(Value::Bool(true)));
    }
}

/// Evaluates a normalized job `if:` expression (no `${{ }}`).
pub(crate) fn evaluate_condition(expression: &str, ctx: &Contexts) -> Result<bool, String> {
    let expr = gantry_expr::parse(expression, &job_if_options()).map_err(|e| e.message)?;
    gantry_expr::evaluate(&expr, ctx)
        .map(|v| v.is_truthy())
        .map_err(|e| e.message)
}

/// Evaluates a template to a value (a lone `${{ }}` keeps its type).
pub(crate) fn evaluate_template(
    text: &str,
    names: &[&str],
    ctx: &Contexts,
) -> Result<Json, String> {
    if !text.contains("${{") {
        return Ok(Json::String(text.to_owned()));
    }
    let template = Template::parse_with(text, &options(names)).map_err(|e| e.message)?;
    template
        .evaluate(ctx)
        .map(|v| v.to_json())
        .map_err(|e| e.message)
}

/// Evaluates a template to a string.
pub(crate) fn evaluate_string(
    text: &str,
    names: &[&str],
    ctx: &Contexts,
) -> Result<String, String> {
    if !text.contains("${{") {
        return Ok(text.to_owned());
    }
    let template = Template::parse_with(text, &options(names)).map_err(|e| e.message)?;
    template.evaluate_to_string(ctx).map_err(|e| e.message)
}

/// Evaluates every string holding `${{ }}` in a YAML value, with GitHub's template rules:
///
/// - a string that is one expression becomes that expression's value (so
///   `${{ fromJSON(x) }}` can produce a list or mapping); other strings stay strings;
/// - a sequence item that is one expression evaluating to a sequence is spliced into the
///   enclosing sequence (`[a, ${{ fromJSON('["b", "c"]') }}]` is `[a, b, c]`);
/// - a mapping key holding `${{ }}` is evaluated to a string (a list or mapping is an error);
/// - a mapping key that is exactly the `${{ insert }}` directive merges the mapping it maps to
///   (written out, or an expression evaluating to a mapping) into the enclosing mapping.
///
/// A key produced by an expression or an `insert` that is already in the mapping (compared
/// case-insensitively) is an error, as in GitHub.
pub(crate) fn evaluate_node(node: &Node, names: &[&str], ctx: &Contexts) -> Result<Json, String> {
    match node {
        Node::String(s) => evaluate_template(s, names, ctx),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let value = evaluate_node(&item.value, names, ctx)?;
                match (&item.value, value) {
                    // Only a lone expression can produce a list from a string.
                    (Node::String(_), Json::Array(inner)) => out.extend(inner),
                    (_, value) => out.push(value),
                }
            }
            Ok(Json::Array(out))
        }
        Node::Map(entries) => {
            let mut mapping = EvaluatedMapping::default();
            for (key, value) in entries {
                if is_insert_directive(&key.value) {
                    let inserted = match &value.value {
                        Node::Map(_) => evaluate_node(&value.value, names, ctx)?,
                        Node::String(s) if s.contains("${{") => evaluate_template(s, names, ctx)
                            .map_err(|e| format!("`{}`: {e}", key.value))?,
                        other => {
                            return Err(format!(
                                "`{}` must map to a mapping, got a {}",
                                key.value,
                                other.kind()
                            ));
                        }
                    };
                    let Json::Object(inserted) = inserted else {
                        return Err(format!(
                            "`{}` must map to a mapping, got {}",
                            key.value,
                            json_kind(&inserted)
                        ));
                    };
                    for (k, v) in inserted {
                        mapping.insert(k, v, true)?;
                    }
                    continue;
                }
                let value = evaluate_node(&value.value, names, ctx)?;
                if key.value.contains("${{") {
                    let name = evaluate_key(&key.value, names, ctx)?;
                    mapping.insert(name, value, true)?;
                } else {
                    mapping.insert(key.value.clone(), value, false)?;
                }
            }
            Ok(Json::Object(mapping.entries))
        }
        other => Ok(other.to_json()),
    }
}

/// Whether a mapping key is the `${{ insert }}` directive: one expression, `insert` alone
/// (any spacing inside the braces).
pub(crate) fn is_insert_directive(key: &str) -> bool {
    key.strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .is_some_and(|inner| !inner.contains("}}") && inner.trim() == "insert")
}

/// Evaluates a mapping key holding `${{ }}` to its string.
fn evaluate_key(key: &str, names: &[&str], ctx: &Contexts) -> Result<String, String> {
    let template = Template::parse_with(key, &options(names))
        .map_err(|e| format!("key `{key}`: {}", e.message))?;
    let value = template
        .evaluate(ctx)
        .map_err(|e| format!("key `{key}`: {}", e.message))?;
    if !value.is_primitive() {
        return Err(format!(
            "key `{key}`: a mapping key must be a string, got {}",
            json_kind(&value.to_json())
        ));
    }
    Ok(value.to_coerced_string())
}

/// `a list`, `a mapping`, `a string`... for messages.
fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// A mapping being evaluated: its entries, and which keys came from an expression or an
/// `insert` (those may not repeat a key).
#[derive(Default)]
struct EvaluatedMapping {
    entries: serde_json::Map<String, Json>,
    dynamic: Vec<String>,
}

impl EvaluatedMapping {
    fn insert(&mut self, key: String, value: Json, dynamic: bool) -> Result<(), String> {
        let existing = self
            .entries
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .cloned();
        if let Some(existing) = existing {
            let existing_dynamic = self.dynamic.contains(&existing);
            if dynamic || existing_dynamic {
                return Err(format!("`{key}` is already defined"));
            }
        }
        if dynamic {
            self.dynamic.push(key.clone());
        }
        self.entries.insert(key, value);
        Ok(())
    }
}

/// The contexts (named values) a YAML value's expressions use, lower-cased, in order of first
/// use. Unparsable expressions are ignored (evaluation reports them).
pub(crate) fn node_contexts(node: &Node) -> Vec<String> {
    let mut found = Vec::new();
    collect_node(node, &mut found);
    found
}

fn collect_node(node: &Node, found: &mut Vec<String>) {
    match node {
        Node::String(s) => collect_template(s, found),
        Node::Seq(items) => items.iter().for_each(|i| collect_node(&i.value, found)),
        Node::Map(entries) => {
            for (key, value) in entries {
                if !is_insert_directive(&key.value) {
                    collect_template(&key.value, found);
                }
                collect_node(&value.value, found);
            }
        }
        _ => {}
    }
}

/// The contexts a template uses.
pub(crate) fn template_contexts(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    collect_template(text, &mut found);
    found
}

/// The contexts and functions an expression (no `${{ }}`) uses.
pub(crate) fn expression_uses(expression: &str) -> (Vec<String>, Vec<String>) {
    let mut contexts = Vec::new();
    let mut functions = Vec::new();
    if let Ok(expr) = gantry_expr::parse(expression, &job_if_options()) {
        collect_expr(&expr, &mut contexts, &mut functions);
    }
    (contexts, functions)
}

fn collect_template(text: &str, found: &mut Vec<String>) {
    if !text.contains("${{") {
        return;
    }
    let Ok(template) = Template::parse_with(text, &ParseOptions::runtime()) else {
        return;
    };
    let mut functions = Vec::new();
    for (expr, _) in template.expressions() {
        collect_expr(expr, found, &mut functions);
    }
}

fn collect_expr(expr: &Expr, contexts: &mut Vec<String>, functions: &mut Vec<String>) {
    let mut stack = vec![expr.root()];
    while let Some(node) = stack.pop() {
        match &node.kind {
            NodeKind::NamedValue(name) => push_unique(contexts, name),
            NodeKind::Property { target, .. } | NodeKind::Star { target } => stack.push(target),
            NodeKind::Index { target, index } => {
                stack.push(target);
                stack.push(index);
            }
            NodeKind::Not(operand) => stack.push(operand),
            NodeKind::Compare { first, rest } => {
                stack.push(first);
                stack.extend(rest.iter().map(|(_, n)| n));
            }
            NodeKind::Logical { operands, .. } => stack.extend(operands.iter()),
            NodeKind::Call { name, args, .. } => {
                push_unique(functions, name);
                stack.extend(args.iter());
            }
            _ => {}
        }
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    let name = name.to_ascii_lowercase();
    if !list.contains(&name) {
        list.push(name);
    }
}

/// A JSON value as GitHub shows it in a job name: strings as they are, other scalars in their
/// text form, lists and mappings as compact JSON.
pub(crate) fn display_value(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `name (v1, v2)`: a job or call leg named after its matrix values, as GitHub shows legs.
pub(crate) fn leg_display_name(base: &str, matrix: &serde_json::Map<String, Json>) -> String {
    if matrix.is_empty() {
        return base.to_owned();
    }
    let values: Vec<String> = matrix.values().map(display_value).collect();
    format!("{base} ({})", values.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::yaml::{YamlLimits, parse_yaml};

    /// Evaluates `yaml` with `needs.prepare.outputs` = `{helix: steady, list: ["a","b"]}`.
    fn evaluate(yaml: &str) -> Result<Json, String> {
        let node = parse_yaml(yaml, &YamlLimits::default()).expect("valid YAML");
        let mut ctx = Contexts::new();
        ctx.insert(
            "needs",
            Value::from(
                json!({"prepare": {"outputs": {"helix": "steady", "list": "[\"a\", \"b\"]"}}}),
            ),
        );
        evaluate_node(&node.value, STRATEGY, &ctx)
    }

    fn check(yaml: &str, expected: Json) {
        assert_eq!(evaluate(yaml), Ok(expected), "{yaml}");
    }

    fn check_error(yaml: &str, expected: &str) {
        assert_eq!(evaluate(yaml), Err(expected.to_owned()), "{yaml}");
    }

    #[test]
    fn mapping_keys_holding_expressions_are_evaluated() {
        check(
            "${{ needs.prepare.outputs.helix }}: ${{ fromJSON(needs.prepare.outputs.list) }}",
            json!({"steady": ["a", "b"]}),
        );
        check(
            "os-${{ needs.prepare.outputs.helix }}: [1]\nplain: [2]",
            json!({"os-steady": [1], "plain": [2]}),
        );
        // Scalars become their text, as in a template.
        check(
            "${{ 1.50 }}: x\n${{ true }}: y\n${{ null }}x: z",
            json!({"1.5": "x", "true": "y", "x": "z"}),
        );
        check_error(
            "${{ fromJSON('[1]') }}: x",
            "key `${{ fromJSON('[1]') }}`: a mapping key must be a string, got a list",
        );
        check_error("a: 1\n${{ 'A' }}: 2", "`A` is already defined");
    }

    #[test]
    fn insert_merges_a_mapping_into_the_enclosing_one() {
        check(
            "key1: val1\n${{insert}}:\n  key2: val2\n${{ insert }}: ${{ fromJSON('{\"key3\":\"val3\"}') }}",
            json!({"key1": "val1", "key2": "val2", "key3": "val3"}),
        );
        // Any spacing inside the braces; the written mapping is evaluated too, nested inserts
        // included; an empty mapping inserts nothing.
        check(
            "${{   insert}}:\n  a: ${{ needs.prepare.outputs.helix }}\n  ${{ insert }}: {b: 1}\n${{insert }}: {}",
            json!({"a": "steady", "b": 1}),
        );
        check_error(
            "${{ insert }}: [1]",
            "`${{ insert }}` must map to a mapping, got a sequence",
        );
        check_error(
            "${{ insert }}: ${{ fromJSON('[1]') }}",
            "`${{ insert }}` must map to a mapping, got a list",
        );
        check_error("a: 1\n${{ insert }}: {a: 2}", "`a` is already defined");
        // Only the whole key is the directive.
        assert!(!is_insert_directive("x ${{ insert }}"));
        assert!(!is_insert_directive("${{ insert }} ${{ insert }}"));
        assert!(!is_insert_directive("${{ inserts }}"));
    }

    #[test]
    fn a_sequence_item_evaluating_to_a_sequence_is_spliced() {
        check(
            "- env: {key1: \"${{ 'val' }}1\"}\n- ${{ fromJSON('[{\"env\":{\"key2\":\"val2\"}},{\"env\":{\"key3\":\"val3\"}}]') }}",
            json!([
                {"env": {"key1": "val1"}},
                {"env": {"key2": "val2"}},
                {"env": {"key3": "val3"}}
            ]),
        );
        check(
            "[a, '${{ fromJSON(needs.prepare.outputs.list) }}', '${{ fromJSON(''[]'') }}', z]",
            json!(["a", "a", "b", "z"]),
        );
        // A written nested sequence stays nested; a mapping result stays one item.
        check("[[1, 2], 3]", json!([[1, 2], 3]));
        check("['${{ fromJSON(''{}'') }}']", json!([{}]));
    }

    #[test]
    fn the_contexts_of_keys_are_seen_and_insert_is_not_a_context() {
        let node = parse_yaml(
            "${{ needs.a.outputs.k }}: [1]\nx:\n  - ${{ insert }}: ${{ vars.v }}",
            &YamlLimits::default(),
        )
        .expect("valid YAML");
        assert_eq!(node_contexts(&node.value), ["needs", "vars"]);
    }
}
