//! Helpers shared by the test modules.

use std::path::PathBuf;

use gantry_workflow::ParsedWorkflow;

/// `testdata/oracles/...` of the repository.
pub fn oracle_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/oracles")
        .join(relative)
}

pub fn read_json(relative: &str) -> serde_json::Value {
    let path = oracle_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()))
}

/// Every place a diagnostic points at: its primary span and its labels, as (line, column).
pub fn error_places(parsed: &ParsedWorkflow) -> Vec<(u32, u32)> {
    let mut places = Vec::new();
    for d in &parsed.diagnostics {
        if let Some(s) = d.span {
            places.push((s.start.line, s.start.column));
        }
        for (s, _) in &d.labels {
            places.push((s.start.line, s.start.column));
        }
    }
    places
}

/// `... (Line: 7, Col: 9): message` -> (7, 9).
pub fn github_location(message: &str) -> Option<(u32, u32)> {
    let start = message.find("(Line: ")? + "(Line: ".len();
    let rest = &message[start..];
    let (line, rest) = rest.split_once(", Col: ")?;
    let (col, _) = rest.split_once(')')?;
    Some((line.trim().parse().ok()?, col.trim().parse().ok()?))
}
