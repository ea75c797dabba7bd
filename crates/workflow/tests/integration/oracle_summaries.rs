//! `parsed-summaries.json`: job ids, needs, normalised `if`, names, step ids and errors as
//! GitHub's parser produces them for act's run-only workflows and the matrix cases.

use gantry_workflow::parse_workflow;
use gantry_workflow::validate::expression::{TemplateValue, split_template, template_value};
use serde_json::Value;

use crate::support::{error_places, github_location, oracle_path, read_json};

/// GitHub's TypeScript parser builds the `format()` of a multi-line block scalar from the
/// raw source (indentation and CRLF included) instead of the value; the runner uses the value.
/// Compare without that indentation.
fn without_block_indentation(text: &str) -> String {
    let text = text.replace('\r', "");
    let (prefix, body) = match text.strip_prefix("${{ format('") {
        Some(rest) => ("${{ format('", rest),
        None => ("", text.as_str()),
    };
    let lines: Vec<&str> = body.split('\n').map(str::trim_start).collect();
    // The raw source also lacks the final newline of a scalar at the end of the file.
    format!("{prefix}{}", lines.join("\n")).replace("\n',", "',")
}

/// The share of workflows that must keep matching (raise it when more pass).
const FLOOR: f64 = 1.0;

/// A template as GitHub's parser prints it: literal text, or `${{ expr }}` with text turned
/// into `format(...)`.
fn as_github_token(template: &str) -> String {
    match split_template(template).map(|s| template_value(&s)) {
        Ok(TemplateValue::Expression(e)) => format!("${{{{ {e} }}}}"),
        Ok(TemplateValue::Literal(l)) => l,
        Err(_) => template.to_owned(),
    }
}

fn workflow_source(file: &str) -> (String, String) {
    if let Some((json, id)) = file.split_once('#') {
        let cases = read_json(json.trim_start_matches("oracles/"));
        let case = cases["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no case {id}"));
        let name = format!(".github/workflows/{id}.yml");
        (
            name,
            case["workflow"].as_str().expect("workflow").to_owned(),
        )
    } else {
        let path = oracle_path(file.trim_start_matches("oracles/"));
        let name = format!(
            ".github/workflows/{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .expect("file name")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        (name, text)
    }
}

fn compare(entry: &Value) -> Result<(), String> {
    let file = entry["file"].as_str().expect("file");
    let (name, source) = workflow_source(file);
    let parsed = parse_workflow(&name, &source);
    let expected_errors: Vec<&str> = entry["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !expected_errors.is_empty() {
        if !parsed.has_errors() {
            return Err(format!("no error, expected {expected_errors:?}"));
        }
        let places = error_places(&parsed);
        for e in &expected_errors {
            if let Some((line, _)) = github_location(e)
                && !places.iter().any(|(l, _)| *l == line)
            {
                return Err(format!("expected error not found at its line: {e}"));
            }
        }
        return Ok(());
    }
    if parsed.has_errors() {
        return Err(format!(
            "unexpected errors: {:?}",
            parsed
                .errors()
                .map(|d| (d.line_column(), &d.message))
                .collect::<Vec<_>>()
        ));
    }
    let workflow = parsed.workflow.as_ref().ok_or("no workflow")?;
    let jobs = entry["jobs"].as_array().expect("jobs");
    let ids: Vec<&str> = workflow.jobs.iter().map(|j| j.id.value.as_str()).collect();
    let expected_ids: Vec<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    if ids != expected_ids {
        return Err(format!("job ids {ids:?}, expected {expected_ids:?}"));
    }
    for (job, expected) in workflow.jobs.iter().zip(jobs) {
        let id = &job.id.value;
        let needs: Vec<&str> = job.needs.iter().map(|n| n.value.as_str()).collect();
        let expected_needs: Vec<&str> = expected["needs"]
            .as_array()
            .map(|n| n.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if needs != expected_needs {
            return Err(format!(
                "job {id}: needs {needs:?}, expected {expected_needs:?}"
            ));
        }
        let condition = format!("${{{{ {} }}}}", job.condition.expression);
        if Some(condition.as_str()) != expected["if"].as_str() {
            return Err(format!(
                "job {id}: if {condition}, expected {}",
                expected["if"]
            ));
        }
        let job_name = as_github_token(job.display_name());
        if Some(job_name.as_str()) != expected["name"].as_str() {
            return Err(format!(
                "job {id}: name {job_name:?}, expected {}",
                expected["name"]
            ));
        }
        let expected_steps = expected["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if job.steps.len() != expected_steps.len() {
            return Err(format!(
                "job {id}: {} steps, expected {}",
                job.steps.len(),
                expected_steps.len()
            ));
        }
        for (step, expected) in job.steps.iter().zip(expected_steps) {
            if Some(step.id.as_str()) != expected["id"].as_str() {
                return Err(format!(
                    "job {id}: step id {}, expected {}",
                    step.id, expected["id"]
                ));
            }
            let condition = format!("${{{{ {} }}}}", step.condition.expression);
            if Some(condition.as_str()) != expected["if"].as_str() {
                return Err(format!(
                    "job {id} step {}: if {condition}, expected {}",
                    step.id, expected["if"]
                ));
            }
            let step_name = step.name.as_ref().map(|n| as_github_token(&n.value));
            if step_name.as_deref() != expected["name"].as_str() {
                return Err(format!(
                    "job {id} step {}: name {step_name:?}, expected {}",
                    step.id, expected["name"]
                ));
            }
            if let Some(run) = expected["run"].as_str() {
                let ours = step.run().map(|r| as_github_token(&r.value));
                if ours.as_deref().map(without_block_indentation)
                    != Some(without_block_indentation(run))
                {
                    return Err(format!(
                        "job {id} step {}: run {ours:?}, expected {run:?}",
                        step.id
                    ));
                }
            }
            if let Some(uses) = expected["uses"].as_str()
                && step.uses().map(|u| u.value.as_str()) != Some(uses)
            {
                return Err(format!(
                    "job {id} step {}: uses differs from {uses:?}",
                    step.id
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn parsed_summaries_match_github() {
    let entries = read_json("workflows/parsed-summaries.json");
    let entries = entries.as_array().expect("an array");
    let mut failures = Vec::new();
    for entry in entries {
        if let Err(why) = compare(entry) {
            failures.push(format!("{}: {why}", entry["file"].as_str().unwrap_or("?")));
        }
    }
    let passed = entries.len() - failures.len();
    let rate = passed as f64 / entries.len() as f64;
    println!(
        "parsed summaries: {passed}/{} workflows match ({:.1}%)",
        entries.len(),
        rate * 100.0
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(rate >= FLOOR, "match rate {rate} fell below {FLOOR}");
}
