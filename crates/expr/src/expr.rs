//! The syntax tree of a parsed expression.

use std::fmt;

use crate::error::Span;

/// A parsed expression: its source text and its tree. Spans are byte ranges in
/// [`Expr::source`].
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub(crate) source: String,
    pub(crate) root: Node,
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Where it is in the expression source (bytes).
    pub span: Span,
}

/// The node kinds. Chains of operators of one precedence level are kept flat
/// (`a == b != c` is one [`NodeKind::Compare`]), so no tree is deeper than GitHub's
/// nesting limit allows.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeKind {
    /// An empty (or all-blank) expression; evaluates to `null`.
    Empty,
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number literal (`1`, `-2.5e3`, `0xff`, `NaN`, `Infinity`).
    Number(f64),
    /// A string literal, unescaped.
    String(String),
    /// A context such as `github`, as written.
    NamedValue(String),
    /// `target.name`
    Property {
        /// The object.
        target: Box<Node>,
        /// The property name as written.
        name: String,
    },
    /// `target[index]`
    Index {
        /// The object or array.
        target: Box<Node>,
        /// The index expression.
        index: Box<Node>,
    },
    /// `target.*` or `target[*]`: the object filter.
    Star {
        /// The object or array.
        target: Box<Node>,
    },
    /// `!operand`
    Not(Box<Node>),
    /// `first op1 x1 op2 x2 ...`, evaluated left to right; all operators of one level
    /// (either `==`/`!=` or `<`/`<=`/`>`/`>=`).
    Compare {
        /// The leftmost operand.
        first: Box<Node>,
        /// The operators and right operands, in order.
        rest: Vec<(CompareOp, Node)>,
    },
    /// `a && b && ...` or `a || b || ...`; yields the deciding operand's value.
    Logical {
        /// `&&` or `||`.
        op: LogicalOp,
        /// Two or more operands.
        operands: Vec<Node>,
    },
    /// `name(args...)`
    Call {
        /// The function name as written (functions are matched case-insensitively).
        name: String,
        /// Where the name is.
        name_span: Span,
        /// The arguments.
        args: Vec<Node>,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A logical operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogicalOp {
    /// `&&`
    And,
    /// `||`
    Or,
}

impl Expr {
    /// The expression text this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The root of the tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Whether the expression is empty (only blanks).
    pub fn is_empty(&self) -> bool {
        matches!(self.root.kind, NodeKind::Empty)
    }

    /// Every node, parents before children, in source order.
    pub fn nodes(&self) -> Nodes<'_> {
        Nodes {
            stack: vec![&self.root],
        }
    }

    /// Every context referenced (`github`, `steps`, ...), as written, with its span.
    pub fn named_values(&self) -> impl Iterator<Item = (&str, Span)> + '_ {
        self.nodes().filter_map(|n| match &n.kind {
            NodeKind::NamedValue(name) => Some((name.as_str(), n.span)),
            _ => None,
        })
    }

    /// Every function call: name as written, number of arguments, span of the call.
    pub fn function_calls(&self) -> impl Iterator<Item = (&str, usize, Span)> + '_ {
        self.nodes().filter_map(|n| match &n.kind {
            NodeKind::Call { name, args, .. } => Some((name.as_str(), args.len(), n.span)),
            _ => None,
        })
    }

    /// Whether the expression calls one of `success()`, `failure()`, `cancelled()` or
    /// `always()` (GitHub then does not add the implicit `success() &&` to an `if:`).
    pub fn calls_status_function(&self) -> bool {
        self.function_calls().any(|(name, _, _)| {
            ["success", "failure", "cancelled", "always"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f))
        })
    }

    /// If the whole expression is a string literal, that string.
    pub fn as_string_literal(&self) -> Option<&str> {
        match &self.root.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Iterator over the nodes of an [`Expr`] (see [`Expr::nodes`]).
#[derive(Debug)]
pub struct Nodes<'a> {
    stack: Vec<&'a Node>,
}

impl<'a> Iterator for Nodes<'a> {
    type Item = &'a Node;

    fn next(&mut self) -> Option<&'a Node> {
        let node = self.stack.pop()?;
        match &node.kind {
            NodeKind::Property { target, .. } | NodeKind::Star { target } => {
                self.stack.push(target);
            }
            NodeKind::Index { target, index } => {
                self.stack.push(index);
                self.stack.push(target);
            }
            NodeKind::Not(operand) => self.stack.push(operand),
            NodeKind::Compare { first, rest } => {
                self.stack.extend(rest.iter().rev().map(|(_, n)| n));
                self.stack.push(first);
            }
            NodeKind::Logical { operands, .. } => self.stack.extend(operands.iter().rev()),
            NodeKind::Call { args, .. } => self.stack.extend(args.iter().rev()),
            NodeKind::Empty
            | NodeKind::Null
            | NodeKind::Bool(_)
            | NodeKind::Number(_)
            | NodeKind::String(_)
            | NodeKind::NamedValue(_) => {}
        }
        Some(node)
    }
}
