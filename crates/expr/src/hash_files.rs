//! `hashFiles()`: GitHub's algorithm over files matched with `@actions/glob` rules.
//!
//! Patterns are read one per line (each argument may hold several lines; blank lines and
//! lines starting with `#` are skipped), relative to the workspace (`./` allowed),
//! `!` negates (later patterns win), `*` `?` `[...]` match within one path segment, `**`
//! matches any number of segments, dot files included, case-sensitive. A pattern naming
//! a directory also matches everything below it. The walk visits each search root
//! depth-first with entries sorted by name (byte order), as Node's `readdir` lists them.
//! Directories and files outside the workspace are skipped; symbolic links are not
//! descended into (a link to a file is hashed by its target's content). Each file's
//! sha256 digest is fed, in walk order, into one more sha256, written as hex; `""` when
//! nothing matches.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Stage};
use crate::number::js_trim;

/// Hashes the files under `workspace` matching `patterns` as GitHub's `hashFiles()` does:
/// sha256 of each file, then sha256 over the concatenated 32-byte digests, as hex; `""`
/// when nothing matches.
pub fn hash_files(workspace: &Path, patterns: &[String]) -> Result<String, Error> {
    let joined = patterns.join("\n");
    let fail = |why: String| {
        let quoted: Vec<String> = patterns.iter().map(|p| format!("'{p}'")).collect();
        Error::new(
            Stage::Evaluation,
            ErrorKind::Function,
            format!("hashFiles({}) failed. {why}", quoted.join(", ")),
            None,
        )
    };
    let root = normalize(workspace).map_err(|e| fail(e.to_string()))?;
    let root_segments = segments_of(&root);
    let mut globs = Vec::new();
    for line in joined.split('\n').map(js_trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(glob) = Glob::parse(line, &root_segments).map_err(fail)? else {
            continue;
        };
        let implicit =
            glob.trailing_separator || !matches!(glob.segments.last(), Some(Segment::GlobStar));
        let descendants = implicit.then(|| {
            let mut segments = glob.segments.clone();
            segments.push(Segment::GlobStar);
            Glob {
                negate: glob.negate,
                segments,
                trailing_separator: false,
                implicit: true,
            }
        });
        globs.push(glob);
        globs.extend(descendants);
    }

    let mut hasher = Sha256::new();
    let mut count = 0usize;
    let mut visit = |file: &[String]| -> Result<(), Error> {
        // Only files under the workspace count.
        if file.len() <= root_segments.len() || !file.starts_with(&root_segments) {
            return Ok(());
        }
        let path = path_of(file);
        let meta = fs::metadata(&path)
            .map_err(|e| fail(format!("Cannot read '{}': {e}", path.display())))?;
        if meta.is_dir() {
            return Ok(());
        }
        let digest =
            hash_file(&path).map_err(|e| fail(format!("Cannot read '{}': {e}", path.display())))?;
        hasher.update(digest);
        count += 1;
        Ok(())
    };
    walk(&globs, &root_segments, &mut visit, &fail)?;
    if count == 0 {
        return Ok(String::new());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// An absolute, lexically normalized path (no `.` or `..`; symlinks untouched).
fn normalize(p: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

/// The names of an absolute path's segments below the root.
fn segments_of(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn path_of(segments: &[String]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(segments);
    p
}

/// What a pattern matched: a directory only, or anything.
const MATCH_DIRECTORY: u8 = 1;
const MATCH_FILE: u8 = 2;
const MATCH_ALL: u8 = MATCH_DIRECTORY | MATCH_FILE;

#[derive(Clone, Debug)]
enum Segment {
    Literal(String),
    GlobStar,
    Glob(Vec<Token>),
}

#[derive(Clone, Debug)]
enum Token {
    Char(char),
    /// `*`
    Any,
    /// `?`
    One,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

#[derive(Clone, Debug)]
struct Glob {
    negate: bool,
    /// Segments below the root (absolute pattern).
    segments: Vec<Segment>,
    /// `dir/`: matches directories only.
    trailing_separator: bool,
    /// The `/**` added so a matched directory matches its descendants.
    implicit: bool,
}

impl Glob {
    /// `None` for a pattern under `~` (the home directory, never inside the workspace).
    fn parse(line: &str, root: &[String]) -> Result<Option<Glob>, String> {
        let mut pattern = line;
        let mut negate = false;
        while let Some(rest) = pattern.strip_prefix('!') {
            negate = !negate;
            pattern = js_trim(rest);
        }
        if pattern.is_empty() {
            return Err("pattern cannot be empty".to_owned());
        }
        let absolute = pattern.starts_with('/');
        let trailing_separator = pattern.ends_with('/');
        let raw: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        let parsed: Vec<Segment> = raw.iter().map(|s| parse_segment(s)).collect();
        for (i, seg) in parsed.iter().enumerate() {
            if let Segment::Literal(l) = seg
                && (l == ".." || (l == "." && (i > 0 || absolute)))
            {
                return Err(format!(
                    "Invalid pattern '{pattern}'. Relative pathing '.' and '..' is not allowed."
                ));
            }
        }
        let mut segments: Vec<Segment> = Vec::new();
        if absolute {
            segments.extend(parsed);
        } else if raw.first() == Some(&"~") {
            // The home directory is outside the workspace: nothing there counts.
            return Ok(None);
        } else {
            segments.extend(root.iter().cloned().map(Segment::Literal));
            let skip_dot = matches!(parsed.first(), Some(Segment::Literal(l)) if l == ".");
            segments.extend(parsed.into_iter().skip(usize::from(skip_dot)));
        }
        // `**/**` means the same as `**` (and would only slow matching down).
        segments.dedup_by(|b, a| matches!((a, b), (Segment::GlobStar, Segment::GlobStar)));
        Ok(Some(Glob {
            negate,
            segments,
            trailing_separator,
            implicit: false,
        }))
    }

    /// The literal directory before the first wildcard segment.
    fn search_path(&self) -> Vec<String> {
        self.segments
            .iter()
            .map_while(|s| match s {
                Segment::Literal(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    fn matches(&self, item: &[String]) -> u8 {
        let hit = if matches!(self.segments.last(), Some(Segment::GlobStar)) && !self.implicit {
            // As with a trailing slash: `/a/**` matches `/a` itself.
            let mut with_slash: Vec<&str> = item.iter().map(String::as_str).collect();
            with_slash.push("");
            match_one(&with_slash, &self.segments, false)
        } else {
            let file: Vec<&str> = item.iter().map(String::as_str).collect();
            match_one(&file, &self.segments, false)
        };
        match (hit, self.trailing_separator) {
            (false, _) => 0,
            (true, true) => MATCH_DIRECTORY,
            (true, false) => MATCH_ALL,
        }
    }

    fn partially_matches(&self, item: &[String]) -> bool {
        if item.is_empty() {
            return true;
        }
        let file: Vec<&str> = item.iter().map(String::as_str).collect();
        match_one(&file, &self.segments, true)
    }
}

/// minimatch's `matchOne` (dot files allowed): whether `file` matches `pattern`, or with
/// `partial`, whether it could be a directory on the way to a match.
fn match_one(file: &[&str], pattern: &[Segment], partial: bool) -> bool {
    let (mut fi, mut pi) = (0, 0);
    while fi < file.len() && pi < pattern.len() {
        match &pattern[pi] {
            Segment::GlobStar => {
                if pi + 1 == pattern.len() {
                    // A trailing ** swallows the rest, but never `.` or `..`.
                    return file[fi..].iter().all(|f| *f != "." && *f != "..");
                }
                let mut fr = fi;
                while fr < file.len() {
                    if match_one(&file[fr..], &pattern[pi + 1..], partial) {
                        return true;
                    }
                    if file[fr] == "." || file[fr] == ".." {
                        break;
                    }
                    fr += 1;
                }
                return partial && fr == file.len();
            }
            Segment::Literal(l) => {
                if file[fi] != l {
                    return false;
                }
            }
            Segment::Glob(tokens) => {
                let f = file[fi];
                if f.is_empty() || f == "." || f == ".." || !match_tokens(f, tokens) {
                    return false;
                }
            }
        }
        fi += 1;
        pi += 1;
    }
    if fi == file.len() && pi == pattern.len() {
        true
    } else if fi == file.len() {
        partial
    } else {
        // Pattern used up: only a trailing empty segment (a trailing slash) may remain.
        fi == file.len() - 1 && file[fi].is_empty()
    }
}

fn match_tokens(s: &str, tokens: &[Token]) -> bool {
    let chars: Vec<char> = s.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut si, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < chars.len() {
        match tokens.get(ti) {
            Some(Token::Any) => {
                star = Some((ti, si));
                ti += 1;
                continue;
            }
            Some(t) if token_matches(t, chars[si]) => {
                si += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((st, ss)) => {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            }
            None => return false,
        }
    }
    tokens[ti..].iter().all(|t| matches!(t, Token::Any))
}

fn token_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Char(x) => *x == c,
        Token::One => true,
        Token::Any => false,
        Token::Class { negated, items } => {
            items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Parses one segment: `**` alone, a literal (escapes removed; one-character classes
/// such as `[a]` count as literal), or a glob.
fn parse_segment(s: &str) -> Segment {
    if s == "**" {
        return Segment::GlobStar;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                tokens.push(Token::Char(chars[i + 1]));
                i += 2;
                continue;
            }
            '*' => {
                if !matches!(tokens.last(), Some(Token::Any)) {
                    tokens.push(Token::Any);
                }
            }
            '?' => tokens.push(Token::One),
            '[' => {
                if let Some((token, next)) = parse_class(&chars, i) {
                    tokens.push(token);
                    i = next;
                    continue;
                }
                tokens.push(Token::Char('['));
            }
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    let literal: Option<String> = tokens
        .iter()
        .map(|t| match t {
            Token::Char(c) => Some(*c),
            Token::Class {
                negated: false,
                items,
            } if items.len() == 1 && items[0].0 == items[0].1 => Some(items[0].0),
            _ => None,
        })
        .collect();
    match literal {
        Some(l) => Segment::Literal(l),
        None => Segment::Glob(tokens),
    }
}

/// `[...]` starting at `chars[start]`; `None` when it is not a closed class.
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let first = i;
    while i < chars.len() {
        let mut c = chars[i];
        if c == ']' && i > first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[2..end];
                if let Some(ranges) = posix_class(name) {
                    items.extend_from_slice(ranges);
                    i += rest[..end + 2].chars().count();
                    continue;
                }
            }
        }
        if c == '\\' && i + 1 < chars.len() {
            i += 1;
            c = chars[i];
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&h| h != ']') {
            let mut hi = chars[i + 2];
            let mut skip = 3;
            if hi == '\\' && i + 3 < chars.len() {
                hi = chars[i + 3];
                skip = 4;
            }
            if c <= hi {
                items.push((c, hi));
            }
            i += skip;
            continue;
        }
        items.push((c, c));
        i += 1;
    }
    None
}

fn posix_class(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\u{7f}')],
        "blank" => &[(' ', ' '), ('\t', '\t')],
        "cntrl" => &[('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
        "digit" => &[('0', '9')],
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[(' ', ' '), ('\t', '\r')],
        "upper" => &[('A', 'Z')],
        "word" => &[('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')],
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    })
}

/// The roots to walk: each positive pattern's search path, in pattern order, skipping
/// those below another one.
fn search_paths(globs: &[Glob]) -> Vec<Vec<String>> {
    let candidates: Vec<Vec<String>> = globs
        .iter()
        .filter(|g| !g.negate)
        .map(Glob::search_path)
        .collect();
    let mut result: Vec<Vec<String>> = Vec::new();
    for path in &candidates {
        if result.contains(path) {
            continue;
        }
        let has_ancestor = (0..path.len()).any(|n| candidates.iter().any(|c| c[..] == path[..n]));
        if !has_ancestor {
            result.push(path.clone());
        }
    }
    result
}

/// Depth-first walk as `@actions/glob` does it, calling `visit` for each matched
/// non-directory (symbolic links included: they are not followed). Only the workspace's
/// ancestors and what lies below it are entered (nothing else can count), and a directory that
/// vanishes while it is walked is skipped like one that was never there.
fn walk(
    globs: &[Glob],
    workspace: &[String],
    visit: &mut dyn FnMut(&[String]) -> Result<(), Error>,
    fail: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    let mut stack: Vec<Vec<String>> = Vec::new();
    for root in search_paths(globs).into_iter().rev() {
        if fs::symlink_metadata(path_of(&root)).is_ok() {
            stack.push(root);
        }
    }
    while let Some(item) = stack.pop() {
        let mut kind = 0u8;
        for g in globs {
            let m = g.matches(&item);
            if g.negate {
                kind &= !m;
            } else {
                kind |= m;
            }
        }
        let partial = kind != 0
            || globs
                .iter()
                .any(|g| !g.negate && g.partially_matches(&item));
        if !partial {
            continue;
        }
        let path = path_of(&item);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !(item.starts_with(workspace) || workspace.starts_with(&item)) {
                continue;
            }
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(fail(format!("Cannot list '{}': {e}", path.display()))),
            };
            let mut names: Vec<std::ffi::OsString> = entries
                .filter_map(|entry| entry.ok().map(|e| e.file_name()))
                .collect();
            names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            for name in names.into_iter().rev() {
                let mut child = item.clone();
                child.push(name.to_string_lossy().into_owned());
                stack.push(child);
            }
        } else if kind & MATCH_FILE != 0 {
            visit(&item)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, path: &str, expected: bool) {
        let g = Glob::parse(pattern, &["ws".to_owned()])
            .expect("valid pattern")
            .expect("not under ~");
        let item: Vec<String> = path.split('/').map(str::to_owned).collect();
        assert_eq!(g.matches(&item) != 0, expected, "{pattern} vs {path}");
    }

    #[test]
    fn glob_matching() {
        check("*.txt", "ws/a.txt", true);
        check("*.txt", "ws/d/a.txt", false);
        check("**/*.txt", "ws/d/e/a.txt", true);
        check("**/*.txt", "ws/a.txt", true);
        check("**", "ws/.hidden", true);
        check("*", "ws/.hidden", true);
        check("a?c", "ws/abc", true);
        check("a?c", "ws/ac", false);
        check("[ab]x", "ws/bx", true);
        check("[!ab]x", "ws/bx", false);
        check("[a-c]x", "ws/cx", true);
        check("[[:digit:]]x", "ws/7x", true);
        check("./d/*", "ws/d/x", true);
        check("/ws/d/*", "ws/d/x", true);
        check("d/**", "ws/d", true);
        check("D/*", "ws/d/x", false);
        check("\\*", "ws/*", true);
        check("\\*", "ws/x", false);
        check("a*b*c", "ws/aXbYbZc", true);
    }

    #[test]
    fn invalid_patterns() {
        assert!(Glob::parse("a/../b", &[]).is_err());
        assert!(Glob::parse("a/./b", &[]).is_err());
        assert!(Glob::parse("!", &[]).is_err());
        assert!(matches!(Glob::parse("./a", &[]), Ok(Some(_))));
        assert!(matches!(Glob::parse("~/a", &[]), Ok(None)));
    }
}
