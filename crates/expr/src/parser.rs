//! A Pratt parser with GitHub's precedence, nesting limit and error messages.
//!
//! Binding powers, loosest first: `||` (1), `&&` (2), `==` `!=` (3),
//! `<` `<=` `>` `>=` (4), then prefix `!`, then postfix `.name` `.*` `[i]` `[*]`.
//! Operators of one level are collected into one flat node. Nesting is counted at the
//! same places as GitHub's parser counts it, so the same expressions hit the limit.

use crate::error::{Error, ErrorKind, Span, Stage};
use crate::expr::{CompareOp, Expr, LogicalOp, Node, NodeKind};
use crate::lexer::{Token, TokenKind, tokenize, utf16_len};
use crate::value::eq_folded;

/// Deepest nesting accepted (as the official parser counts it).
pub const MAX_DEPTH: usize = 50;

/// Name and arity of a function an expression may call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionSig {
    /// The name (matched case-insensitively).
    pub name: String,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments.
    pub max_args: usize,
}

impl FunctionSig {
    /// A function `name` taking `min_args..=max_args` arguments.
    pub fn new(name: impl Into<String>, min_args: usize, max_args: usize) -> FunctionSig {
        FunctionSig {
            name: name.into(),
            min_args,
            max_args,
        }
    }

    /// `hashFiles(pattern, ...)`: 1 to 255 arguments.
    pub fn hash_files() -> FunctionSig {
        FunctionSig::new("hashFiles", 1, 255)
    }

    /// `success()`, `failure()`, `cancelled()`, `always()` with no arguments (step `if:`).
    pub fn status_functions() -> Vec<FunctionSig> {
        ["success", "failure", "cancelled", "always"]
            .into_iter()
            .map(|n| FunctionSig::new(n, 0, 0))
            .collect()
    }

    /// The status functions as a job-level `if:` allows them: `success(...)` and
    /// `failure(...)` take any number of job names, `cancelled()`/`always()` none.
    pub fn job_status_functions() -> Vec<FunctionSig> {
        vec![
            FunctionSig::new("success", 0, usize::MAX),
            FunctionSig::new("failure", 0, usize::MAX),
            FunctionSig::new("cancelled", 0, 0),
            FunctionSig::new("always", 0, 0),
        ]
    }
}

/// The functions every expression may call: `contains`, `startsWith`, `endsWith`,
/// `format`, `join`, `toJSON`, `fromJSON` and `case`.
pub const BUILTIN_FUNCTIONS: &[(&str, usize, usize)] = &[
    ("contains", 2, 2),
    ("startsWith", 2, 2),
    ("endsWith", 2, 2),
    ("format", 1, 255),
    ("join", 1, 2),
    ("toJSON", 1, 1),
    ("fromJSON", 1, 1),
    ("case", 3, usize::MAX),
];

/// What a parse accepts beyond the built-in language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// `None`: any named value (context) is accepted. `Some(list)`: only these
    /// (case-insensitive); any other is GitHub's `Unrecognized named-value` error.
    pub named_values: Option<Vec<String>>,
    /// Functions allowed besides the built-in ones (e.g. `hashFiles`, status functions).
    pub functions: Vec<FunctionSig>,
}

impl ParseOptions {
    /// Any named value, built-in functions only.
    pub fn new() -> ParseOptions {
        ParseOptions::default()
    }

    /// What a running job accepts: any named value, the built-ins, `hashFiles` (1..255
    /// arguments) and the status functions (no arguments).
    pub fn runtime() -> ParseOptions {
        let mut functions = vec![FunctionSig::hash_files()];
        functions.extend(FunctionSig::status_functions());
        ParseOptions {
            named_values: None,
            functions,
        }
    }

    /// Only these named values are accepted.
    pub fn with_named_values<I, S>(mut self, names: I) -> ParseOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named_values = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Also accept this function (replacing an earlier signature of the same name).
    pub fn with_function(mut self, sig: FunctionSig) -> ParseOptions {
        self.functions.retain(|f| !eq_folded(&f.name, &sig.name));
        self.functions.push(sig);
        self
    }

    fn allows_named_value(&self, name: &str) -> bool {
        self.named_values
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| eq_folded(n, name)))
    }

    fn function(&self, name: &str) -> Option<(usize, usize)> {
        BUILTIN_FUNCTIONS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, min, max)| (min, max))
            .or_else(|| {
                self.functions
                    .iter()
                    .find(|f| eq_folded(&f.name, name))
                    .map(|f| (f.min_args, f.max_args))
            })
    }
}

/// Parses an expression (the text inside `${{ }}`).
pub fn parse(src: &str, opts: &ParseOptions) -> Result<Expr, Error> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        opts,
    };
    let root = if p.at_end() {
        Node {
            kind: NodeKind::Empty,
            span: Span::new(0, src.len()),
        }
    } else {
        let root = p.expression()?;
        if !p.at_end() {
            return Err(p.error(ErrorKind::UnexpectedSymbol, p.pos));
        }
        root
    };
    Ok(Expr {
        source: src.to_owned(),
        root,
    })
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    opts: &'a ParseOptions,
}

type PResult = Result<Node, Error>;

fn boxed(n: Node) -> Box<Node> {
    Box::new(n)
}

impl Parser<'_> {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), TokenKind::Eof)
    }

    fn check(&self, kind: &TokenKind) -> bool {
        self.peek() == kind
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if !self.at_end() && self.check(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn span_of(&self, index: usize) -> Span {
        self.tokens[index].span
    }

    fn prev_span(&self) -> Span {
        self.span_of(self.pos.saturating_sub(1))
    }

    fn error(&self, kind: ErrorKind, token_index: usize) -> Error {
        let token = &self.tokens[token_index];
        let description = match kind {
            ErrorKind::UnexpectedEndOfExpression => "Unexpected end of expression".to_owned(),
            ErrorKind::UnrecognizedNamedValue => "Unrecognized named-value".to_owned(),
            ErrorKind::UnrecognizedFunction => "Unrecognized function".to_owned(),
            ErrorKind::TooFewParameters => "Too few parameters supplied".to_owned(),
            ErrorKind::TooManyParameters => "Too many parameters supplied".to_owned(),
            ErrorKind::EvenParameters => {
                "Even number of parameters supplied, requires an odd number of parameters"
                    .to_owned()
            }
            ErrorKind::ExceededMaxDepth => format!("Exceeded max expression depth {MAX_DEPTH}"),
            _ => "Unexpected symbol".to_owned(),
        };
        // GitHub counts the position from the start of the line (UTF-16 units, 1-based).
        let start = token.span.start;
        let column = if token.line_start <= start {
            utf16_len(&self.src[token.line_start..start]).cast_signed()
        } else {
            -utf16_len(&self.src[start..token.line_start]).cast_signed()
        };
        Error::new(
            Stage::Parsing,
            kind,
            format!(
                "{description}: '{}'. Located at position {} within expression: {}",
                token.describe(self.src),
                column + 1,
                self.src
            ),
            Some(token.span),
        )
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(ErrorKind::ExceededMaxDepth, self.pos));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A full expression (top level, parentheses, arguments, indexes): one level deeper.
    fn expression(&mut self) -> PResult {
        self.enter()?;
        let node = self.binary(0)?;
        self.leave();
        Ok(node)
    }

    /// Operators binding at least as tightly as `min_bp`.
    fn binary(&mut self, min_bp: u8) -> PResult {
        let mut lhs = self.prefix()?;
        loop {
            let bp = match self.peek() {
                TokenKind::Or => 1,
                TokenKind::And => 2,
                TokenKind::EqualEqual | TokenKind::BangEqual => 3,
                TokenKind::Less
                | TokenKind::LessEqual
                | TokenKind::Greater
                | TokenKind::GreaterEqual => 4,
                _ => break,
            };
            if bp < min_bp {
                break;
            }
            lhs = match bp {
                1 => self.logical(lhs, LogicalOp::Or, &TokenKind::Or, 2)?,
                2 => self.logical(lhs, LogicalOp::And, &TokenKind::And, 3)?,
                _ => self.compare_chain(lhs, bp)?,
            };
        }
        Ok(lhs)
    }

    fn logical(
        &mut self,
        first: Node,
        op: LogicalOp,
        token: &TokenKind,
        operand_bp: u8,
    ) -> PResult {
        self.enter()?;
        let start = first.span;
        let mut operands = vec![first];
        while self.eat(token) {
            operands.push(self.binary(operand_bp)?);
        }
        self.leave();
        let span = start.to(operands.last().map_or(start, |n| n.span));
        Ok(Node {
            kind: NodeKind::Logical { op, operands },
            span,
        })
    }

    fn compare_chain(&mut self, first: Node, bp: u8) -> PResult {
        let start = first.span;
        let mut rest = Vec::new();
        loop {
            let op = match (bp, self.peek()) {
                (3, TokenKind::EqualEqual) => CompareOp::Eq,
                (3, TokenKind::BangEqual) => CompareOp::Ne,
                (4, TokenKind::Less) => CompareOp::Lt,
                (4, TokenKind::LessEqual) => CompareOp::Le,
                (4, TokenKind::Greater) => CompareOp::Gt,
                (4, TokenKind::GreaterEqual) => CompareOp::Ge,
                _ => break,
            };
            self.pos += 1;
            let rhs = if bp == 3 {
                self.binary(4)?
            } else {
                self.prefix()?
            };
            rest.push((op, rhs));
        }
        let span = start.to(rest.last().map_or(start, |(_, n)| n.span));
        Ok(Node {
            kind: NodeKind::Compare {
                first: boxed(first),
                rest,
            },
            span,
        })
    }

    /// `!x`, or an operand with its postfix accesses.
    fn prefix(&mut self) -> PResult {
        if self.eat(&TokenKind::Bang) {
            let bang = self.prev_span();
            self.enter()?;
            let operand = self.prefix()?;
            self.leave();
            let span = bang.to(operand.span);
            return Ok(Node {
                kind: NodeKind::Not(boxed(operand)),
                span,
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> PResult {
        let (mut node, accepts_postfix) = self.operand()?;
        if !accepts_postfix {
            return Ok(node);
        }
        let mut levels = 0;
        let result = self.postfix_chain(&mut node, &mut levels);
        self.depth -= levels;
        result.map(|()| node)
    }

    fn postfix_chain(&mut self, node: &mut Node, levels: &mut usize) -> Result<(), Error> {
        loop {
            if self.eat(&TokenKind::LeftBracket) {
                let index = if self.eat(&TokenKind::Star) {
                    None
                } else {
                    Some(self.expression()?)
                };
                if !self.eat(&TokenKind::RightBracket) {
                    return Err(self.error(ErrorKind::UnexpectedSymbol, self.pos));
                }
                let end = self.prev_span();
                self.enter()?;
                *levels += 1;
                let target = boxed(std::mem::replace(node, placeholder()));
                let span = target.span.to(end);
                *node = Node {
                    kind: match index {
                        Some(index) => NodeKind::Index {
                            target,
                            index: boxed(index),
                        },
                        None => NodeKind::Star { target },
                    },
                    span,
                };
            } else if self.eat(&TokenKind::Dot) {
                self.enter()?;
                *levels += 1;
                let kind = self.peek().clone();
                let target = boxed(std::mem::replace(node, placeholder()));
                let tok_span = self.span_of(self.pos);
                let span = target.span.to(tok_span);
                *node = match kind {
                    TokenKind::Identifier => Node {
                        kind: NodeKind::Property {
                            target,
                            name: self.src[tok_span.start..tok_span.end].to_owned(),
                        },
                        span,
                    },
                    TokenKind::Star => Node {
                        kind: NodeKind::Star { target },
                        span,
                    },
                    _ => return Err(self.error(ErrorKind::UnexpectedSymbol, self.pos)),
                };
                self.pos += 1;
            } else {
                return Ok(());
            }
        }
    }

    /// A literal, a parenthesised expression, a named value or a call. The flag says
    /// whether postfix accesses may follow (GitHub allows them only after a
    /// parenthesised expression, a named value or a call).
    fn operand(&mut self) -> Result<(Node, bool), Error> {
        let index = self.pos;
        let span = self.span_of(index);
        let literal = |kind| Ok((Node { kind, span }, false));
        match self.peek().clone() {
            TokenKind::Identifier => self.named_value_or_call(),
            TokenKind::True => {
                self.pos += 1;
                literal(NodeKind::Bool(true))
            }
            TokenKind::False => {
                self.pos += 1;
                literal(NodeKind::Bool(false))
            }
            TokenKind::Null => {
                self.pos += 1;
                literal(NodeKind::Null)
            }
            TokenKind::Number(n) => {
                self.pos += 1;
                literal(NodeKind::Number(n))
            }
            TokenKind::String(s) => {
                self.pos += 1;
                literal(NodeKind::String(s))
            }
            TokenKind::LeftParen => {
                self.pos += 1;
                let mut inner = self.expression()?;
                if self.at_end() {
                    return Err(self.error(ErrorKind::UnexpectedEndOfExpression, self.pos - 1));
                }
                if !self.eat(&TokenKind::RightParen) {
                    return Err(self.error(ErrorKind::UnexpectedSymbol, self.pos));
                }
                inner.span = span.to(self.prev_span());
                Ok((inner, true))
            }
            TokenKind::Eof => Err(self.error(
                ErrorKind::UnexpectedEndOfExpression,
                self.pos.saturating_sub(1),
            )),
            _ => Err(self.error(ErrorKind::UnexpectedSymbol, self.pos)),
        }
    }

    fn named_value_or_call(&mut self) -> Result<(Node, bool), Error> {
        let ident = self.pos;
        let ident_span = self.span_of(ident);
        let name = self.src[ident_span.start..ident_span.end].to_owned();
        self.pos += 1;
        if !self.eat(&TokenKind::LeftParen) {
            if !self.opts.allows_named_value(&name) {
                return Err(self.error(ErrorKind::UnrecognizedNamedValue, ident));
            }
            return Ok((
                Node {
                    kind: NodeKind::NamedValue(name),
                    span: ident_span,
                },
                true,
            ));
        }
        let mut args = Vec::new();
        while !self.eat(&TokenKind::RightParen) {
            args.push(self.expression()?);
            if !self.check(&TokenKind::RightParen) && !self.eat(&TokenKind::Comma) {
                return Err(self.error(ErrorKind::UnexpectedSymbol, self.pos));
            }
        }
        let Some((min, max)) = self.opts.function(&name) else {
            return Err(self.error(ErrorKind::UnrecognizedFunction, ident));
        };
        if args.len() < min {
            return Err(self.error(ErrorKind::TooFewParameters, ident));
        }
        if args.len() > max {
            return Err(self.error(ErrorKind::TooManyParameters, ident));
        }
        if name.eq_ignore_ascii_case("case") && args.len() % 2 == 0 {
            return Err(self.error(ErrorKind::EvenParameters, ident));
        }
        let span = ident_span.to(self.prev_span());
        Ok((
            Node {
                kind: NodeKind::Call {
                    name,
                    name_span: ident_span,
                    args,
                },
                span,
            },
            true,
        ))
    }
}

fn placeholder() -> Node {
    Node {
        kind: NodeKind::Empty,
        span: Span::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as an S-expression, or the error message.
    fn show(n: &Node) -> String {
        let list = |head: &str, items: Vec<String>| format!("({head} {})", items.join(" "));
        match &n.kind {
            NodeKind::Empty => "empty".to_owned(),
            NodeKind::Null => "null".to_owned(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Number(x) => x.to_string(),
            NodeKind::String(s) => format!("'{s}'"),
            NodeKind::NamedValue(name) => name.clone(),
            NodeKind::Property { target, name } => list(".", vec![show(target), name.clone()]),
            NodeKind::Index { target, index } => list("[]", vec![show(target), show(index)]),
            NodeKind::Star { target } => list("*", vec![show(target)]),
            NodeKind::Not(x) => list("!", vec![show(x)]),
            NodeKind::Compare { first, rest } => {
                let mut s = show(first);
                for (op, rhs) in rest {
                    s = format!("({} {s} {})", op.as_str(), show(rhs));
                }
                s
            }
            NodeKind::Logical { op, operands } => list(
                if *op == LogicalOp::And { "&&" } else { "||" },
                operands.iter().map(show).collect(),
            ),
            NodeKind::Call { name, args, .. } => {
                list(&format!("{name}()"), args.iter().map(show).collect())
            }
        }
    }

    fn check(src: &str, expected: &str) {
        let got = match parse(src, &ParseOptions::runtime()) {
            Ok(e) => show(&e.root),
            Err(e) => format!("{}: {}", e.stage, e.message),
        };
        assert_eq!(got, expected, "parse({src:?})");
    }

    #[test]
    fn precedence_and_associativity() {
        check("", "empty");
        check("  ", "empty");
        check("a || b && c", "(|| a (&& b c))");
        check("a && b || c && d", "(|| (&& a b) (&& c d))");
        check("a || b || c", "(|| a b c)");
        check("a == b != c", "(!= (== a b) c)");
        check("a < b == c >= d", "(== (< a b) (>= c d))");
        check("!a == b", "(== (! a) b)");
        check("!a.b[0]", "(! ([] (. a b) 0))");
        check("!!a", "(! (! a))");
        check("(a || b) && c", "(&& (|| a b) c)");
        check("a.*.b", "(. (* a) b)");
        check("a[*][1]", "([] (* a) 1)");
        check("fromJSON('[1]')[0]", "([] (fromJSON() '[1]') 0)");
        check("(a).b", "(. a b)");
        check("format('{0}', 1, 'x''y')", "(format() '{0}' 1 'x'y')");
        check("success()", "(success() )");
        check("a['b'].c", "(. ([] a 'b') c)");
    }

    #[test]
    fn syntax_errors_use_githubs_words() {
        check(
            "1 >> 2",
            "parsing: Unexpected symbol: '>'. Located at position 4 within expression: 1 >> 2",
        );
        check(
            "1 <",
            "parsing: Unexpected end of expression: '<'. Located at position 3 within expression: 1 <",
        );
        check(
            "'a'[0]",
            "parsing: Unexpected symbol: '['. Located at position 4 within expression: 'a'[0]",
        );
        check(
            "obj.",
            "parsing: Unexpected symbol: 'EOF'. Located at position 4 within expression: obj.",
        );
        check(
            "a\n && b(",
            "parsing: Unexpected end of expression: '('. Located at position 6 within expression: a\n && b(",
        );
        check(
            "toLower('A')",
            "parsing: Unrecognized function: 'toLower'. Located at position 1 within expression: toLower('A')",
        );
        check(
            "case(true, 1, false, 2)",
            "parsing: Even number of parameters supplied, requires an odd number of parameters: 'case'. Located at position 1 within expression: case(true, 1, false, 2)",
        );
        check(
            "join()",
            "parsing: Too few parameters supplied: 'join'. Located at position 1 within expression: join()",
        );
    }

    #[test]
    fn nesting_limit_counts_like_github() {
        let ok = format!("{}1{}", "(".repeat(49), ")".repeat(49));
        assert!(parse(&ok, &ParseOptions::new()).is_ok());
        let too_deep = format!("{}1{}", "(".repeat(50), ")".repeat(50));
        let err = parse(&too_deep, &ParseOptions::new()).expect_err("51 levels");
        assert_eq!(err.kind, ErrorKind::ExceededMaxDepth);
        assert!(
            err.message
                .starts_with("Exceeded max expression depth 50: '1'.")
        );
        assert!(parse(&format!("{}true", "!".repeat(49)), &ParseOptions::new()).is_ok());
        assert!(parse(&format!("{}true", "!".repeat(50)), &ParseOptions::new()).is_err());
    }

    #[test]
    fn spans_point_at_the_source() {
        let src = "github.event.pull_request.head.ref == 'x'";
        let e = parse(src, &ParseOptions::new()).expect("valid");
        let Some((name, span)) = e.named_values().next() else {
            panic!("a named value is listed");
        };
        assert_eq!((name, &src[span.start..span.end]), ("github", "github"));
        assert_eq!(e.root.span, Span::new(0, src.len()));
    }
}
