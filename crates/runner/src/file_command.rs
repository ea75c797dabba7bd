//! Environment files: what a step writes to `$GITHUB_ENV`, `$GITHUB_OUTPUT`, `$GITHUB_STATE`,
//! `$GITHUB_PATH` and `$GITHUB_STEP_SUMMARY`, read back after the step as GitHub's runner does.
//!
//! `GITHUB_ENV`, `GITHUB_OUTPUT` and `GITHUB_STATE` share one format ([`parse_env_file`]):
//! `NAME=value` lines, or a heredoc `NAME<<DELIMITER`, value lines, then a line that is exactly
//! `DELIMITER`. `GITHUB_ENV` also refuses `NODE_OPTIONS` ([`parse_github_env`]). `GITHUB_PATH`
//! holds one directory per line ([`parse_path_file`], [`PrependPath`]). The step summary is
//! Markdown, masked, and at most 1 MiB ([`read_step_summary`]).
//!
//! Line endings are handled the same on every platform: `\n` and `\r\n` both end a line (GitHub's
//! Windows runner behaviour), and a heredoc value keeps the file's own line endings. A missing
//! file, a missing directory or no path at all is silently nothing, as in the runner.
//!
//! This module reads files and parses; it does not apply anything to the job.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use gantry_protocol::{Annotation, AnnotationLevel};

use crate::mask::Masker;

/// The largest step summary uploaded (GitHub's `AttachmentSizeLimit`).
pub const STEP_SUMMARY_LIMIT: u64 = 1024 * 1024;

/// Names `GITHUB_ENV` may not set.
const ENV_BLOCK_LIST: &[&str] = &["NODE_OPTIONS"];

#[derive(Debug, thiserror::Error)]
pub enum FileCommandError {
    /// A line that is neither `NAME=value` nor `NAME<<DELIMITER`.
    #[error("Invalid format '{line}'")]
    InvalidFormat { line: String },
    #[error("Invalid format '{line}'. Name must not be empty")]
    EmptyName { line: String },
    #[error("Invalid format '{line}'. Name must not be empty and delimiter must not be empty")]
    EmptyHeredocNameOrDelimiter { line: String },
    /// The file ended before a line equal to the delimiter.
    #[error("Invalid value. Matching delimiter not found '{delimiter}'")]
    DelimiterNotFound { delimiter: String },
    /// The last line of the file is inside a heredoc and has no newline.
    #[error("Invalid value. EOF marker missing new line.")]
    MissingNewLine,
    #[error(
        "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of {}k, got {}k. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary",
        STEP_SUMMARY_LIMIT / 1024,
        size / 1024
    )]
    StepSummaryTooLarge { size: u64 },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a command file written by a step: UTF-8 (invalid sequences replaced), BOM removed.
/// `None` when there is no path, no file, or no directory holding it.
pub fn read_command_file(path: Option<&Path>) -> Result<Option<String>, FileCommandError> {
    let Some(path) = path else {
        return Ok(None);
    };
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(decode(&bytes))),
        Err(e) if is_missing(&e) => Ok(None),
        Err(source) => Err(FileCommandError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// One line of a file and the line ending that followed it (`None` for the last line when
/// the file does not end with a newline).
struct Lines<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<(&'a str, Option<&'static str>)> {
        let rest = self.text.get(self.pos..).filter(|r| !r.is_empty())?;
        match rest.find('\n') {
            None => {
                self.pos = self.text.len();
                Some((rest, None))
            }
            Some(i) => {
                self.pos += i + 1;
                match rest[..i].strip_suffix('\r') {
                    Some(line) => Some((line, Some("\r\n"))),
                    None => Some((&rest[..i], Some("\n"))),
                }
            }
        }
    }
}

/// Parses the `GITHUB_ENV` / `GITHUB_OUTPUT` / `GITHUB_STATE` format into `(name, value)` pairs
/// in file order (a later pair for the same name wins when applied).
///
/// * Empty lines between entries are skipped; a leading BOM is ignored.
/// * `NAME=value`: split at the first `=`; `NAME=` gives `""`.
/// * `NAME<<DELIMITER` (when `<<` comes before any `=`): the value is every line up to a line
///   exactly equal to `DELIMITER`, with the file's own line endings between them and without
///   the one before the delimiter; empty lines inside are kept.
pub fn parse_env_file(content: &str) -> Result<Vec<(String, String)>, FileCommandError> {
    let text = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut lines = Lines { text, pos: 0 };
    let mut pairs = Vec::new();
    while let Some((line, _)) = lines.next_line() {
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let (name, value) = (&line[..e], &line[e + 1..]);
                if name.is_empty() {
                    return Err(FileCommandError::EmptyName { line: line.into() });
                }
                pairs.push((name.to_owned(), value.to_owned()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(FileCommandError::EmptyHeredocNameOrDelimiter {
                        line: line.into(),
                    });
                }
                let start = lines.pos;
                let mut end = start;
                loop {
                    match lines.next_line() {
                        None => {
                            return Err(FileCommandError::DelimiterNotFound {
                                delimiter: delimiter.into(),
                            });
                        }
                        Some((value_line, _)) if value_line == delimiter => break,
                        Some((_, None)) => return Err(FileCommandError::MissingNewLine),
                        Some((_, Some(newline))) => end = lines.pos - newline.len(),
                    }
                }
                pairs.push((name.to_owned(), text[start..end.max(start)].to_owned()));
            }
            _ => return Err(FileCommandError::InvalidFormat { line: line.into() }),
        }
    }
    Ok(pairs)
}

/// The variables a step set through `GITHUB_ENV`, and the issues to report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvFile {
    /// In file order; a later pair for the same name wins.
    pub values: Vec<(String, String)>,
    /// One error annotation per refused name (`NODE_OPTIONS`).
    pub issues: Vec<Annotation>,
}

/// Parses `GITHUB_ENV`: [`parse_env_file`], minus the names the runner refuses to set
/// (`NODE_OPTIONS`, any case), each reported as an error annotation (the step goes on).
pub fn parse_github_env(content: &str) -> Result<EnvFile, FileCommandError> {
    let mut env = EnvFile::default();
    for (name, value) in parse_env_file(content)? {
        if is_blocked_env(&name) {
            env.issues.push(Annotation {
                level: AnnotationLevel::Error,
                message: format!(
                    "Can't store {} output parameter using '$GITHUB_ENV' command.",
                    name.to_ascii_uppercase()
                ),
                title: None,
                file: None,
                line: None,
                end_line: None,
                column: None,
                end_column: None,
            });
        } else {
            env.values.push((name, value));
        }
    }
    Ok(env)
}

/// True for the names `GITHUB_ENV` (and `::set-env`) may not set: `NODE_OPTIONS`, any case.
pub fn is_blocked_env(name: &str) -> bool {
    ENV_BLOCK_LIST.iter().any(|b| b.eq_ignore_ascii_case(name))
}

/// The directories in a `GITHUB_PATH` file, in file order: one per line (`\n`, `\r\n` or `\r`),
/// trimmed, empty lines skipped.
pub fn parse_path_file(content: &str) -> Vec<String> {
    let text = content.strip_prefix('\u{feff}').unwrap_or(content);
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The directories steps of a job added to `PATH`, oldest first. As in GitHub's runner, adding a
/// directory again moves it to the newest place, and the newest directory comes first in `PATH`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrependPath {
    entries: Vec<String>,
}

impl PrependPath {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the directories of one `GITHUB_PATH` file, in file order.
    pub fn extend(&mut self, dirs: impl IntoIterator<Item = String>) {
        for dir in dirs {
            self.entries.retain(|d| *d != dir);
            self.entries.push(dir);
        }
    }

    /// Oldest first.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The `PATH` for the next step: the added directories, newest first, then `base`.
    pub fn to_path(&self, base: &str, separator: char) -> String {
        let mut path = String::new();
        for dir in self.entries.iter().rev() {
            path.push_str(dir);
            path.push(separator);
        }
        if base.is_empty() {
            path.pop();
        } else {
            path.push_str(base);
        }
        path
    }
}

/// Reads a step summary for upload: `None` when there is no path, no file, or an empty file;
/// otherwise the Markdown with secrets masked. A file over [`STEP_SUMMARY_LIMIT`] bytes is not
/// read: [`FileCommandError::StepSummaryTooLarge`], which the runner reports as an error
/// annotation without failing the step (as it does for any error here).
pub fn read_step_summary(
    path: Option<&Path>,
    masker: &Masker,
) -> Result<Option<String>, FileCommandError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let io_error = |source| FileCommandError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let size = file.metadata().map_err(io_error)?.len();
    if size > STEP_SUMMARY_LIMIT {
        return Err(FileCommandError::StepSummaryTooLarge { size });
    }
    // The file may grow while it is read: never read more than the limit allows.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(STEP_SUMMARY_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > STEP_SUMMARY_LIMIT {
        return Err(FileCommandError::StepSummaryTooLarge {
            size: bytes.len() as u64,
        });
    }
    let text = decode(&bytes);
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(masker.mask(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::EncoderSet;
    use indexmap::IndexMap;
    use serde_json::Value;

    const ORACLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/oracles/runner-file-commands.json"
    );

    /// Writes the case's file and returns its path (`None` for `"file": "null"`).
    fn case_file(case: &Value, dir: &Path) -> Option<PathBuf> {
        let name = case["file_variable"].as_str().unwrap_or("FILE");
        match case["file"].as_str() {
            Some("missing") => Some(dir.join(name)),
            Some("missing_directory") => Some(dir.join("no-such-dir").join(name)),
            Some("present") => {
                let path = dir.join(name);
                let mut bytes = Vec::new();
                if let Some(n) = case["generated_content"]["zero_bytes"].as_u64() {
                    bytes.resize(usize::try_from(n).expect("small"), 0);
                } else {
                    if case["bom"].as_bool() == Some(true) {
                        bytes.extend_from_slice(b"\xEF\xBB\xBF");
                    }
                    let lines: Vec<&str> = case["lines"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let joined = lines.join(case["joiner"].as_str().unwrap_or("\n"));
                    assert_eq!(Some(joined.as_str()), case["content"].as_str());
                    bytes.extend_from_slice(joined.as_bytes());
                }
                std::fs::write(&path, bytes).expect("temp file is writable");
                Some(path)
            }
            _ => None,
        }
    }

    fn run_case(case: &Value) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = case_file(case, dir.path());
        let expected = &case["expected"];
        let command = case["command"].as_str().unwrap_or_default();

        if command == "step_summary" {
            let mut masker = Masker::with_encoders(EncoderSet::JsonAndUri);
            for regex in expected["mask_regexes"].as_array().into_iter().flatten() {
                masker
                    .add_regex(regex.as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
            }
            let (uploaded, issues) = match read_step_summary(path.as_deref(), &masker) {
                Ok(summary) => (summary, 0),
                Err(FileCommandError::StepSummaryTooLarge { .. }) => (None, 1),
                Err(e) => return Err(e.to_string()),
            };
            if uploaded.is_some() != expected["uploaded"].as_bool().unwrap_or(false) {
                return Err(format!("uploaded: {uploaded:?}"));
            }
            if Some(issues) != expected["issue_count"].as_u64() {
                return Err(format!("{issues} issues"));
            }
            for needle in expected["scrubbed_not_contains"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let needle = needle.as_str().unwrap_or_default();
                if uploaded.as_deref().is_some_and(|s| s.contains(needle)) {
                    return Err(format!("{uploaded:?} contains {needle:?}"));
                }
            }
            return Ok(());
        }

        let content = read_command_file(path.as_deref()).map_err(|e| e.to_string())?;
        let content = content.unwrap_or_default();
        let parsed = if command == "env" {
            parse_github_env(&content)
        } else {
            parse_env_file(&content).map(|values| EnvFile {
                values,
                issues: Vec::new(),
            })
        };
        match (&expected["error"], parsed) {
            (Value::Null, Ok(env)) => {
                let values: IndexMap<String, String> = env.values.into_iter().collect();
                let want: IndexMap<String, String> = expected["values"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                if values != want {
                    return Err(format!("values {values:?}, want {want:?}"));
                }
                if Some(env.issues.len() as u64) != expected["issue_count"].as_u64() {
                    return Err(format!("issues {:?}", env.issues));
                }
                Ok(())
            }
            (Value::Null, Err(e)) => Err(format!("error {e}")),
            (error, Ok(env)) => Err(format!("expected {error}, got {env:?}")),
            (error, Err(e)) => {
                let needle = error["message_contains"].as_str().unwrap_or_default();
                if e.to_string().contains(needle) {
                    Ok(())
                } else {
                    Err(format!("error {e}, want {needle:?}"))
                }
            }
        }
    }

    #[test]
    fn every_file_command_oracle_case_passes() {
        let text = std::fs::read_to_string(ORACLE).expect("oracle file is readable");
        let oracle: Value = serde_json::from_str(&text).expect("oracle file is JSON");
        let cases = oracle["cases"].as_array().expect("cases array");
        let mut failures = Vec::new();
        let mut windows = 0;
        for case in cases {
            if case["platform"].as_str() == Some("windows") {
                windows += 1;
            }
            if let Err(why) = run_case(case) {
                failures.push(format!("{}: {why}", case["id"]));
            }
        }
        let passed = cases.len() - failures.len();
        println!(
            "runner-file-commands.json: {passed}/{} passed ({:.1}%), {windows} of them Windows cases",
            cases.len(),
            100.0 * passed as f64 / cases.len() as f64
        );
        assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    }

    fn pairs(content: &str) -> Vec<(String, String)> {
        parse_env_file(content).expect("valid env file")
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn heredoc_keeps_the_files_own_line_endings() {
        assert_eq!(
            pairs("A<<EOF\r\none\ntwo\r\nEOF\r\nB=x\r\n"),
            vec![pair("A", "one\ntwo"), pair("B", "x")]
        );
    }

    #[test]
    fn heredoc_delimiter_must_match_the_whole_line() {
        assert_eq!(pairs("A<<EOF\n EOF\nEOF\n"), vec![pair("A", " EOF")]);
        assert!(matches!(
            parse_env_file("A<<EOF\nEOF \n"),
            Err(FileCommandError::DelimiterNotFound { .. })
        ));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for (content, want) in [
            ("=value", "Name must not be empty"),
            (
                "<<EOF\nx\nEOF",
                "Name must not be empty and delimiter must not be empty",
            ),
            ("NAME<<", "delimiter must not be empty"),
            ("just text", "Invalid format 'just text'"),
            ("A<<EOF\nx", "EOF marker missing new line"),
        ] {
            let err = parse_env_file(content).expect_err(content).to_string();
            assert!(err.contains(want), "{content:?}: {err}");
        }
    }

    #[test]
    fn node_options_is_refused_in_any_case() {
        let env = parse_github_env("node_options=--inspect\nA=1").expect("valid");
        assert_eq!(env.values, vec![pair("A", "1")]);
        assert_eq!(env.issues.len(), 1);
    }

    #[test]
    fn path_file_lines_are_trimmed_and_newest_comes_first() {
        let dirs = parse_path_file("\u{feff}/a\r\n\n  /b  \r/c\n/a\n");
        assert_eq!(dirs, vec!["/a", "/b", "/c", "/a"]);
        let mut path = PrependPath::new();
        path.extend(dirs);
        assert_eq!(path.entries(), ["/b", "/c", "/a"]);
        assert_eq!(path.to_path("/usr/bin", ':'), "/a:/c:/b:/usr/bin");
        assert_eq!(PrependPath::new().to_path("/usr/bin", ':'), "/usr/bin");
        assert_eq!(path.to_path("", ':'), "/a:/c:/b");
    }

    #[test]
    fn step_summary_is_masked_and_limited() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("summary.md");
        let mut masker = Masker::new();
        masker.add_secret("hunter2");
        std::fs::write(&path, "\u{feff}# Result\npassword hunter2\n").expect("write");
        assert_eq!(
            read_step_summary(Some(&path), &masker)
                .expect("readable")
                .as_deref(),
            Some("# Result\npassword ***\n")
        );
        std::fs::write(&path, vec![b'x'; 1024 * 1024]).expect("write");
        assert!(
            read_step_summary(Some(&path), &masker)
                .expect("at the limit")
                .is_some()
        );
        std::fs::write(&path, vec![b'x'; 1024 * 1024 + 1]).expect("write");
        let err = read_step_summary(Some(&path), &masker).expect_err("over the limit");
        assert!(
            err.to_string()
                .contains("supports content up to a size of 1024k, got 1024k")
        );
    }
}
