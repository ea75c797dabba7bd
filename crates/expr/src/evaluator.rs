//! Evaluates a parsed expression against contexts.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::compare::{equals, greater_than, less_than};
use crate::error::{Error, ErrorKind, Span, Stage};
use crate::expr::{CompareOp, Expr, LogicalOp, Node, NodeKind};
use crate::function;
use crate::number;
use crate::value::{Kind, Object, Value};

/// How the job is doing, for `success()`, `failure()`, `cancelled()` and `always()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Nothing has failed and the run is not cancelled.
    #[default]
    Success,
    /// An earlier step (or a needed job) failed.
    Failure,
    /// The run was cancelled.
    Cancelled,
}

impl JobStatus {
    /// `"success"`, `"failure"` or `"cancelled"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Reads `success`, `failure` or `cancelled` (any case).
    pub fn from_name(name: &str) -> Option<JobStatus> {
        [JobStatus::Success, JobStatus::Failure, JobStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// A function supplied by the caller (see [`Contexts::define_function`]). It receives the
/// evaluated arguments; an `Err` becomes an evaluation error with that message.
pub type CustomFunction = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Everything an evaluation can see: the named values (contexts, case-insensitive), the
/// job status, the workspace for `hashFiles()`, and functions supplied by the caller.
#[derive(Clone, Default)]
pub struct Contexts {
    values: Object,
    /// The job status used by `success()`, `failure()`, `cancelled()`.
    pub status: JobStatus,
    /// The directory `hashFiles()` searches; without it `hashFiles()` is an error.
    pub workspace: Option<PathBuf>,
    functions: Vec<(String, CustomFunction)>,
}

impl fmt::Debug for Contexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contexts")
            .field("values", &self.values)
            .field("status", &self.status)
            .field("workspace", &self.workspace)
            .field(
                "functions",
                &self.functions.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Contexts {
    /// No contexts, status success, no workspace.
    pub fn new() -> Contexts {
        Contexts::default()
    }

    /// Sets the named value `name` (case-insensitive), returning the previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.values.insert(name, value)
    }

    /// The named value `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// The named value `name` for changing it (e.g. adding a step's outputs).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.values.get_mut(name)
    }

    /// Removes the named value `name`.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.values.remove(name)
    }

    /// The names present, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys()
    }

    /// All named values as one object.
    pub fn values(&self) -> &Object {
        &self.values
    }

    /// The same contexts with this job status.
    pub fn with_status(mut self, status: JobStatus) -> Contexts {
        self.status = status;
        self
    }

    /// The same contexts with this workspace for `hashFiles()`.
    pub fn with_workspace(mut self, workspace: impl Into<PathBuf>) -> Contexts {
        self.workspace = Some(workspace.into());
        self
    }

    /// Supplies (or replaces) a function; it takes precedence over the built-in and
    /// runtime functions of the same name (case-insensitive). The parser must also be
    /// told about it ([`ParseOptions::functions`](crate::ParseOptions)).
    pub fn define_function(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) {
        let name = name.into();
        self.functions
            .retain(|(n, _)| !crate::value::eq_folded(n, &name));
        self.functions.push((name, Arc::new(f)));
    }

    fn function(&self, name: &str) -> Option<&CustomFunction> {
        self.functions
            .iter()
            .find(|(n, _)| crate::value::eq_folded(n, name))
            .map(|(_, f)| f)
    }
}

impl From<Object> for Contexts {
    fn from(values: Object) -> Contexts {
        Contexts {
            values,
            ..Contexts::default()
        }
    }
}

/// A value during evaluation. Arrays and objects from the contexts are borrowed, so
/// comparing them keeps GitHub's reference semantics (`a == a` but not `a == copy`).
#[derive(Clone, Debug)]
pub(crate) enum Operand<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'a, str>),
    /// An array or object borrowed from the contexts or from a caller's value.
    Ref(&'a Value),
    /// An array or object made during evaluation (`fromJSON`).
    Owned(Rc<Value>),
    /// The result of an object filter (`.*`, `[*]`); indexing it indexes each element.
    Filtered(Rc<Vec<Operand<'a>>>),
}

impl<'a> Operand<'a> {
    pub(crate) fn from_value(v: &'a Value) -> Operand<'a> {
        match v {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(*b),
            Value::Number(n) => Operand::Number(*n),
            Value::String(s) => Operand::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Operand::Ref(v),
        }
    }

    pub(crate) fn from_owned(v: Value) -> Operand<'a> {
        match v {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(b),
            Value::Number(n) => Operand::Number(n),
            Value::String(s) => Operand::Str(Cow::Owned(s)),
            v @ (Value::Array(_) | Value::Object(_)) => Operand::Owned(Rc::new(v)),
        }
    }

    /// The element `v` of a container this operand holds.
    fn child(&self, v: &'a Value) -> Operand<'a> {
        match self {
            Operand::Owned(_) => Operand::from_owned(v.clone()),
            _ => Operand::from_value(v),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Operand::Null => Kind::Null,
            Operand::Bool(_) => Kind::Boolean,
            Operand::Number(_) => Kind::Number,
            Operand::Str(_) => Kind::String,
            Operand::Ref(v) => v.kind(),
            Operand::Owned(v) => v.kind(),
            Operand::Filtered(_) => Kind::Array,
        }
    }

    pub(crate) fn is_primitive(&self) -> bool {
        !matches!(self.kind(), Kind::Array | Kind::Object)
    }

    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            Operand::Null => false,
            Operand::Bool(b) => *b,
            Operand::Number(n) => !(*n == 0.0 || n.is_nan()),
            Operand::Str(s) => !s.is_empty(),
            Operand::Ref(_) | Operand::Owned(_) | Operand::Filtered(_) => true,
        }
    }

    pub(crate) fn to_number(&self) -> f64 {
        match self {
            Operand::Null => 0.0,
            Operand::Bool(b) => f64::from(u8::from(*b)),
            Operand::Number(n) => *n,
            Operand::Str(s) => number::parse_js_number(s),
            Operand::Ref(_) | Operand::Owned(_) | Operand::Filtered(_) => f64::NAN,
        }
    }

    pub(crate) fn to_coerced_string(&self) -> Cow<'_, str> {
        match self {
            Operand::Null => Cow::Borrowed(""),
            Operand::Bool(true) => Cow::Borrowed("true"),
            Operand::Bool(false) => Cow::Borrowed("false"),
            Operand::Number(n) => Cow::Owned(number::coerce_to_string(*n)),
            Operand::Str(s) => Cow::Borrowed(s),
            _ => Cow::Borrowed(if self.kind() == Kind::Array {
                "Array"
            } else {
                "Object"
            }),
        }
    }

    /// Whether two arrays/objects are the same one.
    pub(crate) fn is_same(&self, other: &Operand<'_>) -> bool {
        match (self, other) {
            (Operand::Ref(a), Operand::Ref(b)) => std::ptr::eq(*a, *b),
            (Operand::Owned(a), Operand::Owned(b)) => Rc::ptr_eq(a, b),
            (Operand::Filtered(a), Operand::Filtered(b)) => {
                std::ptr::eq(Rc::as_ptr(a).cast::<()>(), Rc::as_ptr(b).cast::<()>())
            }
            _ => false,
        }
    }

    /// The elements, if this is an array.
    pub(crate) fn elements(&self) -> Option<Vec<Operand<'a>>> {
        match self {
            Operand::Ref(Value::Array(a)) => Some(a.iter().map(Operand::from_value).collect()),
            Operand::Owned(v) => match &**v {
                Value::Array(a) => Some(a.iter().cloned().map(Operand::from_owned).collect()),
                _ => None,
            },
            Operand::Filtered(items) => Some(items.as_ref().clone()),
            _ => None,
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Operand::Null => Value::Null,
            Operand::Bool(b) => Value::Bool(b),
            Operand::Number(n) => Value::Number(n),
            Operand::Str(s) => Value::String(s.into_owned()),
            Operand::Ref(v) => v.clone(),
            Operand::Owned(v) => Rc::try_unwrap(v).unwrap_or_else(|rc| (*rc).clone()),
            Operand::Filtered(items) => Value::Array(
                Rc::try_unwrap(items)
                    .unwrap_or_else(|rc| (*rc).clone())
                    .into_iter()
                    .map(Operand::into_value)
                    .collect(),
            ),
        }
    }
}

/// An index as GitHub reads it: its string form (for objects) and, when it is a
/// finite non-negative number, its integer part (for arrays).
struct IndexKey<'x> {
    star: bool,
    name: Option<Cow<'x, str>>,
    int: Option<usize>,
}

impl<'x> IndexKey<'x> {
    fn star() -> IndexKey<'x> {
        IndexKey {
            star: true,
            name: None,
            int: None,
        }
    }

    fn name(name: &'x str) -> IndexKey<'x> {
        IndexKey {
            star: false,
            name: Some(Cow::Borrowed(name)),
            int: None,
        }
    }

    fn of(op: &'x Operand<'_>) -> IndexKey<'x> {
        let name = op.is_primitive().then(|| op.to_coerced_string());
        let n = op.to_number();
        let int = (n.is_finite() && n >= 0.0).then(|| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = n.floor() as usize; // saturates for huge numbers: out of range anyway
            i
        });
        IndexKey {
            star: false,
            name,
            int,
        }
    }
}

/// Evaluates an expression. Arrays and objects in the result are copies.
pub fn evaluate(expr: &Expr, ctx: &Contexts) -> Result<Value, Error> {
    let ev = Evaluator { expr, ctx };
    Ok(ev.eval(&expr.root)?.into_value())
}

/// Evaluates an expression to a boolean as an `if:` condition does (truthiness).
pub fn evaluate_condition(expr: &Expr, ctx: &Contexts) -> Result<bool, Error> {
    let ev = Evaluator { expr, ctx };
    Ok(ev.eval(&expr.root)?.is_truthy())
}

/// Evaluates an expression to the string a template would insert.
pub(crate) fn evaluate_to_string(
    expr: &Expr,
    ctx: &Contexts,
    out: &mut String,
) -> Result<(), Error> {
    let ev = Evaluator { expr, ctx };
    out.push_str(&ev.eval(&expr.root)?.to_coerced_string());
    Ok(())
}

struct Evaluator<'a> {
    expr: &'a Expr,
    ctx: &'a Contexts,
}

impl<'a> Evaluator<'a> {
    fn error(&self, message: &str, span: Span) -> Error {
        Error::new(
            Stage::Evaluation,
            ErrorKind::Function,
            format!("{message}. Located within expression: {}", self.expr.source),
            Some(span),
        )
    }

    fn eval(&self, node: &'a Node) -> Result<Operand<'a>, Error> {
        Ok(match &node.kind {
            NodeKind::Empty | NodeKind::Null => Operand::Null,
            NodeKind::Bool(b) => Operand::Bool(*b),
            NodeKind::Number(n) => Operand::Number(*n),
            NodeKind::String(s) => Operand::Str(Cow::Borrowed(s)),
            NodeKind::NamedValue(name) => self
                .ctx
                .values
                .get(name)
                .map_or(Operand::Null, Operand::from_value),
            NodeKind::Property { target, name } => {
                let target = self.eval(target)?;
                access(&target, &IndexKey::name(name))
            }
            NodeKind::Index { target, index } => {
                // GitHub evaluates the index before the object.
                let index = self.eval(index)?;
                let target = self.eval(target)?;
                access(&target, &IndexKey::of(&index))
            }
            NodeKind::Star { target } => {
                let target = self.eval(target)?;
                access(&target, &IndexKey::star())
            }
            NodeKind::Not(operand) => Operand::Bool(!self.eval(operand)?.is_truthy()),
            NodeKind::Compare { first, rest } => {
                let mut acc = self.eval(first)?;
                for (op, rhs) in rest {
                    let r = self.eval(rhs)?;
                    let result = match op {
                        CompareOp::Eq => equals(&acc, &r),
                        CompareOp::Ne => !equals(&acc, &r),
                        CompareOp::Lt => less_than(&acc, &r),
                        CompareOp::Le => equals(&acc, &r) || less_than(&acc, &r),
                        CompareOp::Gt => greater_than(&acc, &r),
                        CompareOp::Ge => equals(&acc, &r) || greater_than(&acc, &r),
                    };
                    acc = Operand::Bool(result);
                }
                acc
            }
            NodeKind::Logical { op, operands } => {
                let mut result = Operand::Null;
                for operand in operands {
                    result = self.eval(operand)?;
                    let decided = match op {
                        LogicalOp::And => !result.is_truthy(),
                        LogicalOp::Or => result.is_truthy(),
                    };
                    if decided {
                        break;
                    }
                }
                result
            }
            NodeKind::Call { name, args, .. } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(arg)?);
                }
                self.call(name, values, node.span)?
            }
        })
    }

    fn call(&self, name: &str, args: Vec<Operand<'a>>, span: Span) -> Result<Operand<'a>, Error> {
        if let Some(f) = self.ctx.function(name) {
            let values: Vec<Value> = args.into_iter().map(Operand::into_value).collect();
            return f(&values)
                .map(Operand::from_owned)
                .map_err(|m| self.error(&m, span));
        }
        function::call(name, args, self.ctx).map_err(|m| self.error(&m, span))
    }
}

/// `target[key]` with GitHub's rules (missing → null; filters apply to each element).
fn access<'a>(target: &Operand<'a>, key: &IndexKey<'_>) -> Operand<'a> {
    match target {
        Operand::Filtered(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.kind() {
                    Kind::Object => {
                        if key.star {
                            out.extend(object_values(item));
                        } else if let Some(name) = &key.name
                            && let Some(v) = object_get(item, name)
                        {
                            out.push(v);
                        }
                    }
                    Kind::Array => {
                        if key.star {
                            out.extend(item.elements().unwrap_or_default());
                        } else if let Some(i) = key.int
                            && let Some(v) = array_get(item, i)
                        {
                            out.push(v);
                        }
                    }
                    _ => {}
                }
            }
            Operand::Filtered(Rc::new(out))
        }
        _ => match target.kind() {
            Kind::Array => {
                if key.star {
                    Operand::Filtered(Rc::new(target.elements().unwrap_or_default()))
                } else {
                    key.int
                        .and_then(|i| array_get(target, i))
                        .unwrap_or(Operand::Null)
                }
            }
            Kind::Object => {
                if key.star {
                    Operand::Filtered(Rc::new(object_values(target)))
                } else {
                    key.name
                        .as_ref()
                        .and_then(|n| object_get(target, n))
                        .unwrap_or(Operand::Null)
                }
            }
            _ if key.star => Operand::Filtered(Rc::new(Vec::new())),
            _ => Operand::Null,
        },
    }
}

fn container<'x>(op: &'x Operand<'_>) -> Option<&'x Value> {
    match op {
        Operand::Ref(v) => Some(v),
        Operand::Owned(v) => Some(v),
        _ => None,
    }
}

fn object_get<'a>(op: &Operand<'a>, name: &str) -> Option<Operand<'a>> {
    match op {
        Operand::Ref(Value::Object(o)) => o.get(name).map(Operand::from_value),
        Operand::Owned(_) => match container(op) {
            Some(Value::Object(o)) => o.get(name).map(|v| Operand::from_owned(v.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn object_values<'a>(op: &Operand<'a>) -> Vec<Operand<'a>> {
    match op {
        Operand::Ref(Value::Object(o)) => o.values().map(|v| op.child(v)).collect(),
        Operand::Owned(_) => match container(op) {
            Some(Value::Object(o)) => o.values().cloned().map(Operand::from_owned).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn array_get<'a>(op: &Operand<'a>, i: usize) -> Option<Operand<'a>> {
    match op {
        Operand::Ref(Value::Array(a)) => a.get(i).map(Operand::from_value),
        Operand::Owned(_) => match container(op) {
            Some(Value::Array(a)) => a.get(i).map(|v| Operand::from_owned(v.clone())),
            _ => None,
        },
        Operand::Filtered(items) => items.get(i).cloned(),
        _ => None,
    }
}
