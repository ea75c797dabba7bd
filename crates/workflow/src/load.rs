//! Finding and reading workflow files in a repository.

use std::io;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::parse::{ParsedWorkflow, parse_workflow};
use crate::span::{Pos, Span};
use crate::yaml::MAX_FILE_SIZE;

/// Folders searched for workflow files, relative to the repository root, in this order.
pub const WORKFLOW_DIRS: &[&str] = &[".gantry/workflows", ".github/workflows"];

/// The workflow files of a repository: `*.yml` and `*.yaml` directly in `.gantry/workflows`
/// and `.github/workflows` (not in subfolders), sorted by path. Missing folders are skipped.
pub fn discover_workflows(repo_root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for dir in WORKFLOW_DIRS {
        let dir = repo_root.join(dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let is_yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yml" || e == "yaml");
            if is_yaml && entry.file_type()?.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A workflow file read from disk and parsed.
#[derive(Clone, Debug)]
pub struct LoadedWorkflow {
    pub path: PathBuf,
    /// The file text (invalid UTF-8 sequences replaced by U+FFFD when it is not UTF-8).
    pub source: String,
    pub parsed: ParsedWorkflow,
}

/// Reads and parses one workflow file. Problems with the content (not UTF-8, too large) are
/// diagnostics; only a failure to read the file is an `Err`. The workflow's file name is the
/// path as given.
pub fn load_workflow(path: &Path) -> io::Result<LoadedWorkflow> {
    let metadata = std::fs::metadata(path)?;
    let name = path.to_string_lossy().into_owned();
    // Far too large files are not even read; others are, so the diagnostic can show where
    // the limit is crossed.
    if metadata.len() > 16 * MAX_FILE_SIZE as u64 {
        return Ok(LoadedWorkflow {
            path: path.to_owned(),
            source: String::new(),
            parsed: ParsedWorkflow {
                workflow: None,
                diagnostics: vec![
                    Diagnostic::error(
                        "file-too-large",
                        format!(
                            "the file is {} bytes, more than the limit of {MAX_FILE_SIZE} bytes",
                            metadata.len()
                        ),
                        None,
                    )
                    .with_help("split the workflow into smaller files or reusable workflows"),
                ],
            },
        });
    }
    let bytes = std::fs::read(path)?;
    Ok(load_workflow_bytes(&name, path, bytes))
}

/// Parses workflow bytes that may not be UTF-8.
pub fn load_workflow_bytes(name: &str, path: &Path, bytes: Vec<u8>) -> LoadedWorkflow {
    match String::from_utf8(bytes) {
        Ok(source) => {
            let parsed = parse_workflow(name, &source);
            LoadedWorkflow {
                path: path.to_owned(),
                source,
                parsed,
            }
        }
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let at = Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
                offset,
            };
            LoadedWorkflow {
                path: path.to_owned(),
                source: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                parsed: ParsedWorkflow {
                    workflow: None,
                    diagnostics: vec![
                        Diagnostic::error(
                            "invalid-utf8",
                            format!("the file is not valid UTF-8 (first bad byte at line {line}, column {column})"),
                            Span::new(at, at),
                        )
                        .with_help("save the file as UTF-8"),
                    ],
                },
            }
        }
    }
}
