//! Errors of the three stages: lexing, parsing and evaluation.

use std::fmt;

/// A byte range in the source text an error or a node refers to.
///
/// For an [`Expr`](crate::Expr) the range is relative to the expression source; for a
/// [`Template`](crate::Template) it is relative to the template string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (bytes).
    pub const fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The same range moved `offset` bytes to the right.
    pub const fn shifted(self, offset: usize) -> Span {
        Span {
            start: self.start + offset,
            end: self.end + offset,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

/// Which stage produced an error (the same three stages as GitHub's evaluator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Splitting the text into tokens (bad symbol, unterminated string, too long).
    Lexing,
    /// Building the tree (unexpected token, unknown function or named value, arity, depth).
    Parsing,
    /// Computing the value (bad `format` string, invalid JSON, `case` predicate, hashFiles).
    Evaluation,
}

impl Stage {
    /// The lower-case name used by the oracles: `lexing`, `parsing`, `evaluation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Lexing => "lexing",
            Stage::Parsing => "parsing",
            Stage::Evaluation => "evaluation",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, one variant per documented case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A symbol the language does not have, or a token where it cannot stand.
    UnexpectedSymbol,
    /// The expression stops where an operand or `)` was required.
    UnexpectedEndOfExpression,
    /// A named value (context) that is not allowed here.
    UnrecognizedNamedValue,
    /// A function that does not exist or is not allowed here.
    UnrecognizedFunction,
    /// Fewer arguments than the function accepts.
    TooFewParameters,
    /// More arguments than the function accepts.
    TooManyParameters,
    /// `case()` needs an odd number of arguments.
    EvenParameters,
    /// Nesting deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    ExceededMaxDepth,
    /// Longer than [`MAX_LENGTH`](crate::MAX_LENGTH) characters.
    ExceededMaxLength,
    /// A template has `${{` without a closing `}}`.
    UnclosedExpression,
    /// A template has `${{ }}` with nothing inside.
    EmptyExpression,
    /// A function failed while evaluating (format string, JSON, `case`, hashFiles...).
    Function,
}

/// An error from lexing, parsing or evaluating an expression or a template.
///
/// `message` is the text GitHub shows, e.g.
/// `Unexpected symbol: '>'. Located at position 4 within expression: 1 >> 2`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The stage that failed.
    pub stage: Stage,
    /// What went wrong.
    pub kind: ErrorKind,
    /// The full message, worded as GitHub's evaluator words it.
    pub message: String,
    /// Where in the source (bytes), when one place is to blame.
    pub span: Option<Span>,
}

impl Error {
    pub(crate) fn new(stage: Stage, kind: ErrorKind, message: String, span: Option<Span>) -> Error {
        Error {
            stage,
            kind,
            message,
            span,
        }
    }

    /// The same error with its span moved `offset` bytes to the right (used by templates).
    pub fn shifted(mut self, offset: usize) -> Error {
        self.span = self.span.map(|s| s.shifted(offset));
        self
    }
}
