//! Checks a YAML tree against GitHub's workflow schema: unknown keys, values of the wrong
//! type, missing required keys, keys of two different forms mixed (a step with `run` and
//! `uses`), `${{ }}` where no expression is allowed, and expressions that do not parse or use
//! a context or function not available at their place.
//!
//! The walk follows the rules of GitHub's template reader: a `one-of` definition is narrowed
//! key by key to the alternatives that know the key; the contexts allowed in expressions are
//! those of the definition and of every enclosing one.

use std::collections::HashSet;
use std::rc::Rc;

use crate::diagnostic::{Diagnostic, Severity, did_you_mean, suggest};
use crate::schema::{Definition, DefinitionKind, MappingRules, Schema, WORKFLOW_ROOT};
use crate::span::{Pos, Span, Spanned};
use crate::validate::expression::{
    ExpressionProblem, Segment, TemplateError, TemplateValue, check_expression,
    normalize_condition, split_template, string_literal_value, template_value,
};
use crate::yaml::{Node, value_text_offset};

/// Step forms Gantry does not run (GitHub's experimental background steps).
const UNSUPPORTED_DEFINITIONS: &[&str] =
    &["wait-step", "wait-all-step", "cancel-step", "parallel-step"];
const UNSUPPORTED_PROPERTIES: &[&str] = &["background"];

/// Checks `root` (a whole workflow file) and returns the problems found.
pub fn check_structure(root: &Spanned<Node>, source: &str, schema: &Schema) -> Vec<Diagnostic> {
    let mut checker = Checker {
        schema,
        source,
        lines: crate::yaml::LineIndex::new(source),
        diagnostics: Vec::new(),
        path: Vec::new(),
    };
    let info = DefInfo::root(schema, WORKFLOW_ROOT);
    checker.read_value(root, &info);
    checker.diagnostics
}

/// A definition being applied and the expression contexts allowed there.
#[derive(Clone)]
struct DefInfo<'s> {
    name: &'s str,
    allowed: Rc<Vec<String>>,
}

impl<'s> DefInfo<'s> {
    fn root(schema: &'s Schema, name: &'s str) -> Self {
        DefInfo {
            name,
            allowed: Rc::new(schema.get(name).context.clone()),
        }
    }

    fn child(&self, schema: &'s Schema, name: &'s str) -> Self {
        let own = &schema.get(name).context;
        if own.is_empty() {
            return DefInfo {
                name,
                allowed: Rc::clone(&self.allowed),
            };
        }
        let mut allowed: Vec<String> = self.allowed.as_ref().clone();
        let mut seen: HashSet<String> = allowed.iter().map(|c| c.to_uppercase()).collect();
        for c in own {
            if seen.insert(c.to_uppercase()) {
                allowed.push(c.clone());
            }
        }
        DefInfo {
            name,
            allowed: Rc::new(allowed),
        }
    }

    fn allows_expressions(&self) -> bool {
        !self.allowed.is_empty()
    }
}

#[derive(Clone, Debug)]
enum PathSegment {
    Key(String),
    Index(usize),
}

struct Checker<'s, 'a> {
    schema: &'s Schema,
    source: &'a str,
    lines: crate::yaml::LineIndex<'a>,
    diagnostics: Vec<Diagnostic>,
    path: Vec<PathSegment>,
}

/// A scalar after `${{ }}` detection.
enum Scalar {
    Literal(Node),
    Expression,
    /// The template could not be read (already reported); treated as its literal text.
    Broken,
}

impl<'s> Checker<'s, '_> {
    fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                PathSegment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// "in jobs.build.steps[0]" or "at the top level".
    fn where_text(&self) -> String {
        if self.path.is_empty() {
            "at the top level of the workflow".to_owned()
        } else {
            format!("in `{}`", self.path_text())
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn read_value(&mut self, node: &Spanned<Node>, info: &DefInfo<'s>) {
        match &node.value {
            Node::Seq(items) => self.read_sequence(node, items, info),
            Node::Map(entries) => self.read_mapping(node, entries, info),
            _ => {
                let scalar = self.parse_scalar(node, info);
                self.validate_scalar(node, scalar, info);
                self.check_condition(node, info);
            }
        }
    }

    fn read_sequence(&mut self, node: &Spanned<Node>, items: &[Spanned<Node>], info: &DefInfo<'s>) {
        let sequence_def = self
            .schema
            .expand(info.name)
            .into_iter()
            .find_map(|(_, d)| match &d.kind {
                DefinitionKind::Sequence { item_type } => Some(item_type.as_str()),
                _ => None,
            });
        match sequence_def {
            Some(item_type) => {
                let item_info = info.child(self.schema, item_type);
                for (i, item) in items.iter().enumerate() {
                    self.path.push(PathSegment::Index(i));
                    self.read_value(item, &item_info);
                    self.path.pop();
                }
            }
            None => {
                let d = self.wrong_type(node, info);
                self.push(d);
            }
        }
    }

    /// Describes what `info` accepts: "a string or a mapping".
    fn expected_kinds(&self, info: &DefInfo<'s>) -> String {
        let mut kinds: Vec<&str> = Vec::new();
        for (_, def) in self.schema.expand(info.name) {
            let k = match &def.kind {
                DefinitionKind::Null => "nothing (null)",
                DefinitionKind::Boolean => "a boolean",
                DefinitionKind::Number => "a number",
                DefinitionKind::String(_) => "a string",
                DefinitionKind::Sequence { .. } => "a sequence",
                DefinitionKind::Mapping(_) => "a mapping",
                DefinitionKind::OneOf(_) => continue,
            };
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        match kinds.len() {
            0 => "something else".to_owned(),
            1 => kinds[0].to_owned(),
            n => format!("{} or {}", kinds[..n - 1].join(", "), kinds[n - 1]),
        }
    }

    fn wrong_type(&self, node: &Spanned<Node>, info: &DefInfo<'s>) -> Diagnostic {
        let found = match &node.value {
            Node::Seq(_) => "a sequence".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
            Node::Null => "nothing (null)".to_owned(),
            Node::Bool(b) => format!("the boolean `{b}`"),
            Node::Number(_) => format!(
                "the number `{}`",
                node.value.scalar_to_string().unwrap_or_default()
            ),
            Node::String(s) => format!("the string \"{s}\""),
        };
        let subject = if self.path.is_empty() {
            "the workflow".to_owned()
        } else {
            format!("`{}`", self.path_text())
        };
        let expected = self.expected_kinds(info);
        let d = Diagnostic::error(
            "wrong-type",
            format!("{subject} must be {expected}, found {found}"),
            head_span(node),
        )
        .with_label(head_span(node), format!("expected {expected}"));
        let help = type_help(info.name).map(str::to_owned).unwrap_or_else(|| {
            let expression = if info.allows_expressions() {
                ", or an expression `${{ ... }}`"
            } else {
                ""
            };
            match expected.as_str() {
                "a boolean" => format!(
                    "write `true` or `false`{expression} (`yes`, `no`, `on` and `off` are strings in GitHub's YAML)"
                ),
                "a number" => format!("write a number such as `30`{expression}"),
                other => format!("write {other} here{expression}"),
            }
        });
        d.with_help(help)
    }

    fn read_mapping(
        &mut self,
        node: &Spanned<Node>,
        entries: &[(Spanned<String>, Spanned<Node>)],
        info: &DefInfo<'s>,
    ) {
        let mut mapping_defs: Vec<(&'s str, &'s MappingRules)> = self
            .schema
            .expand(info.name)
            .into_iter()
            .filter(|(name, _)| !UNSUPPORTED_DEFINITIONS.contains(name))
            .filter_map(|(name, d)| match &d.kind {
                DefinitionKind::Mapping(rules) => Some((name, rules)),
                _ => None,
            })
            .collect();
        if mapping_defs.is_empty() {
            let d = self.wrong_type(node, info);
            self.push(d);
            return;
        }
        let all_loose = mapping_defs.len() == 1
            && mapping_defs[0].1.properties.is_empty()
            && mapping_defs[0].1.loose_key_type.is_some();
        let original: Vec<(&'s str, &'s MappingRules)> = mapping_defs.clone();
        let mut seen_upper: HashSet<String> = HashSet::new();
        let mut first_keys: Vec<&Spanned<String>> = Vec::new();
        let mut has_expression_key = false;
        // The first key that narrowed the alternatives, to explain conflicts.
        let mut narrowed_by: Option<&Spanned<String>> = None;
        // Keys suggested for unknown keys: a typo (`runn`) explains a missing key (`run`),
        // which is then not reported a second time.
        let mut suggestions: Vec<String> = Vec::new();

        for (key, value) in entries {
            // Expression keys.
            if key.value.contains("${{") {
                has_expression_key = true;
                let key_node = Spanned::new(Node::String(key.value.clone()), key.span);
                match self.parse_scalar(&key_node, info) {
                    Scalar::Expression => {
                        if info.allows_expressions() {
                            let any = info.child(self.schema, "any");
                            self.path.push(PathSegment::Key(key.value.clone()));
                            self.read_value(value, &any);
                            self.path.pop();
                        } else {
                            let d = self.expression_not_allowed(key.span);
                            self.push(d);
                        }
                        continue;
                    }
                    Scalar::Broken => continue,
                    Scalar::Literal(_) => {}
                }
            }

            // Keys differing only in case are duplicates.
            if !key.value.is_empty() && !seen_upper.insert(key.value.to_uppercase()) {
                let upper = key.value.to_uppercase();
                let first = first_keys.iter().find(|k| k.value.to_uppercase() == upper);
                let message = match first {
                    Some(f) if f.value != key.value => format!(
                        "`{}` is defined twice {} (as `{}` and `{}`: keys are case-insensitive)",
                        key.value,
                        self.where_text(),
                        f.value,
                        key.value
                    ),
                    _ => format!("`{}` is defined twice {}", key.value, self.where_text()),
                };
                let mut d = Diagnostic::error("duplicate-key", message, key.span)
                    .with_label(key.span, "defined again here")
                    .with_help("remove or rename one of them");
                if let Some(f) = first {
                    d = d.with_label(f.span, "first defined here");
                }
                self.push(d);
                continue;
            }
            first_keys.push(key);

            if all_loose {
                let (_, rules) = mapping_defs[0];
                let key_type = rules.loose_key_type.as_deref().unwrap_or("string");
                let value_type = rules.loose_value_type.as_deref().unwrap_or("any");
                self.path.push(PathSegment::Key(key.value.clone()));
                self.validate_key(key, &info.child(self.schema, key_type));
                self.read_value(value, &info.child(self.schema, value_type));
                self.path.pop();
                continue;
            }

            // Well-known property of some remaining alternative.
            let found = mapping_defs
                .iter()
                .find_map(|(_, rules)| rules.property(&key.value))
                .filter(|_| !UNSUPPORTED_PROPERTIES.contains(&key.value.as_str()));
            if let Some(property) = found {
                let before = mapping_defs.len();
                mapping_defs.retain(|(_, rules)| rules.property(&key.value).is_some());
                if mapping_defs.len() < before && narrowed_by.is_none() {
                    narrowed_by = Some(key);
                }
                self.path.push(PathSegment::Key(key.value.clone()));
                self.read_value(value, &info.child(self.schema, &property.type_name));
                self.path.pop();
                continue;
            }

            // Loose keys (matrix dimensions, event names...).
            if let Some(key_type) = mapping_defs[0].1.loose_key_type.as_deref() {
                let value_type = mapping_defs[0]
                    .1
                    .loose_value_type
                    .as_deref()
                    .unwrap_or("any");
                self.path.push(PathSegment::Key(key.value.clone()));
                self.validate_key(key, &info.child(self.schema, key_type));
                self.read_value(value, &info.child(self.schema, value_type));
                self.path.pop();
                continue;
            }

            let (d, suggestion) = self.unknown_key(key, &mapping_defs, &original, narrowed_by);
            self.push(d);
            suggestions.extend(suggestion);
        }

        let explained = |name: &str| suggestions.iter().any(|s| s == name);
        if mapping_defs.len() > 1 {
            let typo_of_a_distinguishing_key = mapping_defs
                .iter()
                .flat_map(|(_, rules)| rules.properties.iter())
                .any(|(name, _)| explained(name));
            if !typo_of_a_distinguishing_key {
                let d = self.ambiguous_mapping(node, info, &mapping_defs);
                self.push(d);
            }
        } else if mapping_defs.len() == 1 && !has_expression_key {
            let (def_name, rules) = mapping_defs[0];
            for (name, property) in &rules.properties {
                if property.required
                    && !seen_upper.contains(&name.to_uppercase())
                    && !explained(name)
                {
                    let d = self.missing_key(node, def_name, name, info);
                    self.push(d);
                }
            }
        }
    }

    fn validate_key(&mut self, key: &Spanned<String>, info: &DefInfo<'s>) {
        let node = Spanned::new(Node::String(key.value.clone()), key.span);
        // Keys are never expressions here (handled by the caller).
        self.validate_scalar(&node, Scalar::Literal(node.value.clone()), info);
    }

    fn unknown_key(
        &self,
        key: &Spanned<String>,
        remaining: &[(&'s str, &'s MappingRules)],
        original: &[(&'s str, &'s MappingRules)],
        narrowed_by: Option<&Spanned<String>>,
    ) -> (Diagnostic, Option<String>) {
        let where_ = self.where_text();
        // A key of another form of the same thing: a step with both `run` and `uses`...
        let in_other_form = original
            .iter()
            .find(|(_, rules)| rules.property(&key.value).is_some())
            .filter(|_| !UNSUPPORTED_PROPERTIES.contains(&key.value.as_str()));
        if let (Some((other, _)), Some(by)) = (in_other_form, narrowed_by) {
            let form = remaining.first().map_or("", |(n, _)| *n);
            let (code, message, help) = conflict_text(&key.value, &by.value, form, other, &where_);
            let d = Diagnostic::error(code, message, key.span)
                .with_label(key.span, format!("`{}` here", key.value))
                .with_label(by.span, format!("`{}` here", by.value))
                .with_help(help);
            return (d, None);
        }
        let mut known: Vec<&str> = Vec::new();
        for (_, rules) in remaining {
            for (name, _) in &rules.properties {
                if !known.contains(&name.as_str())
                    && !UNSUPPORTED_PROPERTIES.contains(&name.as_str())
                {
                    known.push(name);
                }
            }
        }
        let suggestion = suggest(&key.value, known.iter().copied()).map(str::to_owned);
        let help = did_you_mean(&key.value, known.iter().copied()).unwrap_or_else(|| {
            if known.is_empty() {
                "remove this key".to_owned()
            } else {
                format!("the keys allowed here are: {}", known.join(", "))
            }
        });
        let message = if key.value.is_empty() {
            format!("empty key {where_}")
        } else {
            format!("unknown key `{}` {where_}", key.value)
        };
        // GitHub ignores unknown keys under `on.workflow_dispatch`; they are still likely typos.
        let ignored_by_github = matches!(
            self.path.as_slice(),
            [PathSegment::Key(on), PathSegment::Key(event)] if on == "on" && event == "workflow_dispatch"
        );
        let d = if ignored_by_github {
            Diagnostic::warning(
                "unknown-key",
                format!("{message} (GitHub ignores it)"),
                key.span,
            )
        } else {
            Diagnostic::error("unknown-key", message, key.span)
        };
        (
            d.with_label(key.span, "unknown key").with_help(help),
            suggestion,
        )
    }

    fn ambiguous_mapping(
        &self,
        node: &Spanned<Node>,
        info: &DefInfo<'s>,
        remaining: &[(&'s str, &'s MappingRules)],
    ) -> Diagnostic {
        let span = head_span(node);
        let names: Vec<&str> = remaining.iter().map(|(n, _)| *n).collect();
        if names.contains(&"run-step") || info.name == "steps-item" {
            return Diagnostic::error(
                "step-missing-run-or-uses",
                format!("the step `{}` has neither `run` nor `uses`", self.path_text()),
                span,
            )
            .with_label(span, "this step does nothing")
            .with_help("add `run:` with a command, or `uses:` with an action such as `actions/checkout@v4`");
        }
        if names.contains(&"job-factory") {
            return Diagnostic::error(
                "missing-key",
                format!("the job `{}` has no `runs-on`", self.path_text()),
                span,
            )
            .with_label(span, "job without `runs-on`")
            .with_help("add `runs-on:` (for example `runs-on: ubuntu-latest`), or `uses:` to call a reusable workflow");
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for (_, rules) in remaining {
            for (name, _) in &rules.properties {
                match counts.iter_mut().find(|(n, _)| n == name) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((name, 1)),
                }
            }
        }
        let mut unique: Vec<&str> = counts
            .into_iter()
            .filter(|(n, c)| *c == 1 && !UNSUPPORTED_PROPERTIES.contains(n))
            .map(|(n, _)| n)
            .collect();
        unique.sort_unstable();
        Diagnostic::error(
            "missing-key",
            format!("not enough keys {} to tell what it is", self.where_text()),
            span,
        )
        .with_help(format!("add one of these keys: {}", unique.join(", ")))
    }

    fn missing_key(
        &self,
        node: &Spanned<Node>,
        def_name: &str,
        key: &str,
        info: &DefInfo<'s>,
    ) -> Diagnostic {
        let _ = info;
        let span = head_span(node);
        let owner = if self.path.is_empty() {
            "the workflow".to_owned()
        } else {
            format!("`{}`", self.path_text())
        };
        let help = match (def_name, key) {
            (_, "on") => "add `on:` with the events that start the workflow, for example `on: push`".to_owned(),
            (_, "jobs") => "add `jobs:` with at least one job".to_owned(),
            ("job-factory", "runs-on") => {
                "add `runs-on:` (for example `runs-on: ubuntu-latest`), or `uses:` to call a reusable workflow"
                    .to_owned()
            }
            ("run-step", "run") => "add `run:` with the command to run".to_owned(),
            ("regular-step", "uses") => "add `uses:` with the action to run".to_owned(),
            ("workflow-call-input-definition", "type") => {
                "add `type:` with one of: string, boolean, number".to_owned()
            }
            _ => format!("add `{key}:`"),
        };
        Diagnostic::error(
            "missing-key",
            format!("{owner} is missing the required key `{key}`"),
            span,
        )
        .with_label(
            span,
            format!("this {} has no `{key}`", thing_name(def_name)),
        )
        .with_help(help)
    }

    fn expression_not_allowed(&self, span: Span) -> Diagnostic {
        Diagnostic::error(
            "expression-not-allowed",
            format!("`${{{{ }}}}` expressions are not allowed {}", self.where_text()),
            span,
        )
        .with_label(span, "not evaluated here")
        .with_help("write a literal value here; GitHub reads this value before any expression is evaluated")
    }

    /// Detects `${{ }}` in a string and checks each expression. Errors are reported here.
    fn parse_scalar(&mut self, node: &Spanned<Node>, info: &DefInfo<'s>) -> Scalar {
        let Node::String(value) = &node.value else {
            return Scalar::Literal(node.value.clone());
        };
        if !value.contains("${{") {
            return Scalar::Literal(node.value.clone());
        }
        let segments = match split_template(value) {
            Ok(s) => s,
            Err(e) => {
                let d = self.template_error(node, value, &e);
                self.push(d);
                return Scalar::Broken;
            }
        };
        if !info.allows_expressions() {
            // Reported by the caller (as a key or as a value).
            return Scalar::Expression;
        }
        let mut broken = false;
        for segment in &segments {
            let Segment::Expression {
                expression,
                range,
                start,
            } = segment
            else {
                continue;
            };
            if let Some(problem) = directive_problem(expression, segments.len()) {
                let e = TemplateError {
                    code: "expression-syntax",
                    message: problem,
                    range: *range,
                };
                let d = self.template_error(node, value, &e);
                self.push(d);
                broken = true;
                continue;
            }
            if is_insert_directive(expression) {
                continue;
            }
            for problem in check_expression(expression, &info.allowed) {
                let (from, to) = match problem.range {
                    Some((a, b)) => (start + a, start + b.max(a + 1)),
                    None => *range,
                };
                let span = self.inner_span(node, value, (from, to));
                broken |= problem.severity == Severity::Error;
                let d = self.expression_diagnostic(problem, span);
                self.push(d);
            }
        }
        if !broken
            && let TemplateValue::Expression(joined) = template_value(&segments)
            && joined.chars().count() > gantry_expr::MAX_LENGTH
        {
            let span = head_span(node);
            self.push(
                Diagnostic::error(
                    "expression-too-long",
                    format!(
                        "the value {} is an expression of {} characters, more than the limit of {}",
                        self.where_text(),
                        joined.chars().count(),
                        gantry_expr::MAX_LENGTH
                    ),
                    span,
                )
                .with_label(span, "too long")
                .with_help("move the text into a script file, or pass the values through `env:`"),
            );
            broken = true;
        }
        if broken {
            return Scalar::Broken;
        }
        if let [Segment::Expression { expression, .. }] = segments.as_slice()
            && let Some(literal) = string_literal_value(expression)
        {
            return Scalar::Literal(Node::String(literal));
        }
        Scalar::Expression
    }

    fn template_error(&self, node: &Spanned<Node>, value: &str, e: &TemplateError) -> Diagnostic {
        let span = self.inner_span(node, value, e.range);
        let (label, help) = if e.message.contains("not closed") {
            (
                "`}}` missing",
                "close the expression with `}}`; to write `${{` literally, use `${{ '${{' }}`",
            )
        } else if e.message.contains("was expected") {
            (
                "empty expression",
                "write an expression between `${{` and `}}`, or remove them",
            )
        } else {
            (label_for(e.code), EXPRESSION_HELP)
        };
        Diagnostic::error(e.code, format!("{} {}", e.message, self.where_text()), span)
            .with_label(span, label)
            .with_help(help)
    }

    /// The span of bytes `range` of string `value` held by `node`, when the value is written
    /// on one line as is; otherwise the span of the value's start.
    fn inner_span(&self, node: &Spanned<Node>, value: &str, range: (usize, usize)) -> Span {
        match value_text_offset(self.source, node.span, value) {
            Some(base) => {
                let start = base + range.0.min(value.len());
                let end = base + range.1.min(value.len());
                Span::new(self.lines.pos(start), self.lines.pos(end))
            }
            None => head_span(node),
        }
    }

    fn validate_scalar(&mut self, node: &Spanned<Node>, scalar: Scalar, info: &DefInfo<'s>) {
        let literal = match scalar {
            Scalar::Expression => {
                if !info.allows_expressions() {
                    let d = self.expression_not_allowed(node.span);
                    self.push(d);
                }
                return;
            }
            Scalar::Broken => return,
            Scalar::Literal(n) => n,
        };
        let defs = self.schema.expand(info.name);
        if defs.iter().any(|(_, d)| scalar_matches(d, &literal)) {
            return;
        }
        if !matches!(literal, Node::String(_)) {
            let as_string = Node::String(literal.scalar_to_string().unwrap_or_default());
            if defs.iter().any(|(_, d)| scalar_matches(d, &as_string)) {
                return;
            }
        }
        // An empty value where a mapping without required keys is expected (`inputs:` with
        // nothing under it) reads as an empty mapping, as GitHub reads it.
        if literal == Node::Null {
            let mappings: Vec<&MappingRules> = defs
                .iter()
                .filter_map(|(_, d)| match &d.kind {
                    DefinitionKind::Mapping(rules) => Some(rules),
                    _ => None,
                })
                .collect();
            if let [rules] = mappings.as_slice()
                && rules.properties.iter().all(|(_, p)| !p.required)
            {
                return;
            }
        }
        let d = self.invalid_scalar(node, &literal, info, &defs);
        self.push(d);
    }

    fn invalid_scalar(
        &self,
        node: &Spanned<Node>,
        literal: &Node,
        info: &DefInfo<'s>,
        defs: &[(&'s str, &'s Definition)],
    ) -> Diagnostic {
        let text = literal.scalar_to_string().unwrap_or_default();
        let constants: Vec<&str> = defs
            .iter()
            .filter_map(|(_, d)| match &d.kind {
                DefinitionKind::String(rules) => rules.constant.as_deref(),
                _ => None,
            })
            .collect();
        let subject = if self.path.is_empty() {
            "the workflow".to_owned()
        } else {
            format!("`{}`", self.path_text())
        };
        let span = node.span;
        if !constants.is_empty() && defs.iter().all(|(_, d)| !is_free_string(d)) {
            let help = did_you_mean(&text, constants.iter().copied())
                .map(|h| format!("{h} (allowed values: {})", constants.join(", ")))
                .unwrap_or_else(|| format!("allowed values: {}", constants.join(", ")));
            let message = if text.is_empty() {
                format!("{subject} has no value")
            } else {
                format!("invalid value \"{text}\" for {subject}")
            };
            return Diagnostic::error("invalid-value", message, span)
                .with_label(span, "not an allowed value")
                .with_help(help);
        }
        let non_empty_only = defs.iter().any(|(_, d)| {
            matches!(&d.kind, DefinitionKind::String(r) if r.require_non_empty && r.constant.is_none())
        });
        if non_empty_only && text.is_empty() && !matches!(literal, Node::Bool(_) | Node::Number(_))
        {
            return Diagnostic::error(
                "empty-value",
                format!("{subject} must not be empty"),
                head_span(node),
            )
            .with_label(head_span(node), "empty")
            .with_help("give a value, or remove the key");
        }
        self.wrong_type(node, info)
    }

    /// `if:` values: the condition GitHub evaluates must parse with the allowed contexts.
    fn check_condition(&mut self, node: &Spanned<Node>, info: &DefInfo<'s>) {
        if !matches!(info.name, "job-if" | "step-if" | "snapshot-if") {
            return;
        }
        let Some(value) = node.value.scalar_to_string() else {
            return;
        };
        if value.contains("${{") && split_template(&value).is_err() {
            return; // already reported
        }
        let Ok(condition) = normalize_condition(&value) else {
            return;
        };
        // Expressions inside `${{ }}` were checked by parse_scalar; check the whole condition
        // only when the value is a bare expression, so nothing is reported twice.
        if value.contains("${{") {
            return;
        }
        for problem in check_expression(&condition, &info.allowed) {
            // Map the position back into the value when the condition was wrapped.
            let trimmed_start = value.len() - value.trim_start().len();
            let wrapped = condition.starts_with("success() && (")
                && !value.trim().starts_with("success() && (");
            let shift = if wrapped { "success() && (".len() } else { 0 };
            let range = problem.range.and_then(|(a, b)| {
                let a = a.checked_sub(shift)? + trimmed_start;
                let b = b.saturating_sub(shift) + trimmed_start;
                (a <= value.len()).then_some((a, b.min(value.len()).max(a + 1).min(value.len())))
            });
            let span = match range {
                Some(r) => self.inner_span(node, &value, r),
                None => head_span(node),
            };
            let d = self.expression_diagnostic(problem, span);
            self.push(d);
        }
    }

    fn expression_diagnostic(&self, problem: ExpressionProblem, span: Span) -> Diagnostic {
        let message = format!("{} {}", problem.message, self.where_text());
        let d = match problem.severity {
            Severity::Error => Diagnostic::error(problem.code, message, span),
            Severity::Warning => Diagnostic::warning(problem.code, message, span),
        };
        let d = d.with_label(span, label_for(problem.code));
        match problem.help {
            Some(help) => d.with_help(help),
            None => d,
        }
    }
}

/// Where the expression language is described.
const EXPRESSION_HELP: &str = "see the expression syntax at https://docs.github.com/en/actions/reference/workflows-and-actions/expressions";

fn label_for(code: &str) -> &'static str {
    match code {
        "context-not-allowed" => "not available here",
        "unknown-context" => "unknown context",
        "unknown-function" => "unknown function",
        "unknown-property" => "unknown property",
        _ => "invalid expression",
    }
}

fn is_insert_directive(expression: &str) -> bool {
    expression == "insert"
        || (expression.starts_with("insert") && expression[6..].starts_with(char::is_whitespace))
}

/// `insert` is only allowed as the whole value, without parameters.
fn directive_problem(expression: &str, segments: usize) -> Option<String> {
    if !is_insert_directive(expression) {
        return None;
    }
    if expression != "insert" {
        return Some("the directive `insert` takes no parameters".to_owned());
    }
    if segments > 1 {
        return Some(
            "the directive `insert` is only allowed when the whole value is `${{ insert }}`"
                .to_owned(),
        );
    }
    None
}

fn is_free_string(def: &Definition) -> bool {
    matches!(&def.kind, DefinitionKind::String(r) if r.constant.is_none())
}

fn scalar_matches(def: &Definition, value: &Node) -> bool {
    match (&def.kind, value) {
        (DefinitionKind::Null, Node::Null) => true,
        (DefinitionKind::Boolean, Node::Bool(_)) => true,
        (DefinitionKind::Number, Node::Number(_)) => true,
        (DefinitionKind::String(rules), Node::String(s)) => match &rules.constant {
            Some(c) if rules.ignore_case => c.eq_ignore_ascii_case(s),
            Some(c) => c == s,
            None => !rules.require_non_empty || !s.is_empty(),
        },
        _ => false,
    }
}

/// A short span for a value: a scalar's own span, or the first line of a collection.
pub(crate) fn head_span(node: &Spanned<Node>) -> Span {
    let s = node.span;
    if node.value.is_scalar() && s.start.line == s.end.line {
        return s;
    }
    // A block mapping starts at its first key: underline that key.
    if let Node::Map(entries) = &node.value
        && let Some((key, _)) = entries.first()
        && key.span.start == s.start
    {
        return key.span;
    }
    let end = if s.end.line == s.start.line && s.end.offset > s.start.offset {
        s.end
    } else {
        Pos {
            line: s.start.line,
            column: s.start.column + 1,
            offset: s.start.offset + 1,
        }
    };
    Span::new(s.start, end)
}

/// What a mapping definition describes, for labels.
fn thing_name(def_name: &str) -> &'static str {
    match def_name {
        "workflow-root-strict" | "workflow-root" => "workflow",
        "job-factory" | "workflow-job" => "job",
        "run-step" | "regular-step" => "step",
        "workflow-call-input-definition" | "workflow-dispatch-input" => "input",
        "workflow-call-output-definition" => "output",
        "container-mapping" | "service-container-mapping" => "container",
        "concurrency-mapping" => "concurrency setting",
        "job-environment-mapping" => "environment",
        "cron-mapping" => "schedule",
        _ => "mapping",
    }
}

/// Friendlier help for common places.
fn type_help(def_name: &str) -> Option<&'static str> {
    Some(match def_name {
        "steps" => "`steps` is a list: start each step with `- `",
        "jobs" => {
            "`jobs` maps job ids to jobs, for example `jobs:\\n  build:\\n    runs-on: ubuntu-latest`"
        }
        "needs" => "`needs` is a job id or a list of job ids",
        "runs-on" => "`runs-on` is a runner label, a list of labels, or `{group, labels}`",
        "step-env" | "job-env" | "workflow-env" => "`env` maps variable names to values",
        "on" | "on-strict" => {
            "`on` is an event name, a list of events, or a mapping of events to their filters"
        }
        "workflow-root-strict" | "workflow-root" => {
            "a workflow file is a mapping with at least `on:` and `jobs:`"
        }
        _ => return None,
    })
}

/// What to say about a key that belongs to another form of the same thing.
fn conflict_text(
    key: &str,
    by: &str,
    form: &str,
    other_form: &str,
    where_: &str,
) -> (&'static str, String, String) {
    let step_forms = ["run-step", "regular-step"];
    if step_forms.contains(&form) && step_forms.contains(&other_form) {
        return (
            "step-run-and-uses",
            format!("a step has both `run` and `uses` ({where_})"),
            "a step either runs a command (`run`) or an action (`uses`); split it into two steps"
                .to_owned(),
        );
    }
    let job_forms = ["job-factory", "workflow-job"];
    if job_forms.contains(&form) && job_forms.contains(&other_form) {
        return (
            "job-steps-and-uses",
            format!("a job has both `{by}` and `{key}` ({where_})"),
            "a job either runs on a runner (`runs-on`, `steps`, `container`...) or calls a reusable workflow (`uses`, `with`, `secrets`); remove one of them, or split the job in two".to_owned(),
        );
    }
    (
        "conflicting-keys",
        format!("`{key}` cannot be used together with `{by}` {where_}"),
        format!("remove `{key}` or `{by}`"),
    )
}
