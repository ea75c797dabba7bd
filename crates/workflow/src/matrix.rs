//! `strategy.matrix` expansion, as GitHub does it: the cross product of the matrix vectors
//! (first key varies slowest), minus the legs an `exclude` entry matches, each remaining leg
//! extended by every `include` entry that matches it, then one new leg per `include` entry
//! that matched no leg.
//!
//! Rules (GitHub's documentation and its workflow parser):
//! - An `exclude` entry removes every leg whose values match all of the entry's keys (a partial
//!   match on fewer keys than the matrix has is enough). Its keys must be matrix vectors.
//! - An `include` entry's keys that are matrix vectors are its *filter*; its other keys are
//!   *added values*. The entry extends every leg its filter matches (so it never overwrites an
//!   original matrix value); added values of later entries overwrite those of earlier ones. An
//!   entry that extends no leg becomes a leg of its own (filter keys first, then added values).
//!   `include` is applied after `exclude`, so it can add back an excluded combination.
//! - Matching compares like the expression `==` GitHub generates for each leaf of the entry's
//!   value: strings case-insensitively, numbers/booleans/null with numeric coercion
//!   (`'12'` matches `12`), object and array values leaf by leaf (the entry's value may
//!   name fewer keys than the leg's). Matrix keys are case-insensitive.
//! - A matrix needs at least one vector or one `include` entry; a vector needs at least one
//!   value; `include`/`exclude` entries must not be empty.
//! - At most `max_legs` legs (GitHub: 256, [`DEFAULT_MAX_LEGS`]). The number of legs is
//!   computed without building them, so a 10^9-leg matrix fails at once.
//! - A matrix whose every leg is excluded (and that has no `include`) expands to no legs:
//!   `expand` returns an empty list and the planner decides what that means for the job.
//!
//! Pure: values are already evaluated (`fromJSON(...)` results, literals from the YAML).

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// GitHub's limit on the number of jobs one matrix may produce.
pub const DEFAULT_MAX_LEGS: usize = 256;

/// One leg of an expanded matrix: the `matrix` context of one job.
pub type Leg = Map<String, Value>;

/// An evaluated `strategy.matrix`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixInput {
    /// The vectors, in the order written (the first varies slowest).
    pub dimensions: IndexMap<String, Vec<Value>>,
    pub include: Vec<Map<String, Value>>,
    pub exclude: Vec<Map<String, Value>>,
}

/// A mistake in a matrix. Messages follow GitHub's where GitHub has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("Matrix vector '{name}' does not contain any values")]
    EmptyVector { name: String },
    #[error("Matrix must define at least one vector")]
    NoVector,
    #[error(
        "Matrix vector '{name}' is the same key as '{first}' (matrix keys are case-insensitive)"
    )]
    DuplicateVector { name: String, first: String },
    #[error("Matrix include mapping does not contain any values")]
    EmptyInclude { index: usize },
    #[error("Matrix exclude filter must not be empty")]
    EmptyExclude { index: usize },
    #[error("Matrix exclude key '{key}' does not match any key within the matrix")]
    UnknownExcludeKey { index: usize, key: String },
    #[error(
        "Strategy produced {count} configurations which exceeds the maximum of {max} configurations"
    )]
    TooManyLegs { count: u128, max: usize },
    #[error("strategy.matrix must be a mapping of vectors, got {found}")]
    NotAMapping { found: &'static str },
    #[error("Matrix vector '{name}' must be a list of values, got {found}")]
    VectorNotAList { name: String, found: &'static str },
    #[error("Matrix '{key}' must be a list of mappings, got {found}{hint}", hint = if *.found == "a mapping" { " (write it as a list: [ {...} ])" } else { "" })]
    NotAList {
        key: &'static str,
        found: &'static str,
    },
    #[error("Matrix '{key}' item {} must be a mapping, got {found}", .index + 1)]
    ItemNotAMapping {
        key: &'static str,
        index: usize,
        found: &'static str,
    },
}

/// Expands a matrix into its legs, in GitHub's order: the surviving cross-product legs (with
/// their added values), then the legs made from unmatched `include` entries.
pub fn expand(input: &MatrixInput, max_legs: usize) -> Result<Vec<Leg>, MatrixError> {
    if let Some(error) = check_input(input).into_iter().next() {
        return Err(error);
    }
    let plan = Plan::new(input);
    let count = plan.count_legs();
    if count > max_legs as u128 {
        return Err(MatrixError::TooManyLegs {
            count,
            max: max_legs,
        });
    }
    Ok(plan.legs())
}

/// Like [`expand`], for a job that may have no matrix: no matrix is one leg with an empty
/// matrix context.
pub fn expand_optional(
    input: Option<&MatrixInput>,
    max_legs: usize,
) -> Result<Vec<Leg>, MatrixError> {
    match input {
        Some(input) => expand(input, max_legs),
        None => Ok(vec![Leg::new()]),
    }
}

/// The number of legs `expand` would produce (without the limit), computed without building
/// them. Saturates at `u128::MAX`.
pub fn count_legs(input: &MatrixInput) -> Result<u128, MatrixError> {
    if let Some(error) = check_input(input).into_iter().next() {
        return Err(error);
    }
    Ok(Plan::new(input).count_legs())
}

/// Every structural mistake in the matrix (empty vectors, empty or unknown `include`/`exclude`
/// entries, no vector at all), in one pass. Does not check the leg limit.
pub fn check_input(input: &MatrixInput) -> Vec<MatrixError> {
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, values) in &input.dimensions {
        if let Some(first) = seen.iter().find(|s| eq_ignore_case(s, name)) {
            errors.push(MatrixError::DuplicateVector {
                name: name.clone(),
                first: (*first).to_owned(),
            });
        }
        seen.push(name);
        if values.is_empty() {
            errors.push(MatrixError::EmptyVector { name: name.clone() });
        }
    }
    if input.dimensions.is_empty() && input.include.is_empty() {
        errors.push(MatrixError::NoVector);
    }
    for (index, entry) in input.include.iter().enumerate() {
        if entry.is_empty() {
            errors.push(MatrixError::EmptyInclude { index });
        }
    }
    for (index, entry) in input.exclude.iter().enumerate() {
        if entry.is_empty() {
            errors.push(MatrixError::EmptyExclude { index });
        }
        for key in entry.keys() {
            if !input.dimensions.keys().any(|d| eq_ignore_case(d, key)) {
                errors.push(MatrixError::UnknownExcludeKey {
                    index,
                    key: key.clone(),
                });
            }
        }
    }
    errors
}

/// Turns an evaluated `strategy.matrix` value (for example the result of
/// `fromJSON(needs.setup.outputs.matrix)`) into a [`MatrixInput`]. Checks types only; `expand`
/// checks the rest.
pub fn matrix_input_from_json(value: &Value) -> Result<MatrixInput, MatrixError> {
    let Value::Object(object) = value else {
        return Err(MatrixError::NotAMapping {
            found: type_name(value),
        });
    };
    let mut input = MatrixInput::default();
    for (key, value) in object {
        match key.as_str() {
            "include" => input.include = list_of_mappings("include", value)?,
            "exclude" => input.exclude = list_of_mappings("exclude", value)?,
            name => {
                let Value::Array(values) = value else {
                    return Err(MatrixError::VectorNotAList {
                        name: name.to_owned(),
                        found: type_name(value),
                    });
                };
                input.dimensions.insert(name.to_owned(), values.clone());
            }
        }
    }
    Ok(input)
}

fn list_of_mappings(
    key: &'static str,
    value: &Value,
) -> Result<Vec<Map<String, Value>>, MatrixError> {
    let Value::Array(items) = value else {
        return Err(MatrixError::NotAList {
            key,
            found: type_name(value),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => Ok(map.clone()),
            other => Err(MatrixError::ItemNotAMapping {
                key,
                index,
                found: type_name(other),
            }),
        })
        .collect()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// For each matrix vector, which of its values an entry accepts (`None`: the entry does not
/// name that vector).
type Masks = Vec<Option<Vec<bool>>>;

/// Key/value pairs borrowed from an `include` entry.
type Entries<'a> = Vec<(&'a String, &'a Value)>;

/// One `include` entry, split into its filter (vector keys) and its added values.
struct IncludeRule<'a> {
    masks: Masks,
    filter: Entries<'a>,
    added: Entries<'a>,
}

/// A checked matrix, with every `include`/`exclude` entry compiled to per-vector masks so that
/// counting and enumerating only compare indices.
struct Plan<'a> {
    vectors: Vec<(&'a String, &'a Vec<Value>)>,
    excludes: Vec<Masks>,
    /// For each exclude rule, the last vector index it constrains.
    exclude_last: Vec<usize>,
    includes: Vec<IncludeRule<'a>>,
}

impl<'a> Plan<'a> {
    fn new(input: &'a MatrixInput) -> Self {
        let vectors: Vec<_> = input.dimensions.iter().collect();
        let vector_index = |key: &str| -> Option<usize> {
            vectors
                .iter()
                .position(|(name, _)| eq_ignore_case(name, key))
        };
        let masks_for = |entry: &'a Map<String, Value>| -> (Masks, Entries<'a>, Entries<'a>) {
            let mut masks: Masks = vec![None; vectors.len()];
            let mut filter = Vec::new();
            let mut added = Vec::new();
            for (key, wanted) in entry {
                match vector_index(key) {
                    Some(i) => {
                        filter.push((key, wanted));
                        let accepted = vectors[i].1.iter().map(|v| leaf_match(wanted, Some(v)));
                        masks[i] = Some(match masks[i].take() {
                            None => accepted.collect(),
                            Some(prev) => prev.iter().zip(accepted).map(|(a, b)| *a && b).collect(),
                        });
                    }
                    None => added.push((key, wanted)),
                }
            }
            (masks, filter, added)
        };
        let excludes: Vec<Masks> = input.exclude.iter().map(|e| masks_for(e).0).collect();
        let exclude_last = excludes
            .iter()
            .map(|m| m.iter().rposition(Option::is_some).unwrap_or(0))
            .collect();
        let includes = input
            .include
            .iter()
            .map(|e| {
                let (masks, filter, added) = masks_for(e);
                IncludeRule {
                    masks,
                    filter,
                    added,
                }
            })
            .collect();
        Plan {
            vectors,
            excludes,
            exclude_last,
            includes,
        }
    }

    fn count_legs(&self) -> u128 {
        let survivors = self.count_survivors(None);
        let unmatched = self
            .includes
            .iter()
            .filter(|rule| !self.include_matches_any(rule, survivors))
            .count() as u128;
        survivors.saturating_add(unmatched)
    }

    fn include_matches_any(&self, rule: &IncludeRule<'_>, survivors: u128) -> bool {
        if survivors == 0 {
            return false;
        }
        if rule.masks.iter().all(Option::is_none) {
            return true;
        }
        self.count_survivors(Some(&rule.masks)) > 0
    }

    /// Number of cross-product legs not excluded (and accepted by `restrict`, if given).
    fn count_survivors(&self, restrict: Option<&Masks>) -> u128 {
        if self.vectors.is_empty() {
            return 0;
        }
        let all: Vec<usize> = (0..self.excludes.len()).collect();
        let mut memo = HashMap::new();
        self.count_from(0, &all, restrict, &mut memo)
    }

    fn accepted(&self, restrict: Option<&Masks>, level: usize, value: usize) -> bool {
        restrict
            .and_then(|r| r[level].as_ref())
            .is_none_or(|mask| mask[value])
    }

    /// Legs of the sub-product from `level` on, given the exclude rules still `alive` (every
    /// constraint they put on earlier vectors matched).
    fn count_from(
        &self,
        level: usize,
        alive: &[usize],
        restrict: Option<&Masks>,
        memo: &mut HashMap<(usize, Vec<usize>), u128>,
    ) -> u128 {
        if alive.iter().any(|&r| self.exclude_last[r] < level) {
            return 0; // an exclude rule matched completely
        }
        if alive.is_empty() {
            return (level..self.vectors.len())
                .map(|l| {
                    (0..self.vectors[l].1.len())
                        .filter(|&v| self.accepted(restrict, l, v))
                        .count() as u128
                })
                .fold(1u128, u128::saturating_mul);
        }
        if let Some(&known) = memo.get(&(level, alive.to_vec())) {
            return known;
        }
        // Values of this vector that leave the same rules alive give the same count.
        let mut groups: Vec<(Vec<usize>, u128)> = Vec::new();
        for v in 0..self.vectors[level].1.len() {
            if !self.accepted(restrict, level, v) {
                continue;
            }
            let next = self.still_alive(alive, level, v);
            match groups.iter_mut().find(|(rules, _)| *rules == next) {
                Some((_, n)) => *n += 1,
                None => groups.push((next, 1)),
            }
        }
        let total = groups.iter().fold(0u128, |sum, (next, n)| {
            let sub = self.count_from(level + 1, next, restrict, memo);
            sum.saturating_add(sub.saturating_mul(*n))
        });
        memo.insert((level, alive.to_vec()), total);
        total
    }

    fn still_alive(&self, alive: &[usize], level: usize, value: usize) -> Vec<usize> {
        alive
            .iter()
            .copied()
            .filter(|&r| self.excludes[r][level].as_ref().is_none_or(|m| m[value]))
            .collect()
    }

    /// Builds the legs. Only called once the count is known to be within the limit; subtrees
    /// without survivors are skipped, so the work follows the number of legs.
    fn legs(&self) -> Vec<Leg> {
        let mut legs = Vec::new();
        let mut matched = vec![false; self.includes.len()];
        if !self.vectors.is_empty() {
            let all: Vec<usize> = (0..self.excludes.len()).collect();
            let mut memo = HashMap::new();
            let mut indices = Vec::with_capacity(self.vectors.len());
            self.enumerate(0, &all, &mut indices, &mut memo, &mut |indices| {
                legs.push(self.build_leg(indices, &mut matched));
            });
        }
        for (rule, matched) in self.includes.iter().zip(matched) {
            if !matched {
                let mut leg = Leg::new();
                for (key, value) in rule.filter.iter().chain(&rule.added) {
                    leg.insert((*key).clone(), (*value).clone());
                }
                legs.push(leg);
            }
        }
        legs
    }

    fn enumerate(
        &self,
        level: usize,
        alive: &[usize],
        indices: &mut Vec<usize>,
        memo: &mut HashMap<(usize, Vec<usize>), u128>,
        emit: &mut dyn FnMut(&[usize]),
    ) {
        if level == self.vectors.len() {
            emit(indices);
            return;
        }
        for v in 0..self.vectors[level].1.len() {
            let next = self.still_alive(alive, level, v);
            if self.count_from(level + 1, &next, None, memo) == 0 {
                continue;
            }
            indices.push(v);
            self.enumerate(level + 1, &next, indices, memo, emit);
            indices.pop();
        }
    }

    fn build_leg(&self, indices: &[usize], matched: &mut [bool]) -> Leg {
        let mut leg = Leg::new();
        for ((name, values), &i) in self.vectors.iter().zip(indices) {
            leg.insert((*name).clone(), values[i].clone());
        }
        let mut added: Vec<(&String, &Value)> = Vec::new();
        for (rule, matched) in self.includes.iter().zip(matched.iter_mut()) {
            let accepts = rule
                .masks
                .iter()
                .zip(indices)
                .all(|(mask, &i)| mask.as_ref().is_none_or(|m| m[i]));
            if !accepts {
                continue;
            }
            *matched = true;
            for &(key, value) in &rule.added {
                // A later entry overwrites an added value, keeping its first spelling and place.
                match added.iter_mut().find(|(k, _)| eq_ignore_case(k, key)) {
                    Some(slot) => slot.1 = value,
                    None => added.push((key, value)),
                }
            }
        }
        for (key, value) in added {
            leg.insert(key.clone(), value.clone());
        }
        leg
    }
}

/// Whether every leaf of `wanted` equals (GitHub's `==`) the value at the same path in
/// `actual`. An object or array with no leaves matches anything.
fn leaf_match(wanted: &Value, actual: Option<&Value>) -> bool {
    match wanted {
        Value::Object(entries) => entries
            .iter()
            .all(|(key, sub)| leaf_match(sub, actual.and_then(|a| lookup_key(a, key)))),
        Value::Array(items) => items.iter().enumerate().all(|(i, sub)| {
            let element = match actual {
                Some(Value::Array(a)) => a.get(i),
                Some(other) => lookup_key(other, &i.to_string()),
                None => None,
            };
            leaf_match(sub, element)
        }),
        literal => loose_eq(actual.unwrap_or(&Value::Null), literal),
    }
}

fn lookup_key<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let Value::Object(map) = value else {
        return None;
    };
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| eq_ignore_case(k, key))
            .map(|(_, v)| v)
    })
}

/// GitHub's expression `==`: same kinds compare directly (strings ignoring case); different
/// primitive kinds compare as numbers; arrays and objects never equal a primitive.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => eq_ignore_case(x, y),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => {
            let (x, y) = (to_number(a), to_number(b));
            x == y // NaN never equals anything
        }
    }
}

fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => parse_number(s),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

/// String to number as GitHub's expressions do it: surrounding whitespace ignored, empty is 0,
/// decimal / exponent / `0x` hex / `0o` octal / `Infinity` forms, anything else NaN.
fn parse_number(s: &str) -> f64 {
    let s = s.trim();
    if s.is_empty() {
        return 0.0;
    }
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let magnitude = if unsigned == "Infinity" {
        f64::INFINITY
    } else if let Some(hex) = unsigned.strip_prefix("0x") {
        parse_radix(hex, 16)
    } else if let Some(oct) = unsigned.strip_prefix("0o") {
        parse_radix(oct, 8)
    } else if !unsigned.is_empty()
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        unsigned.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    if negative { -magnitude } else { magnitude }
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    digits
        .chars()
        .try_fold(0f64, |acc, c| {
            c.to_digit(radix)
                .map(|d| acc * f64::from(radix) + f64::from(d))
        })
        .unwrap_or(f64::NAN)
}

/// Ordinal case-insensitive comparison (each character upper-cased on its own).
fn eq_ignore_case(a: &str, b: &str) -> bool {
    fn fold(c: char) -> char {
        let mut upper = c.to_uppercase();
        match (upper.next(), upper.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    }
    a == b || a.chars().map(fold).eq(b.chars().map(fold))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(matrix: Value) -> MatrixInput {
        matrix_input_from_json(&matrix).unwrap()
    }

    fn legs(matrix: Value) -> Vec<Value> {
        expand(&input(matrix), DEFAULT_MAX_LEGS)
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect()
    }

    fn keys(leg: &Value) -> Vec<&str> {
        leg.as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn first_vector_varies_slowest() {
        assert_eq!(
            legs(json!({"a": [1, 2], "b": ["x", "y"]})),
            vec![
                json!({"a": 1, "b": "x"}),
                json!({"a": 1, "b": "y"}),
                json!({"a": 2, "b": "x"}),
                json!({"a": 2, "b": "y"}),
            ]
        );
    }

    #[test]
    fn exclude_matches_partially_and_deeply() {
        let got = legs(json!({
            "os": ["linux", "windows"],
            "cfg": [{"node": 12, "npm": 6}, {"node": 14, "npm": 7}],
            "exclude": [{"os": "windows", "cfg": {"node": 14}}],
        }));
        assert_eq!(got.len(), 3);
        assert!(!got.contains(&json!({"os": "windows", "cfg": {"node": 14, "npm": 7}})));
    }

    #[test]
    fn exclude_compares_like_expressions() {
        // GitHub turns each exclude leaf into `matrix.<key> == <literal>`.
        let got = legs(json!({
            "os": ["Linux", "windows"],
            "v": [12, 14],
            "exclude": [{"os": "LINUX", "v": "12"}],
        }));
        assert_eq!(got.len(), 3);
        assert!(!got.contains(&json!({"os": "Linux", "v": 12})));
    }

    #[test]
    fn include_extends_matching_legs_and_later_values_win() {
        let got = legs(json!({
            "os": ["linux", "windows"],
            "include": [
                {"color": "green"},
                {"os": "windows", "color": "pink", "shape": "circle"},
            ],
        }));
        assert_eq!(
            got,
            vec![
                json!({"os": "linux", "color": "green"}),
                json!({"os": "windows", "color": "pink", "shape": "circle"}),
            ]
        );
        assert_eq!(keys(&got[1]), ["os", "color", "shape"]);
    }

    #[test]
    fn include_that_would_overwrite_a_matrix_value_is_a_new_leg() {
        let got = legs(json!({
            "os": ["linux"],
            "v": [1],
            "include": [{"npm": 6, "os": "mac"}],
        }));
        assert_eq!(
            got,
            vec![
                json!({"os": "linux", "v": 1}),
                json!({"os": "mac", "npm": 6})
            ]
        );
        // Vector keys first, then added values, as GitHub builds the new leg.
        assert_eq!(keys(&got[1]), ["os", "npm"]);
    }

    #[test]
    fn include_can_add_back_an_excluded_leg() {
        let got = legs(json!({
            "os": ["linux", "mac"],
            "exclude": [{"os": "mac"}],
            "include": [{"os": "mac", "extra": true}],
        }));
        assert_eq!(
            got,
            vec![json!({"os": "linux"}), json!({"os": "mac", "extra": true})]
        );
    }

    #[test]
    fn everything_excluded_gives_no_legs() {
        assert_eq!(
            legs(json!({"os": ["a", "b"], "exclude": [{"os": "a"}, {"os": "b"}]})),
            Vec::<Value>::new()
        );
        // An include with only added values then has no leg to extend: it becomes one.
        assert_eq!(
            legs(json!({"os": ["a"], "exclude": [{"os": "a"}], "include": [{"x": 1}]})),
            vec![json!({"x": 1})]
        );
    }

    #[test]
    fn no_matrix_is_one_empty_leg() {
        assert_eq!(expand_optional(None, 256).unwrap(), vec![Leg::new()]);
    }

    #[test]
    fn structural_mistakes_use_github_messages() {
        let check = |matrix: Value, expected: &str| {
            let err = expand(&input(matrix), 256).unwrap_err();
            assert_eq!(err.to_string(), expected);
        };
        check(
            json!({"os": [], "v": [1]}),
            "Matrix vector 'os' does not contain any values",
        );
        check(json!({}), "Matrix must define at least one vector");
        check(
            json!({"include": []}),
            "Matrix must define at least one vector",
        );
        check(
            json!({"include": [{}]}),
            "Matrix include mapping does not contain any values",
        );
        check(
            json!({"os": [1], "exclude": [{}]}),
            "Matrix exclude filter must not be empty",
        );
        check(
            json!({"os": [1], "exclude": [{"build": false}]}),
            "Matrix exclude key 'build' does not match any key within the matrix",
        );
        let all = check_input(&input(json!({"a": [], "b": [], "exclude": [{"c": 1}]})));
        assert_eq!(all.len(), 3, "every mistake in one pass: {all:?}");
    }

    #[test]
    fn too_many_legs_says_how_many_and_the_limit() {
        let err = expand(&input(json!({"a": [1, 2, 3], "b": [1, 2, 3]})), 8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Strategy produced 9 configurations which exceeds the maximum of 8 configurations"
        );
        // Unmatched includes count too.
        let err = expand(&input(json!({"a": [1, 2], "include": [{"a": 3}]})), 2).unwrap_err();
        assert_eq!(err, MatrixError::TooManyLegs { count: 3, max: 2 });
    }

    #[test]
    fn huge_matrix_is_counted_without_building_it() {
        let values: Vec<Value> = (0..1000).map(Value::from).collect();
        let m = json!({"a": values, "b": values, "c": values, "d": values});
        let err = expand(&input(m.clone()), 256).unwrap_err();
        assert_eq!(
            err,
            MatrixError::TooManyLegs {
                count: 1_000_000_000_000,
                max: 256
            }
        );
        // Excludes that leave few legs are counted and enumerated without visiting the rest.
        let mut m = m;
        m["exclude"] = json!([{"a": 0, "b": 0, "c": 0}, {"d": 1}]);
        // 10^12 legs, minus 1000 (a=b=c=0), minus 10^9 (d=1), plus the one leg both remove.
        assert_eq!(
            count_legs(&input(m.clone())).unwrap(),
            1_000_000_000_000 - 1_000 - 1_000_000_000 + 1
        );
        let few = json!({
            "a": values, "b": values, "c": [1, 2],
            "exclude": [{"c": 1}, {"c": 2}],
            "include": [{"a": 5, "extra": 1}],
        });
        assert_eq!(legs(few), vec![json!({"a": 5, "extra": 1})]);
    }

    #[test]
    fn count_matches_expansion_for_overlapping_excludes() {
        let m = json!({
            "a": [1, 2, 3], "b": ["x", "y"], "c": [true, false],
            "exclude": [{"a": 1, "c": true}, {"b": "y", "c": true}, {"a": "1"}],
            "include": [{"a": 1, "b": "x", "z": 0}, {"c": false, "w": 1}],
        });
        let expanded = legs(m.clone());
        assert_eq!(count_legs(&input(m)).unwrap(), expanded.len() as u128);
        // a=1 legs are all gone, so the first include is a new leg.
        assert!(expanded.contains(&json!({"a": 1, "b": "x", "z": 0})));
    }

    #[test]
    fn from_json_rejects_wrong_shapes_clearly() {
        let err = |v: Value| matrix_input_from_json(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!("x")),
            "strategy.matrix must be a mapping of vectors, got a string"
        );
        assert_eq!(
            err(json!({"os": "linux"})),
            "Matrix vector 'os' must be a list of values, got a string"
        );
        assert_eq!(
            err(json!({"include": {"os": "linux"}})),
            "Matrix 'include' must be a list of mappings, got a mapping (write it as a list: [ {...} ])"
        );
        assert_eq!(
            err(json!({"exclude": [1]})),
            "Matrix 'exclude' item 1 must be a mapping, got a number"
        );
    }

    #[test]
    fn loose_equality_follows_github() {
        assert!(loose_eq(&json!("12"), &json!(12)));
        assert!(loose_eq(&json!(""), &json!(0)));
        assert!(loose_eq(&json!(null), &json!(0)));
        assert!(loose_eq(&json!(true), &json!(1)));
        assert!(loose_eq(&json!("0x10"), &json!(16)));
        assert!(loose_eq(&json!("Ubuntu"), &json!("ubuntu")));
        assert!(!loose_eq(&json!("abc"), &json!(0)));
        assert!(!loose_eq(&json!([]), &json!(0)));
        assert!(!loose_eq(&json!("true"), &json!(true)));
    }

    /// The rules applied literally: build the whole product, drop excluded legs, extend with
    /// includes, append unmatched includes. `expand` must agree with it.
    fn expand_naively(input: &MatrixInput) -> Vec<Leg> {
        let names: Vec<&String> = input.dimensions.keys().collect();
        let find = |leg: &Leg, key: &str| {
            leg.iter()
                .find(|(k, _)| eq_ignore_case(k, key))
                .map(|(_, v)| v.clone())
        };
        let is_vector = |key: &str| names.iter().any(|n| eq_ignore_case(n, key));
        let mut product = vec![Leg::new()];
        for (name, values) in &input.dimensions {
            product = product
                .into_iter()
                .flat_map(|leg| {
                    values.iter().map(move |v| {
                        let mut leg = leg.clone();
                        leg.insert(name.clone(), v.clone());
                        leg
                    })
                })
                .collect();
        }
        if names.is_empty() {
            product.clear();
        }
        let entry_matches = |entry: &Map<String, Value>, leg: &Leg| {
            entry
                .iter()
                .filter(|(k, _)| is_vector(k))
                .all(|(k, v)| leaf_match(v, find(leg, k).as_ref()))
        };
        product.retain(|leg| !input.exclude.iter().any(|e| entry_matches(e, leg)));
        let mut matched = vec![false; input.include.len()];
        for leg in &mut product {
            let original = leg.clone();
            for (i, entry) in input.include.iter().enumerate() {
                if entry_matches(entry, &original) {
                    matched[i] = true;
                    for (k, v) in entry.iter().filter(|(k, _)| !is_vector(k)) {
                        match leg
                            .keys()
                            .find(|existing| eq_ignore_case(existing, k))
                            .cloned()
                        {
                            Some(existing) => {
                                leg.insert(existing, v.clone());
                            }
                            None => {
                                leg.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
        }
        for (entry, matched) in input.include.iter().zip(matched) {
            if !matched {
                let mut leg: Leg = entry
                    .iter()
                    .filter(|(k, _)| is_vector(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                leg.extend(
                    entry
                        .iter()
                        .filter(|(k, _)| !is_vector(k))
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                product.push(leg);
            }
        }
        product
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            (0i64..3).prop_map(Value::from),
            prop::sample::select(vec!["x", "X", "1", ""]).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            (0i64..2).prop_map(|n| json!({"n": n, "m": 1})),
        ]
    }

    fn arb_entry(
        keys: Vec<&'static str>,
    ) -> impl proptest::strategy::Strategy<Value = Map<String, Value>> {
        use proptest::prelude::*;
        prop::collection::vec((prop::sample::select(keys), arb_value()), 1..3)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn arb_input() -> impl proptest::strategy::Strategy<Value = MatrixInput> {
        use proptest::prelude::*;
        (
            prop::collection::vec(prop::collection::vec(arb_value(), 1..4), 0..4),
            prop::collection::vec(arb_entry(vec!["a", "b", "c", "d"]), 0..3),
            prop::collection::vec(arb_entry(vec!["a", "b", "c", "d"]), 0..4),
        )
            .prop_map(|(vectors, exclude, include)| {
                let names = ["a", "b", "c", "d"];
                let dimensions: IndexMap<String, Vec<Value>> = vectors
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| (names[i].to_owned(), values))
                    .collect();
                // Keep only exclude entries whose keys are all vectors (others are errors).
                let exclude = exclude
                    .into_iter()
                    .filter(|e| e.keys().all(|k| dimensions.contains_key(k)))
                    .collect();
                MatrixInput {
                    dimensions,
                    include,
                    exclude,
                }
            })
    }

    proptest::proptest! {
        #[test]
        fn expansion_agrees_with_the_literal_rules(input in arb_input()) {
            let naive = expand_naively(&input);
            if check_input(&input).is_empty() {
                let expanded = expand(&input, usize::MAX).unwrap();
                proptest::prop_assert_eq!(&expanded, &naive);
                let keys = |legs: &[Leg]| legs.iter().map(|l| l.keys().cloned().collect::<Vec<_>>()).collect::<Vec<_>>();
                proptest::prop_assert_eq!(keys(&expanded), keys(&naive));
                proptest::prop_assert_eq!(count_legs(&input).unwrap(), naive.len() as u128);
            }
        }
    }

    /// JSON transcriptions of the `strategy` YAML of each case of
    /// `testdata/oracles/matrix-expansion.json` (its `strategy.matrix`, or `null` for a strategy
    /// without a matrix), keyed by case id. The YAML module is not used here on purpose.
    const ORACLE_MATRICES: &[(&str, &str)] = &[
        (
            "docs-basic-order",
            r#"{"version": [10, 12, 14], "os": ["ubuntu-latest", "windows-latest"]}"#,
        ),
        (
            "docs-include-fruit-animal",
            r#"{"fruit": ["apple", "pear"], "animal": ["cat", "dog"], "include": [{"color": "green"}, {"color": "pink", "animal": "cat"}, {"fruit": "apple", "shape": "circle"}, {"fruit": "banana"}, {"fruit": "banana", "animal": "cat"}]}"#,
        ),
        (
            "docs-exclude-partial-match",
            r#"{"os": ["macos-latest", "windows-latest"], "version": [12, 14, 16], "environment": ["staging", "production"], "exclude": [{"os": "macos-latest", "version": 12, "environment": "production"}, {"os": "windows-latest", "version": 16}]}"#,
        ),
        (
            "docs-include-adds-new-combination",
            r#"{"os": ["macos-latest", "windows-latest", "ubuntu-latest"], "version": [12, 14, 16], "include": [{"os": "windows-latest", "version": 17}]}"#,
        ),
        (
            "docs-include-only",
            r#"{"include": [{"site": "production", "datacenter": "site-a"}, {"site": "staging", "datacenter": "site-b"}]}"#,
        ),
        (
            "docs-include-extends-one-combination",
            r#"{"os": ["windows-latest", "ubuntu-latest"], "node": [12, 14, 16], "include": [{"os": "windows-latest", "node": 16, "npm": 6}]}"#,
        ),
        (
            "docs-include-perl",
            r#"{"os": ["ubuntu-latest"], "perl": ["5.16", "5.20", "5.26", "5.30", "latest"], "include": [{"os": "macos-latest", "perl": "5.26"}, {"os": "macos-latest", "perl": "latest"}]}"#,
        ),
        (
            "docs-failfast-include",
            r#"{"version": [6, 7, 8], "experimental": [false], "include": [{"version": 9, "experimental": true}]}"#,
        ),
        (
            "docs-max-parallel",
            r#"{"version": [10, 12, 14], "os": ["ubuntu-latest", "windows-latest"]}"#,
        ),
        (
            "act-strategy-all",
            r#"{"datacenter": ["site-c", "site-d"], "exclude": [{"datacenter": "site-d", "node-version": "14.x", "site": "staging"}], "include": [{"php-version": 5.4}, {"datacenter": "site-a", "node-version": "10.x", "site": "prod"}, {"datacenter": "site-b", "node-version": "12.x", "site": "dev"}], "node-version": ["14.x", "16.x"], "site": ["staging"]}"#,
        ),
        (
            "act-only-includes",
            r#"{"include": [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]}"#,
        ),
        ("act-strategy-no-matrix", "null"),
        ("act-strategy-only-fail-fast", "null"),
        ("act-strategy-only-max-parallel", "null"),
    ];

    /// Removes one element equal to `wanted` (objects compare regardless of key order).
    fn take(pool: &mut Vec<Value>, wanted: &Value) -> bool {
        match pool.iter().position(|v| v == wanted) {
            Some(i) => {
                pool.remove(i);
                true
            }
            None => false,
        }
    }

    fn check_oracle_case(case: &Value, matrix: &str) -> Result<(), String> {
        let matrix: Value = serde_json::from_str(matrix).map_err(|e| e.to_string())?;
        let parsed = match &matrix {
            Value::Null => None,
            m => Some(matrix_input_from_json(m).map_err(|e| e.to_string())?),
        };
        let got: Vec<Value> = expand_optional(parsed.as_ref(), DEFAULT_MAX_LEGS)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(Value::Object)
            .collect();
        let expected = &case["expected"];
        if let Some(count) = expected["count"].as_u64()
            && got.len() as u64 != count
        {
            return Err(format!("count {} != {count}: {got:?}", got.len()));
        }
        if let Some(combinations) = expected["combinations"].as_array() {
            if expected["order_significant"].as_bool() == Some(true) {
                if &got != combinations {
                    return Err(format!("order: got {got:?}, expected {combinations:?}"));
                }
            } else {
                let mut pool = got.clone();
                for c in combinations {
                    if !take(&mut pool, c) {
                        return Err(format!("missing {c}: got {got:?}"));
                    }
                }
                if !pool.is_empty() {
                    return Err(format!("unexpected {pool:?}"));
                }
            }
        }
        for present in expected["present"].as_array().into_iter().flatten() {
            if !got.contains(present) {
                return Err(format!("{present} not present in {got:?}"));
            }
        }
        for absent in expected["absent"].as_array().into_iter().flatten() {
            if got.contains(absent) {
                return Err(format!("{absent} present in {got:?}"));
            }
        }
        if expected["note"].as_str() == Some("only that one combination has npm") {
            let with_npm = got.iter().filter(|l| l.get("npm").is_some()).count();
            if with_npm != 1 {
                return Err(format!("{with_npm} legs have npm"));
            }
        }
        Ok(())
    }

    #[test]
    fn oracle_matrix_expansion() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/oracles/matrix-expansion.json"
        ))
        .unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        let oracle_ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let table_ids: Vec<&str> = ORACLE_MATRICES.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            table_ids, oracle_ids,
            "the transcription table must cover every case"
        );
        let mut failures = Vec::new();
        for (case, (id, matrix)) in cases.iter().zip(ORACLE_MATRICES) {
            if let Err(e) = check_oracle_case(case, matrix) {
                failures.push(format!("{id}: {e}"));
            }
        }
        let passed = cases.len() - failures.len();
        println!(
            "matrix-expansion.json: {passed}/{} cases pass ({:.1}%)",
            cases.len(),
            100.0 * passed as f64 / cases.len() as f64
        );
        for failure in &failures {
            println!("FAIL {failure}");
        }
        assert!(failures.is_empty(), "{} oracle failures", failures.len());
    }
}
