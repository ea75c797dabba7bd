//! GitHub's official workflow schema (`schema/workflow-v1.0.json`, MIT, see the
//! `LICENSE-NOTICE.md` next to it): which keys exist where, the type of each value, and which
//! contexts and functions expressions may use at each place (`context: ["github", "inputs",
//! "hashFiles(1,255)"]`).
//!
//! The schema is data; [`crate::validate`] walks a YAML tree against it.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

const SCHEMA_JSON: &str = include_str!("schema/workflow-v1.0.json");

/// The definition the root of a workflow file is read with.
pub const WORKFLOW_ROOT: &str = "workflow-root-strict";

/// One named definition of the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub kind: DefinitionKind,
    /// Named values and functions (`name(min,max)`) allowed in expressions here; empty means
    /// no expression is allowed (unless an enclosing definition allows some).
    pub context: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DefinitionKind {
    Null,
    Boolean,
    Number,
    String(StringRules),
    Sequence {
        item_type: String,
    },
    Mapping(MappingRules),
    /// The value matches any of these definitions.
    OneOf(Vec<String>),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringRules {
    /// The only value allowed.
    pub constant: Option<String>,
    pub ignore_case: bool,
    pub require_non_empty: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MappingRules {
    /// Known keys in schema order.
    pub properties: Vec<(String, Property)>,
    /// Type of keys that are not among `properties` (none: other keys are errors).
    pub loose_key_type: Option<String>,
    pub loose_value_type: Option<String>,
}

impl MappingRules {
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub type_name: String,
    pub required: bool,
}

/// The workflow schema.
#[derive(Debug)]
pub struct Schema {
    definitions: HashMap<String, Definition>,
}

/// The parsed embedded schema (read once).
pub fn workflow_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let json: Value =
            serde_json::from_str(SCHEMA_JSON).expect("the embedded workflow schema is valid JSON");
        Schema::from_json(&json)
    })
}

impl Schema {
    fn from_json(json: &Value) -> Schema {
        let mut definitions = HashMap::new();
        let builtin = |kind| Definition {
            kind,
            context: Vec::new(),
        };
        definitions.insert("null".to_owned(), builtin(DefinitionKind::Null));
        definitions.insert("boolean".to_owned(), builtin(DefinitionKind::Boolean));
        definitions.insert("number".to_owned(), builtin(DefinitionKind::Number));
        definitions.insert(
            "string".to_owned(),
            builtin(DefinitionKind::String(StringRules::default())),
        );
        definitions.insert(
            "sequence".to_owned(),
            builtin(DefinitionKind::Sequence {
                item_type: "any".to_owned(),
            }),
        );
        definitions.insert(
            "mapping".to_owned(),
            builtin(DefinitionKind::Mapping(MappingRules {
                properties: Vec::new(),
                loose_key_type: Some("string".to_owned()),
                loose_value_type: Some("any".to_owned()),
            })),
        );
        definitions.insert(
            "any".to_owned(),
            builtin(DefinitionKind::OneOf(
                ["null", "boolean", "number", "string", "sequence", "mapping"]
                    .map(str::to_owned)
                    .to_vec(),
            )),
        );

        let defs = json
            .get("definitions")
            .and_then(Value::as_object)
            .expect("the embedded workflow schema has definitions");
        for (name, def) in defs {
            let context: Vec<String> = def
                .get("context")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let kind = if def.get("null").is_some() {
                DefinitionKind::Null
            } else if def.get("boolean").is_some() {
                DefinitionKind::Boolean
            } else if def.get("number").is_some() {
                DefinitionKind::Number
            } else if let Some(s) = def.get("string") {
                DefinitionKind::String(StringRules {
                    constant: s.get("constant").and_then(Value::as_str).map(str::to_owned),
                    ignore_case: s
                        .get("ignore-case")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    require_non_empty: s
                        .get("require-non-empty")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
            } else if let Some(s) = def.get("sequence") {
                DefinitionKind::Sequence {
                    item_type: s
                        .get("item-type")
                        .and_then(Value::as_str)
                        .unwrap_or("any")
                        .to_owned(),
                }
            } else if let Some(m) = def.get("mapping") {
                let properties = m
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|props| {
                        props
                            .iter()
                            .map(|(key, p)| {
                                let property = match p {
                                    Value::String(t) => Property {
                                        type_name: t.clone(),
                                        required: false,
                                    },
                                    _ => Property {
                                        type_name: p
                                            .get("type")
                                            .and_then(Value::as_str)
                                            .unwrap_or("any")
                                            .to_owned(),
                                        required: p
                                            .get("required")
                                            .and_then(Value::as_bool)
                                            .unwrap_or(false),
                                    },
                                };
                                (key.clone(), property)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                DefinitionKind::Mapping(MappingRules {
                    properties,
                    loose_key_type: m
                        .get("loose-key-type")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    loose_value_type: m
                        .get("loose-value-type")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            } else if let Some(items) = def.get("one-of").and_then(Value::as_array) {
                DefinitionKind::OneOf(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                )
            } else if let Some(values) = def.get("allowed-values").and_then(Value::as_array) {
                // Each allowed value becomes a constant string definition `<name>-<value>`.
                let mut names = Vec::new();
                for v in values.iter().filter_map(Value::as_str) {
                    let constant_name = format!("{name}-{v}");
                    definitions.insert(
                        constant_name.clone(),
                        builtin(DefinitionKind::String(StringRules {
                            constant: Some(v.to_owned()),
                            ..StringRules::default()
                        })),
                    );
                    names.push(constant_name);
                }
                DefinitionKind::OneOf(names)
            } else {
                continue;
            };
            definitions.insert(name.clone(), Definition { kind, context });
        }
        Schema { definitions }
    }

    /// The definition called `name`. Unknown names (never the case for the embedded schema)
    /// read as `any`.
    pub fn get(&self, name: &str) -> &Definition {
        self.definitions
            .get(name)
            .or_else(|| self.definitions.get("any"))
            .expect("the built-in `any` definition exists")
    }

    /// The definitions of `name` after expanding `one-of` (nested ones too), with their names.
    pub fn expand<'s>(&'s self, name: &'s str) -> Vec<(&'s str, &'s Definition)> {
        let mut out = Vec::new();
        self.expand_into(name, &mut out, 0);
        out
    }

    fn expand_into<'s>(
        &'s self,
        name: &'s str,
        out: &mut Vec<(&'s str, &'s Definition)>,
        depth: usize,
    ) {
        let def = self.get(name);
        match &def.kind {
            DefinitionKind::OneOf(names) if depth < 8 => {
                for n in names {
                    self.expand_into(n, out, depth + 1);
                }
            }
            _ => out.push((name, def)),
        }
    }

    /// The names of `one-of` alternatives directly listed under `name` (not expanded).
    pub fn one_of(&self, name: &str) -> Option<&[String]> {
        match &self.get(name).kind {
            DefinitionKind::OneOf(names) => Some(names),
            _ => None,
        }
    }
}

/// A function allowed in expressions at some place: `hashFiles(1,255)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionArity {
    pub name: String,
    pub min_args: usize,
    /// `usize::MAX` for `MAX`.
    pub max_args: usize,
}

/// Splits a `context` list into named values and functions with their arity.
pub fn split_context(context: &[String]) -> (Vec<String>, Vec<FunctionArity>) {
    let mut names = Vec::new();
    let mut functions = Vec::new();
    for item in context {
        if let Some((name, rest)) = item.split_once('(')
            && let Some(args) = rest.strip_suffix(')')
            && let Some((min, max)) = args.split_once(',')
            && let Ok(min_args) = min.trim().parse::<usize>()
        {
            let max_args = if max.trim() == "MAX" {
                usize::MAX
            } else {
                max.trim().parse::<usize>().unwrap_or(usize::MAX)
            };
            functions.push(FunctionArity {
                name: name.to_owned(),
                min_args,
                max_args,
            });
        } else {
            names.push(item.clone());
        }
    }
    (names, functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_loads_with_job_and_step_definitions() {
        let schema = workflow_schema();
        let root = schema.get(WORKFLOW_ROOT);
        let DefinitionKind::Mapping(rules) = &root.kind else {
            panic!("the root is a mapping");
        };
        assert!(rules.property("jobs").is_some_and(|p| p.required));
        assert!(rules.property("on").is_some_and(|p| p.required));
        let alternatives: Vec<&str> = schema
            .expand("steps-item")
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert!(alternatives.contains(&"run-step"));
        assert!(alternatives.contains(&"regular-step"));
    }

    #[test]
    fn allowed_values_become_constants() {
        let schema = workflow_schema();
        let constants: Vec<String> = schema
            .expand("pull-request-activity-type")
            .iter()
            .filter_map(|(_, d)| match &d.kind {
                DefinitionKind::String(s) => s.constant.clone(),
                _ => None,
            })
            .collect();
        assert!(constants.contains(&"opened".to_owned()));
        assert!(constants.contains(&"synchronize".to_owned()));
    }

    #[test]
    fn context_splits_into_names_and_functions() {
        let context = workflow_schema().get("step-if").context.clone();
        let (names, functions) = split_context(&context);
        assert!(names.contains(&"steps".to_owned()));
        let hash = functions
            .iter()
            .find(|f| f.name == "hashFiles")
            .expect("hashFiles");
        assert_eq!((hash.min_args, hash.max_args), (1, 255));
        let (_, job_functions) = split_context(&workflow_schema().get("job-if").context);
        let failure = job_functions
            .iter()
            .find(|f| f.name == "failure")
            .expect("failure");
        assert_eq!(failure.max_args, usize::MAX);
    }
}
