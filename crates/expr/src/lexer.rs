//! Splits an expression into tokens, with GitHub's rules for what ends a symbol.

use crate::error::{Error, ErrorKind, Span, Stage};
use crate::number::{self, is_js_whitespace};

/// Longest expression accepted, in UTF-16 code units (as the official parser counts).
pub const MAX_LENGTH: usize = 21_000;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Bang,
    BangEqual,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    And,
    Or,
    Star,
    Number(f64),
    String(String),
    Identifier,
    True,
    False,
    Null,
    Eof,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte range in the source.
    pub span: Span,
    /// Byte offset where the lexer's current line started (for GitHub's column numbers).
    pub line_start: usize,
}

impl Token {
    /// The token as GitHub's messages quote it.
    pub fn describe<'a>(&'a self, src: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.kind {
            TokenKind::Eof => "EOF".into(),
            TokenKind::String(s) => s.as_str().into(),
            _ => src[self.span.start..self.span.end].into(),
        }
    }
}

/// Number of UTF-16 code units in `s` (positions in GitHub's messages count these).
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|'
    ) || is_js_whitespace(c)
}

fn is_legal_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// Unescapes a quoted string's body: every `''` stands for one `'`.
fn unescape(body: &str) -> String {
    if body.contains("''") {
        body.replace("''", "'")
    } else {
        body.to_owned()
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    start: usize,
    offset: usize,
    line_start: usize,
    tokens: Vec<Token>,
}

/// Tokenizes `src`; the last token is always `Eof`.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    if src.len() > MAX_LENGTH && utf16_len(src) > MAX_LENGTH {
        return Err(Error::new(
            Stage::Lexing,
            ErrorKind::ExceededMaxLength,
            format!("Exceeded max expression length {MAX_LENGTH}"),
            None,
        ));
    }
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        start: 0,
        offset: 0,
        line_start: 0,
        tokens: Vec::with_capacity(src.len() / 3 + 2),
    };
    lx.run()?;
    Ok(lx.tokens)
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), Error> {
        while let Some(c) = self.peek_char() {
            self.start = self.offset;
            self.offset += c.len_utf8();
            match c {
                '(' => self.add(TokenKind::LeftParen),
                ')' => self.add(TokenKind::RightParen),
                '[' => self.add(TokenKind::LeftBracket),
                ']' => self.add(TokenKind::RightBracket),
                ',' => self.add(TokenKind::Comma),
                '.' => {
                    if matches!(
                        self.previous(),
                        Some(
                            TokenKind::Identifier
                                | TokenKind::RightBracket
                                | TokenKind::RightParen
                                | TokenKind::Star
                        )
                    ) {
                        self.add(TokenKind::Dot);
                    } else {
                        self.number()?;
                    }
                }
                '-' | '+' => self.number()?,
                '!' => {
                    let k = if self.eat(b'=') {
                        TokenKind::BangEqual
                    } else {
                        TokenKind::Bang
                    };
                    self.add(k);
                }
                '=' => {
                    if self.eat(b'=') {
                        self.add(TokenKind::EqualEqual);
                    } else {
                        self.identifier()?;
                    }
                }
                '<' => {
                    let k = if self.eat(b'=') {
                        TokenKind::LessEqual
                    } else {
                        TokenKind::Less
                    };
                    self.add(k);
                }
                '>' => {
                    let k = if self.eat(b'=') {
                        TokenKind::GreaterEqual
                    } else {
                        TokenKind::Greater
                    };
                    self.add(k);
                }
                '&' => {
                    if self.eat(b'&') {
                        self.add(TokenKind::And);
                    } else {
                        self.identifier()?;
                    }
                }
                '|' => {
                    if self.eat(b'|') {
                        self.add(TokenKind::Or);
                    } else {
                        self.identifier()?;
                    }
                }
                '*' => self.add(TokenKind::Star),
                ' ' | '\r' | '\t' => {}
                '\n' => self.line_start = self.offset,
                '\'' => self.string()?,
                c if c.is_ascii_digit() => self.number()?,
                _ => self.identifier()?,
            }
        }
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            span: Span::new(self.start, self.offset),
            line_start: self.line_start,
        });
        Ok(())
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.offset..].chars().next()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.bytes.get(self.offset) == Some(&b) {
            self.offset += 1;
            true
        } else {
            false
        }
    }

    fn previous(&self) -> Option<&TokenKind> {
        self.tokens.last().map(|t| &t.kind)
    }

    fn add(&mut self, kind: TokenKind) {
        self.tokens.push(Token {
            kind,
            span: Span::new(self.start, self.offset),
            line_start: self.line_start,
        });
    }

    fn error(&self, symbol: &str) -> Error {
        Error::new(
            Stage::Lexing,
            ErrorKind::UnexpectedSymbol,
            format!(
                "Unexpected symbol: '{symbol}'. Located at position {} within expression: {}",
                utf16_len(&self.src[..self.start]) + 1,
                self.src
            ),
            Some(Span::new(self.start, self.offset)),
        )
    }

    fn number(&mut self) -> Result<(), Error> {
        while let Some(c) = self.peek_char() {
            if is_boundary(c) && c != '.' {
                break;
            }
            self.offset += c.len_utf8();
        }
        let lexeme = &self.src[self.start..self.offset];
        let value = number::parse_js_number(lexeme);
        if value.is_nan() {
            return Err(self.error(lexeme));
        }
        self.add(TokenKind::Number(value));
        Ok(())
    }

    fn string(&mut self) -> Result<(), Error> {
        loop {
            match self.bytes.get(self.offset) {
                None => {
                    let rest = &self.src[self.start..];
                    self.offset = self.src.len();
                    return Err(self.error(rest));
                }
                Some(b'\'') if self.bytes.get(self.offset + 1) == Some(&b'\'') => {
                    self.offset += 2;
                }
                Some(b'\'') => break,
                Some(_) => self.offset += 1,
            }
        }
        self.offset += 1; // closing quote
        let body = &self.src[self.start + 1..self.offset - 1];
        self.add(TokenKind::String(unescape(body)));
        Ok(())
    }

    fn identifier(&mut self) -> Result<(), Error> {
        while let Some(c) = self.peek_char() {
            if is_boundary(c) {
                break;
            }
            self.offset += c.len_utf8();
        }
        let lexeme = &self.src[self.start..self.offset];
        let mut kind = TokenKind::Identifier;
        if self.previous() != Some(&TokenKind::Dot) {
            match lexeme {
                "true" => kind = TokenKind::True,
                "false" => kind = TokenKind::False,
                "null" => kind = TokenKind::Null,
                "NaN" => kind = TokenKind::Number(f64::NAN),
                "Infinity" => kind = TokenKind::Number(f64::INFINITY),
                _ => {}
            }
        }
        if !is_legal_identifier(lexeme) {
            return Err(self.error(lexeme));
        }
        self.add(kind);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token kinds as short names, or the error message.
    fn check(src: &str, expected: &str) {
        let got = match tokenize(src) {
            Ok(tokens) => tokens
                .iter()
                .map(|t| match &t.kind {
                    TokenKind::Number(n) => format!("num:{n}"),
                    TokenKind::String(s) => format!("str:{s}"),
                    TokenKind::Identifier => format!("id:{}", &src[t.span.start..t.span.end]),
                    k => format!("{k:?}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {}", e.message),
        };
        assert_eq!(got, expected, "tokenize({src:?})");
    }

    #[test]
    fn tokens() {
        check("", "Eof");
        check("a.b", "id:a Dot id:b Eof");
        check("a.*", "id:a Dot Star Eof");
        check("1 == 0x1F", "num:1 EqualEqual num:31 Eof");
        check("-1.5e3", "num:-1500 Eof");
        check(".5", "num:0.5 Eof");
        check("'it''s'", "str:it's Eof");
        check("'a''b''c'", "str:a'b'c Eof");
        check("'}}'", "str:}} Eof");
        check("a.true", "id:a Dot id:true Eof");
        check("NaN", "num:NaN Eof");
        check("-Infinity", "num:-inf Eof");
        check("x-y_z", "id:x-y_z Eof");
        check("!a != b", "Bang id:a BangEqual id:b Eof");
        check("a&&b||c", "id:a And id:b Or id:c Eof");
        check("<= >= < >", "LessEqual GreaterEqual Less Greater Eof");
    }

    #[test]
    fn bad_symbols() {
        check(
            "1 = 1",
            "error: Unexpected symbol: '='. Located at position 3 within expression: 1 = 1",
        );
        check(
            "foo.b@r",
            "error: Unexpected symbol: 'b@r'. Located at position 5 within expression: foo.b@r",
        );
        check(
            "'foo",
            "error: Unexpected symbol: ''foo'. Located at position 1 within expression: 'foo",
        );
        check(
            "-0xFF",
            "error: Unexpected symbol: '-0xFF'. Located at position 1 within expression: -0xFF",
        );
        check(
            "null.*",
            "error: Unexpected symbol: '.*'. Located at position 5 within expression: null.*",
        );
        check(
            "😊 x",
            "error: Unexpected symbol: '😊'. Located at position 1 within expression: 😊 x",
        );
        check(
            "x 😊",
            "error: Unexpected symbol: '😊'. Located at position 3 within expression: x 😊",
        );
    }

    #[test]
    fn too_long() {
        let long = "a".repeat(MAX_LENGTH + 1);
        check(&long, "error: Exceeded max expression length 21000");
        let ok = format!("'{}'", "a".repeat(MAX_LENGTH - 2));
        assert!(tokenize(&ok).is_ok());
    }
}
