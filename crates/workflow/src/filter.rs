//! GitHub filter patterns: the values of `branches`, `branches-ignore`, `tags`, `tags-ignore`,
//! `paths`, `paths-ignore` and `workflow_run.workflows`, translated to anchored regular
//! expressions with GitHub's semantics (its "filter pattern cheat sheet"), which are **not**
//! shell globs:
//!
//! | pattern | meaning |
//! |---|---|
//! | `*` | zero or more characters, but not `/` |
//! | `**` | zero or more of any character, `/` included (also inside a name: `**.js`) |
//! | `**/` at the start or after `/` | zero or more whole directories: `**/a` matches `a` and `x/y/a` |
//! | `?` | zero or one of the preceding character (or class, or escaped character) |
//! | `+` | one or more of the preceding character |
//! | `[CB]`, `[1-2]`, `[a-zA-Z0-9]` | one letter or digit listed or in a range (`a-z`, `A-Z`, `0-9` only) |
//! | `!` at the start | negates the pattern |
//! | `\` | escapes the next character (`\*`, `\!`, `\\`) |
//!
//! Everything else matches itself, and a pattern must match the whole value (paths are
//! relative to the repository root, branch and tag names are given without `refs/heads/` or
//! `refs/tags/`). Matching is case-sensitive.
//!
//! A [`PatternList`] is evaluated in order: the **last** pattern that matches a value decides
//! (a positive pattern includes it, a `!` pattern excludes it); when no pattern matches, the
//! value is not matched. Compile a list once with [`PatternList::new`] and reuse it.
//!
//! This module only matches strings. Which list applies to which event (and the
//! "all changed paths" / "at least one changed path" rules) lives in `trigger`.
//!
//! ```
//! use gantry_workflow::filter::PatternList;
//!
//! let list = PatternList::new(&["releases/**", "!releases/**-alpha"]).expect("valid patterns");
//! assert!(list.matches("releases/10"));
//! assert!(!list.matches("releases/beta/3-alpha"));
//! assert!(!list.matches("main"));
//! ```

use std::fmt;

use regex::Regex;

/// A mistake in one filter pattern: what is wrong and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern '{pattern}' at column {}: {kind}", self.column())]
pub struct FilterError {
    /// The whole pattern as written (with its leading `!`, if any).
    pub pattern: String,
    /// Byte offset of the offending character in `pattern`.
    pub offset: usize,
    pub kind: FilterErrorKind,
}

impl FilterError {
    /// 1-based column (in characters) of the offending character within the pattern.
    pub fn column(&self) -> usize {
        let end = self.offset.min(self.pattern.len());
        self.pattern
            .get(..end)
            .map_or(end, |prefix| prefix.chars().count())
            + 1
    }
}

/// What is wrong with a filter pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterErrorKind {
    #[error("the pattern is empty")]
    Empty,
    #[error("'!' must be followed by a pattern to exclude")]
    OnlyNegation,
    #[error(
        "'{0}' repeats the preceding character, but there is none; write '\\{0}' to match a literal '{0}'"
    )]
    NothingToRepeat(char),
    #[error("'\\' at the end escapes nothing; write '\\\\' to match a backslash")]
    TrailingBackslash,
    #[error("'[' is never closed by ']'")]
    UnclosedBracket,
    #[error("'[]' is empty; list at least one letter or digit")]
    EmptyBrackets,
    #[error("'{0}' is not allowed in '[]': only letters, digits and the ranges a-z, A-Z, 0-9")]
    InvalidBracketChar(char),
    #[error("'{0}-{1}' is not a valid range: ranges go upwards within a-z, A-Z or 0-9")]
    InvalidRange(char, char),
    #[error("the pattern is too large to compile")]
    TooLarge,
}

/// One compiled filter pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The pattern started with `!`: a value it matches is excluded.
    pub negated: bool,
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Whether `value` matches the pattern's body. The negation is **not** applied here:
    /// `!docs/**` "matches" `docs/a.md`; [`PatternList::matches`] gives the negation its effect.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// The pattern as written, with its leading `!` if any.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The anchored regular expression the pattern was translated to.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Parses and compiles one filter pattern.
pub fn parse_pattern(pattern: &str) -> Result<Pattern, FilterError> {
    let error = |offset, kind| FilterError {
        pattern: pattern.to_owned(),
        offset,
        kind,
    };
    if pattern.is_empty() {
        return Err(error(0, FilterErrorKind::Empty));
    }
    let (negated, body, body_offset) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest, 1),
        None => (false, pattern, 0),
    };
    if body.is_empty() {
        return Err(error(0, FilterErrorKind::OnlyNegation));
    }
    let translated = translate(body).map_err(|(offset, kind)| error(body_offset + offset, kind))?;
    let regex = Regex::new(&format!(r"\A(?:{translated})\z"))
        .map_err(|_| error(0, FilterErrorKind::TooLarge))?;
    Ok(Pattern {
        negated,
        source: pattern.to_owned(),
        regex,
    })
}

/// Translates a pattern body (without its `!`) to a regular expression (unanchored).
/// Errors carry a byte offset into `body`.
fn translate(body: &str) -> Result<String, (usize, FilterErrorKind)> {
    // Each element is one "atom" so that `?` and `+` can apply to the preceding one.
    let mut atoms: Vec<String> = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '*' => {
                if chars.next_if(|&(_, c)| c == '*').is_some() {
                    let at_segment_start = at == 0 || body[..at].ends_with('/');
                    if at_segment_start && chars.next_if(|&(_, c)| c == '/').is_some() {
                        // `**/`: any number of whole directories, including none.
                        atoms.push("(?:.*/)?".to_owned());
                    } else {
                        atoms.push(".*".to_owned());
                    }
                } else {
                    atoms.push("[^/]*".to_owned());
                }
            }
            '?' | '+' => {
                let Some(last) = atoms.last_mut() else {
                    return Err((at, FilterErrorKind::NothingToRepeat(c)));
                };
                *last = format!("(?:{last}){c}");
            }
            '[' => atoms.push(translate_brackets(at, &mut chars)?),
            '\\' => match chars.next() {
                Some((_, escaped)) => atoms.push(escape_char(escaped)),
                None => return Err((at, FilterErrorKind::TrailingBackslash)),
            },
            _ => atoms.push(escape_char(c)),
        }
    }
    Ok(atoms.concat())
}

/// Translates `[...]` (the `[` at byte `open` has been consumed) to a regex class.
fn translate_brackets(
    open: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, (usize, FilterErrorKind)> {
    let mut class = String::from("[");
    let mut empty = true;
    loop {
        let Some((at, c)) = chars.next() else {
            return Err((open, FilterErrorKind::UnclosedBracket));
        };
        match c {
            ']' if empty => return Err((open, FilterErrorKind::EmptyBrackets)),
            ']' => break,
            c if c.is_ascii_alphanumeric() => {
                empty = false;
                class.push(c);
                if let Some(&(dash_at, '-')) = chars.peek() {
                    chars.next();
                    match chars.next() {
                        Some((_, ']')) | None => {
                            return Err((dash_at, FilterErrorKind::InvalidBracketChar('-')));
                        }
                        Some((_, end)) => {
                            if !is_valid_range(c, end) {
                                return Err((at, FilterErrorKind::InvalidRange(c, end)));
                            }
                            class.push('-');
                            class.push(end);
                        }
                    }
                }
            }
            other => return Err((at, FilterErrorKind::InvalidBracketChar(other))),
        }
    }
    class.push(']');
    Ok(class)
}

fn is_valid_range(start: char, end: char) -> bool {
    let same_kind = (start.is_ascii_lowercase() && end.is_ascii_lowercase())
        || (start.is_ascii_uppercase() && end.is_ascii_uppercase())
        || (start.is_ascii_digit() && end.is_ascii_digit());
    same_kind && start <= end
}

fn escape_char(c: char) -> String {
    let mut buf = [0u8; 4];
    regex::escape(c.encode_utf8(&mut buf))
}

/// An ordered list of filter patterns, compiled once. The last matching pattern decides.
#[derive(Clone, Debug, Default)]
pub struct PatternList {
    patterns: Vec<Pattern>,
}

impl PatternList {
    /// Compiles every pattern. On the first invalid one, returns its index and the error
    /// (call [`parse_pattern`] on each item to collect every mistake).
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<PatternList, (usize, FilterError)> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(index, p)| parse_pattern(p.as_ref()).map_err(|e| (index, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatternList { patterns })
    }

    /// Whether `value` is matched: the last pattern that matches it is a positive one.
    pub fn matches(&self, value: &str) -> bool {
        self.patterns
            .iter()
            .rev()
            .find(|p| p.is_match(value))
            .is_some_and(|p| !p.negated)
    }

    /// Whether at least one of `values` is matched.
    pub fn matches_any<S: AsRef<str>>(&self, values: &[S]) -> bool {
        values.iter().any(|v| self.matches(v.as_ref()))
    }

    /// Whether every one of `values` is matched (true for no values).
    pub fn matches_all<S: AsRef<str>>(&self, values: &[S]) -> bool {
        values.iter().all(|v| self.matches(v.as_ref()))
    }

    /// The first of `values` that is matched.
    pub fn find_match<'v, S: AsRef<str>>(&self, values: &'v [S]) -> Option<&'v str> {
        values.iter().map(AsRef::as_ref).find(|v| self.matches(v))
    }

    /// The first of `values` that is not matched.
    pub fn find_mismatch<'v, S: AsRef<str>>(&self, values: &'v [S]) -> Option<&'v str> {
        values.iter().map(AsRef::as_ref).find(|v| !self.matches(v))
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether at least one pattern is positive. GitHub requires one in `branches`, `tags`
    /// and `paths` when `!` patterns are used: a list of only `!` patterns matches nothing.
    pub fn has_positive(&self) -> bool {
        self.patterns.iter().any(|p| !p.negated)
    }
}

/// Formats the list as a YAML flow sequence, quoting the patterns YAML would need quoted:
/// `[main, 'releases/**', '!*.md']`.
impl fmt::Display for PatternList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_flow_scalar(f, p.as_str())?;
        }
        f.write_str("]")
    }
}

/// Writes `s` as a plain YAML scalar when that reads back as the same string inside a flow
/// sequence, otherwise single-quoted.
pub(crate) fn write_flow_scalar(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ];
    let needs_quotes = s.is_empty()
        || s.starts_with(INDICATORS)
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
        || s.contains([',', '[', ']', '{', '}'])
        || s.contains(": ")
        || s.ends_with(':')
        || s.contains(" #");
    if needs_quotes {
        write!(f, "'{}'", s.replace('\'', "''"))
    } else {
        f.write_str(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(patterns: &[&str], value: &str, expected: bool) {
        let list = PatternList::new(patterns).unwrap();
        assert_eq!(
            list.matches(value),
            expected,
            "{patterns:?} against {value:?}"
        );
    }

    fn check_error(pattern: &str, column: usize, kind: FilterErrorKind) {
        let err = parse_pattern(pattern).unwrap_err();
        assert_eq!(err.kind, kind, "{pattern:?}");
        assert_eq!(err.column(), column, "{pattern:?}: {err}");
    }

    #[test]
    fn star_stops_at_slash() {
        check(&["feature/*"], "feature/x", true);
        check(&["feature/*"], "feature/x/y", false);
        check(&["*"], "", true);
        check(&["Octo*"], "Octocat", true);
    }

    #[test]
    fn double_star_crosses_slashes() {
        check(&["**"], "a/b/c", true);
        check(&["**.js"], "src/js/app.js", true);
        check(&["**.js"], "app.jsx", false);
        check(&["docs/**"], "docs/a/b.md", true);
        check(&["docs/**"], "docs", false);
        check(&["docs/**"], "dir/docs/a", false);
    }

    #[test]
    fn double_star_slash_is_any_number_of_directories() {
        check(&["**/README.md"], "README.md", true);
        check(&["**/README.md"], "a/b/README.md", true);
        check(&["**/README.md"], "xREADME.md", false);
        check(&["docs/**/*.md"], "docs/a.md", true);
        check(&["docs/**/*.md"], "docs/x/y/a.md", true);
        check(&["a**/b"], "ax/b", true);
        check(&["a**/b"], "ab", false);
    }

    #[test]
    fn question_mark_and_plus_repeat_the_preceding_atom() {
        check(&["*.jsx?"], "a.js", true);
        check(&["*.jsx?"], "a.jsx", true);
        check(&["*.jsx?"], "a.jsxx", false);
        check(&["release+1"], "releaseee1", true);
        check(&["release+1"], "releas1", false);
        check(&["v[0-9]+"], "v123", true);
        check(&["v[0-9]+"], "v", false);
        check(&["a\\*+"], "a***", true);
        check(&["a*?"], "abc", true);
    }

    #[test]
    fn brackets_are_classes_of_letters_and_digits() {
        check(&["[CB]at"], "Cat", true);
        check(&["[CB]at"], "Hat", false);
        check(&["v[12].[0-9]+.[0-9]+"], "v1.10.1", true);
        check(&["v[12].[0-9]+.[0-9]+"], "v1x10.1", false);
        check(&["[a-cX-Z5-7]"], "Y", true);
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        check(&[".yml"], "fyml", false);
        check(&["a(b)|c{2}$^"], "a(b)|c{2}$^", true);
        check(&["]"], "]", true);
        check(&["a!b"], "a!b", true);
    }

    #[test]
    fn backslash_escapes() {
        check(&["\\!file"], "!file", true);
        check(&["release\\+1"], "release+1", true);
        check(&["release\\+1"], "releasee1", false);
        check(&["escape\\\\backslash"], "escape\\backslash", true);
        check(&["\\*"], "x", false);
    }

    #[test]
    fn last_matching_pattern_decides() {
        let list = ["*.md", "!README.md", "README*"];
        check(&list, "hello.md", true);
        check(&list, "README.md", true);
        check(&list, "README.doc", true);
        check(&list[..2], "README.md", false);
        check(&["!x"], "x", false);
        check(&["!x"], "y", false);
        check(&[] as &[&str], "x", false);
    }

    #[test]
    fn unicode_values_match_by_character() {
        check(&["f?é*"], "é-ü", true);
        check(&["*"], "ünïcode", true);
    }

    #[test]
    fn invalid_patterns_say_what_and_where() {
        check_error("", 1, FilterErrorKind::Empty);
        check_error("!", 1, FilterErrorKind::OnlyNegation);
        check_error("?x", 1, FilterErrorKind::NothingToRepeat('?'));
        check_error("!+x", 2, FilterErrorKind::NothingToRepeat('+'));
        check_error("ab\\", 3, FilterErrorKind::TrailingBackslash);
        check_error("v[0-9", 2, FilterErrorKind::UnclosedBracket);
        check_error("a[]", 2, FilterErrorKind::EmptyBrackets);
        check_error("[a.]", 3, FilterErrorKind::InvalidBracketChar('.'));
        check_error("[^a]", 2, FilterErrorKind::InvalidBracketChar('^'));
        check_error("[a-]", 3, FilterErrorKind::InvalidBracketChar('-'));
        check_error("[-a]", 2, FilterErrorKind::InvalidBracketChar('-'));
        check_error("[z-a]", 2, FilterErrorKind::InvalidRange('z', 'a'));
        check_error("[A-z]", 2, FilterErrorKind::InvalidRange('A', 'z'));
        check_error("é[", 2, FilterErrorKind::UnclosedBracket);
        let err = parse_pattern("v[0-9").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid filter pattern 'v[0-9' at column 2: '[' is never closed by ']'"
        );
    }

    #[test]
    fn pattern_list_reports_the_index_of_the_bad_pattern() {
        let (index, err) = PatternList::new(&["main", "ok/*", "[x"]).unwrap_err();
        assert_eq!(index, 2);
        assert_eq!(err.kind, FilterErrorKind::UnclosedBracket);
    }

    #[test]
    fn list_displays_as_yaml_flow_sequence() {
        let list =
            PatternList::new(&["main", "releases/**", "*.md", "!x", "v[12]", "it's"]).unwrap();
        assert_eq!(
            list.to_string(),
            "[main, releases/**, '*.md', '!x', 'v[12]', it's]"
        );
    }

    /// Every case of `testdata/oracles/filter-patterns.json` `cases` (GitHub's docs and act's
    /// `TestMatchPattern`). act cases with several inputs use act's `Skip` semantics: skipped
    /// when the pattern list is non-empty and no input is matched. act's `Filter` result is
    /// checked too, except for patterns with `!` (act's own rule there, see the README).
    #[test]
    fn oracle_filter_patterns() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/oracles/filter-patterns.json"
        ))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        let mut failures = Vec::new();
        let mut failed_cases = 0;
        for case in cases {
            let failures_before = failures.len();
            check_case(case, &mut failures);
            if failures.len() > failures_before {
                failed_cases += 1;
            }
        }
        let passed = cases.len() - failed_cases;
        println!(
            "filter-patterns.json: {passed}/{} cases pass ({:.1}%)",
            cases.len(),
            100.0 * passed as f64 / cases.len() as f64
        );
        for failure in &failures {
            println!("FAIL {failure}");
        }
        assert!(failures.is_empty(), "{failed_cases} oracle cases fail");
    }

    fn check_case(case: &serde_json::Value, failures: &mut Vec<String>) {
        let id = case["id"].as_str().unwrap();
        let patterns: Vec<&str> = case["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let list = match PatternList::new(&patterns) {
            Ok(list) => list,
            Err((_, e)) => {
                failures.push(format!("{id}: {e}"));
                return;
            }
        };
        if let (Some(value), Some(expected)) = (case["value"].as_str(), case["matches"].as_bool()) {
            let got = list.matches(value);
            if got != expected {
                failures.push(format!(
                    "{id}: {patterns:?} vs {value:?}: got {got}, expected {expected}"
                ));
            }
        }
        if let Some(act) = case.get("act") {
            let inputs: Vec<&str> = act["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let skip = !list.is_empty() && !list.matches_any(&inputs);
            if skip != act["skip"].as_bool().unwrap() {
                failures.push(format!("{id}: act skip: got {skip} for {inputs:?}"));
            }
            if !patterns.iter().any(|p| p.contains('!')) {
                let filter = !list.is_empty() && list.matches_all(&inputs);
                if filter != act["filter"].as_bool().unwrap() {
                    failures.push(format!("{id}: act filter: got {filter} for {inputs:?}"));
                }
            }
        }
    }
}
