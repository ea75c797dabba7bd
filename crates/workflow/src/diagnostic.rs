//! Mistakes found in a workflow file, as data: a severity, a stable code, a message, where it
//! is, and how to fix it. [`Diagnostic::render`] prints one the way a compiler does:
//!
//! ```text
//! error[unknown-key]: unknown key "runn" in a step
//!   --> .github/workflows/ci.yml:7:9
//!    |
//!  7 |       - runn: echo hi
//!    |         ^^^^ not a step key
//!    |
//!    = help: did you mean "run"?
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use crate::span::Span;

/// How bad a diagnostic is. Errors make a workflow unusable; warnings point at things GitHub
/// accepts but that are probably mistakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One mistake in a workflow file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, machine-readable kind (`unknown-key`, `needs-cycle`, ...). Never reworded.
    pub code: &'static str,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// Where it is. `None` for problems of the whole file (too large, not UTF-8).
    pub span: Option<Span>,
    /// Extra places worth showing, each with a short note.
    pub labels: Vec<(Span, String)>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        message: impl Into<String>,
        span: impl Into<Option<Span>>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: span.into().filter(Span::is_known),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn warning(
        code: &'static str,
        message: impl Into<String>,
        span: impl Into<Option<Span>>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help only when `help` is `Some`.
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Adds a note under the caret of the primary span, or a secondary span with a note.
    pub fn with_label(mut self, span: Span, note: impl Into<String>) -> Self {
        if span.is_known() {
            self.labels.push((span, note.into()));
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// 1-based line and column of the primary span, if any.
    pub fn line_column(&self) -> Option<(u32, u32)> {
        self.span.map(|s| (s.start.line, s.start.column))
    }

    /// The diagnostic as `file:line:col`, the source line and a caret, plus labels and help.
    /// `source` is the whole file text; `color` adds ANSI colors.
    pub fn render(&self, file: &str, source: &str, color: bool) -> String {
        let style = Style { color };
        let mut out = String::new();
        let (sev_color, sev) = match self.severity {
            Severity::Error => (RED, "error"),
            Severity::Warning => (YELLOW, "warning"),
        };
        let _ = writeln!(
            out,
            "{}{}",
            style.paint(sev_color, &format!("{sev}[{}]", self.code)),
            style.paint(BOLD, &format!(": {}", self.message))
        );

        let Some(span) = self.span else {
            let _ = writeln!(out, "  {} {file}", style.paint(BLUE, "-->"));
            if let Some(help) = &self.help {
                let _ = writeln!(out, "  {} help: {help}", style.paint(BLUE, "="));
            }
            return out;
        };

        // Lines to show: the primary one and those of the labels, in order, without repeats.
        let mut shown: Vec<(Span, Option<&str>, bool)> = Vec::new();
        let primary_note = self
            .labels
            .iter()
            .find(|(s, _)| *s == span)
            .map(|(_, n)| n.as_str());
        shown.push((span, primary_note, true));
        for (s, note) in &self.labels {
            if *s != span {
                shown.push((*s, Some(note.as_str()), false));
            }
        }
        shown.sort_by_key(|(s, _, _)| (s.start.line, s.start.column));
        let max_line = shown
            .iter()
            .map(|(s, _, _)| s.start.line)
            .max()
            .unwrap_or(1);
        let width = max_line.to_string().len().max(2);
        let gutter = " ".repeat(width);

        let _ = writeln!(
            out,
            "{gutter}{} {file}:{}:{}",
            style.paint(BLUE, "-->"),
            span.start.line,
            span.start.column
        );
        let _ = writeln!(out, "{gutter} {}", style.paint(BLUE, "|"));
        let lines: Vec<&str> = source.split('\n').collect();
        let mut last_line = 0;
        for (s, note, primary) in shown {
            let line_no = s.start.line;
            let Some(text) = lines.get(line_no as usize - 1) else {
                continue;
            };
            let text = text.strip_suffix('\r').unwrap_or(text);
            if line_no != last_line {
                if last_line != 0 && line_no > last_line + 1 {
                    let _ = writeln!(out, "{}", style.paint(BLUE, "..."));
                }
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    style.paint(BLUE, &format!("{line_no:>width$}")),
                    style.paint(BLUE, "|"),
                    expand_tabs(text)
                );
                last_line = line_no;
            }
            let (pad, len) = caret_columns(text, s);
            let marker = if primary { "^" } else { "-" };
            let mut underline = format!("{}{}", " ".repeat(pad), marker.repeat(len));
            if let Some(note) = note {
                underline.push(' ');
                underline.push_str(note);
            }
            let _ = writeln!(
                out,
                "{gutter} {} {}",
                style.paint(BLUE, "|"),
                style.paint(if primary { sev_color } else { BLUE }, &underline)
            );
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{gutter} {}", style.paint(BLUE, "|"));
            let _ = writeln!(out, "{gutter} {} help: {help}", style.paint(BLUE, "="));
        }
        out
    }

    /// The JSON form used by `gantry validate --json`.
    pub fn to_json(&self, file: &str) -> serde_json::Value {
        let (line, column, end_line, end_column) = match self.span {
            Some(s) => (
                Some(s.start.line),
                Some(s.start.column),
                Some(s.end.line),
                Some(s.end.column),
            ),
            None => (None, None, None, None),
        };
        serde_json::json!({
            "code": self.code,
            "severity": self.severity.as_str(),
            "message": self.message,
            "file": file,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "help": self.help,
        })
    }
}

/// Renders every diagnostic of a file, in order, separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], file: &str, source: &str, color: bool) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(file, source, color))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the caret starts (in display columns) and how many carets to draw for `span` on
/// `line` (the text of the span's first line). Multi-line spans are underlined to the end of
/// the first line.
fn caret_columns(line: &str, span: Span) -> (usize, usize) {
    let start_col = span.start.column.max(1) as usize - 1;
    let chars: Vec<char> = line.chars().collect();
    let display = |n: usize| -> usize {
        chars
            .iter()
            .take(n)
            .map(|c| if *c == '\t' { 4 } else { 1 })
            .sum()
    };
    let pad = display(start_col.min(chars.len())) + start_col.saturating_sub(chars.len());
    let end_col = if span.end.line == span.start.line && span.end.column > span.start.column {
        (span.end.column as usize - 1).min(chars.len().max(start_col + 1))
    } else if span.end.line > span.start.line {
        chars.len()
    } else {
        start_col + 1
    };
    let len = display(end_col.min(chars.len())).saturating_sub(pad).max(1);
    (pad, len)
}

fn expand_tabs(text: &str) -> String {
    text.replace('\t', "    ")
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("{code}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo
/// (case differences count as small). Used for "did you mean" hints.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    let mut seen: Vec<&'a str> = Vec::new();
    for candidate in candidates {
        seen.push(candidate);
        if candidate == name {
            continue;
        }
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            edit_distance(&lower, &candidate.to_lowercase())
        };
        let limit = match candidate.chars().count().max(name.chars().count()) {
            0..=3 => 1,
            4..=8 => 2,
            _ => 3,
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    // A truncated or extended name (`timeout` for `timeout-minutes`).
    if best.is_none() && lower.chars().count() >= 4 {
        best = candidates_prefix(&lower, &seen).map(|c| (0, c));
    }
    best.map(|(_, c)| c)
}

fn candidates_prefix<'a>(lower: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let mut found = candidates.iter().filter(|c| {
        let c = c.to_lowercase();
        c.starts_with(lower) || lower.starts_with(&c)
    });
    let first = found.next()?;
    // Only when it is unambiguous.
    found.next().is_none().then_some(*first)
}

/// `did you mean "x"?` for the closest candidate, if any.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|c| format!("did you mean \"{c}\"?"))
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    fn span(line: u32, col: u32, end_col: u32) -> Span {
        Span::new(
            Pos {
                line,
                column: col,
                offset: 0,
            },
            Pos {
                line,
                column: end_col,
                offset: 0,
            },
        )
    }

    #[test]
    fn edit_distance_counts_edits() {
        let check = |a: &str, b: &str, d: usize| assert_eq!(edit_distance(a, b), d, "{a} {b}");
        check("run", "run", 0);
        check("runn", "run", 1);
        check("tset", "test", 1);
        check("", "abc", 3);
        check("kitten", "sitting", 3);
    }

    #[test]
    fn suggest_picks_close_names_only() {
        assert_eq!(suggest("runn", ["run", "uses", "with"]), Some("run"));
        assert_eq!(suggest("RUN", ["run", "uses"]), Some("run"));
        assert_eq!(suggest("deploy", ["run", "uses"]), None);
        assert_eq!(suggest("tset", ["test", "build"]), Some("test"));
        assert_eq!(
            suggest("timeout", ["timeout-minutes", "name"]),
            Some("timeout-minutes")
        );
        assert_eq!(suggest("cont", ["continue-on-error", "container"]), None);
    }

    #[test]
    fn render_shows_line_caret_and_help() {
        let source = "on: push\njobs:\n  a:\n    runn: x\n";
        let d = Diagnostic::error("unknown-key", "unknown key \"runn\"", span(4, 5, 9))
            .with_label(span(4, 5, 9), "not a job key")
            .with_help("did you mean \"run\"?");
        let text = d.render("ci.yml", source, false);
        assert_eq!(
            text,
            "error[unknown-key]: unknown key \"runn\"\n  --> ci.yml:4:5\n   |\n 4 |     runn: x\n   |     ^^^^ not a job key\n   |\n   = help: did you mean \"run\"?\n"
        );
    }

    #[test]
    fn render_with_color_paints_severity_and_caret() {
        let source = "a: 1\n";
        let d = Diagnostic::warning("x", "careful", span(1, 1, 2)).with_help("h");
        let colored = d.render("f.yml", source, true);
        assert!(
            colored.contains("\x1b[1;33mwarning[x]\x1b[0m"),
            "{colored:?}"
        );
        assert!(colored.contains("\x1b[1;33m^\x1b[0m"), "{colored:?}");
        let plain = d.render("f.yml", source, false);
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn secondary_labels_on_other_lines_are_shown_in_order() {
        let source = "one\ntwo\nthree\nfour\nfive\n";
        let d = Diagnostic::error("c", "m", span(4, 1, 5))
            .with_label(span(4, 1, 5), "here")
            .with_label(span(1, 1, 4), "first");
        let text = d.render("f.yml", source, false);
        assert_eq!(
            text,
            "error[c]: m\n  --> f.yml:4:1\n   |\n 1 | one\n   | --- first\n...\n 4 | four\n   | ^^^^ here\n"
        );
    }

    #[test]
    fn render_without_span_names_the_file() {
        let d = Diagnostic::error("file-too-large", "too large", None);
        assert_eq!(
            d.render("a.yml", "", false),
            "error[file-too-large]: too large\n  --> a.yml\n"
        );
    }

    #[test]
    fn json_form_has_position_fields() {
        let d = Diagnostic::warning("x", "m", span(2, 3, 5));
        let j = d.to_json("f.yml");
        assert_eq!(j["line"], 2);
        assert_eq!(j["column"], 3);
        assert_eq!(j["end_column"], 5);
        assert_eq!(j["severity"], "warning");
        assert!(j["help"].is_null());
    }
}
