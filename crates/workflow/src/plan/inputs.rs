//! Typing the inputs of a workflow: `workflow_dispatch` inputs given on the command line (or by
//! the API), `workflow_call` inputs given by the caller's `with:` (or by the payload of a
//! `workflow_call` event, when a reusable workflow is run directly), checked against their
//! declarations as GitHub does (types, defaults, `required`, `choice` options, unknown names).

use std::fmt;

use gantry_expr::{Contexts, Template};
use serde_json::{Map, Number, Value};

use crate::model::{Input, InputType};
use crate::yaml::Node;

/// Where inputs come from; only changes the wording of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// `on.workflow_dispatch.inputs`, given as `--input name=value`.
    Dispatch,
    /// `on.workflow_call.inputs`, given by the caller's `with:`.
    Call,
    /// `on.workflow_call.inputs` of a workflow run directly with the `workflow_call` event,
    /// given in the payload's `inputs` (or as `--input name=value`).
    CallEvent,
}

/// A problem with one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The input's name.
    pub input: String,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input `{}`: {}", self.input, self.message)
    }
}

impl std::error::Error for InputError {}

/// The `inputs` context: every declared input, typed, with its default when not given.
///
/// `given` holds values in order (strings from a command line, any JSON value from a caller's
/// `with:`). Strings are converted to the declared type (`"true"` for a boolean, `"3"` for a
/// number). `defaults_ctx` evaluates defaults holding `${{ }}` (allowed for `workflow_call`
/// inputs: `github`, `inputs`, `vars`). Every problem is reported, not just the first.
pub fn type_inputs(
    declared: &[Input],
    given: &[(String, Value)],
    source: InputSource,
    defaults_ctx: Option<&Contexts>,
) -> Result<Map<String, Value>, Vec<InputError>> {
    let mut errors = Vec::new();
    let mut typed = Map::new();
    for (name, _) in given {
        if !declared.iter().any(|d| d.name.value == *name) {
            let known: Vec<&str> = declared.iter().map(|d| d.name.value.as_str()).collect();
            let message = match source {
                InputSource::Dispatch if known.is_empty() => {
                    "the workflow declares no workflow_dispatch inputs".to_owned()
                }
                InputSource::Call if known.is_empty() => {
                    "the called workflow declares no workflow_call inputs".to_owned()
                }
                InputSource::CallEvent if known.is_empty() => {
                    "the workflow declares no workflow_call inputs".to_owned()
                }
                _ => format!("not declared (declared: {})", known.join(", ")),
            };
            errors.push(InputError {
                input: name.clone(),
                message,
            });
        }
    }
    for input in declared {
        let name = &input.name.value;
        // The last value given wins, like repeated `--input` flags.
        let value = given.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
        let value = match value {
            Some(v) => Some(v.clone()),
            None => match default_value(input, defaults_ctx) {
                Ok(v) => v,
                Err(message) => {
                    errors.push(InputError {
                        input: name.clone(),
                        message,
                    });
                    continue;
                }
            },
        };
        let Some(value) = value else {
            if input.is_required() {
                errors.push(InputError {
                    input: name.clone(),
                    message: match source {
                        InputSource::Dispatch => {
                            "required, but not given (pass `--input NAME=VALUE`)".to_owned()
                        }
                        InputSource::Call => {
                            "required by the called workflow, but not given in `with:`".to_owned()
                        }
                        InputSource::CallEvent => "required, but not given (put it in the \
                                                   payload's `inputs` or pass `--input NAME=VALUE`)"
                            .to_owned(),
                    },
                });
            } else {
                typed.insert(name.clone(), empty_value(input.kind()));
            }
            continue;
        };
        match convert(input, value) {
            Ok(v) => {
                typed.insert(name.clone(), v);
            }
            Err(message) => errors.push(InputError {
                input: name.clone(),
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(typed)
    } else {
        Err(errors)
    }
}

/// The value an optional input without default has: `false`, `0` or `""`... GitHub gives an
/// empty string for strings and choices and `false` for booleans; numbers read as `0`.
fn empty_value(kind: InputType) -> Value {
    match kind {
        InputType::Boolean => Value::Bool(false),
        InputType::Number => Value::from(0),
        _ => Value::String(String::new()),
    }
}

fn default_value(input: &Input, ctx: Option<&Contexts>) -> Result<Option<Value>, String> {
    let Some(default) = &input.default else {
        return Ok(None);
    };
    match &default.value {
        Node::String(text) if text.contains("${{") => {
            let template = Template::parse(text).map_err(|e| format!("default: {e}"))?;
            let empty = Contexts::new();
            let value = template
                .evaluate(ctx.unwrap_or(&empty))
                .map_err(|e| format!("default `{text}`: {e}"))?;
            Ok(Some(value.to_json()))
        }
        node => Ok(Some(node.to_json())),
    }
}

/// Converts a given value to the input's declared type.
fn convert(input: &Input, value: Value) -> Result<Value, String> {
    match input.kind() {
        InputType::Boolean => match &value {
            Value::Bool(_) => Ok(value),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(format!(
                "expected a boolean (true or false), got {}",
                describe(other)
            )),
        },
        InputType::Number => match &value {
            Value::Number(_) => Ok(value),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && !s.trim().is_empty() => Ok(number(n)),
                _ => Err(format!("expected a number, got {}", describe(&value))),
            },
            other => Err(format!("expected a number, got {}", describe(other))),
        },
        InputType::Choice => {
            let text = scalar_text(&value)
                .ok_or_else(|| format!("expected one of the options, got {}", describe(&value)))?;
            if input.options.iter().any(|o| o.value == text) {
                Ok(Value::String(text))
            } else {
                let options: Vec<&str> = input.options.iter().map(|o| o.value.as_str()).collect();
                Err(format!(
                    "`{text}` is not one of the options: {}",
                    options.join(", ")
                ))
            }
        }
        InputType::String | InputType::Environment => match scalar_text(&value) {
            Some(text) => Ok(Value::String(text)),
            None => Err(format!("expected a string, got {}", describe(&value))),
        },
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        // The range check makes the conversion exact.
        Value::from(n as i64)
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// A scalar as the string GitHub passes (numbers and booleans become their text).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}
