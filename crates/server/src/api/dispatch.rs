//! `POST /api/v1/repositories/{id}/dispatch`: starts a workflow by hand (`workflow_dispatch`)
//! at a branch or tag, with inputs. The workflow is read at that ref's commit and planned like
//! any event ([`crate::ingest::plan_request`]); inputs are typed and checked by the planner
//! against `on.workflow_dispatch.inputs`, and a mistake is a 400 with the planner's words, not
//! a failed run.

use super::auth::{ApiJson, Writer};
use super::repositories::lookup_repository;
use super::runs::RunSummaryView;
use crate::agent_api::store_error;
use crate::app::{AppState, now_ms};
use crate::error::ApiError;
use crate::ingest::{IngestError, RunRequest, after_insert, plan_request};
use crate::mirror::check_ref;
use crate::run_state::GraphDoc;
use crate::store::{Repository, RunStatus};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gantry_workflow::parse_workflow;
use gantry_workflow::trigger::Event;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    /// The workflow: its file (`.github/workflows/deploy.yml`), its file name (`deploy.yml`),
    /// or its `name:`.
    pub workflow: String,
    /// A branch, a tag, or a full ref; the default branch (`main`, else `master`) when absent.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Input values; strings, booleans and numbers are accepted.
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DispatchAnswer {
    pub runs: Vec<RunSummaryView>,
}

pub async fn dispatch_workflow(
    State(state): State<Arc<AppState>>,
    Writer(token): Writer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DispatchRequest>,
) -> Result<(StatusCode, Json<DispatchAnswer>), ApiError> {
    let repo = lookup_repository(&state, &id).await?;
    let mut inputs = Vec::with_capacity(body.inputs.len());
    for (name, value) in &body.inputs {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "input {name}: {other} is not a string, boolean or number"
                )));
            }
        };
        inputs.push((name.clone(), text));
    }
    let mirrors = &state.mirrors;
    mirrors
        .fetch(repo.id.as_str(), &repo.clone_url, None)
        .await
        .map_err(|e| {
            tracing::warn!(repository = %repo.name, error = %e, "dispatch: fetch failed");
            ApiError::Unavailable(format!("could not fetch {}", repo.clone_url))
        })?;
    let (git_ref, sha) = resolve_ref(&state, &repo, body.git_ref.as_deref()).await?;
    let sources = mirrors
        .read_workflows(repo.id.as_str(), &sha)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading workflows at {sha}: {e}")))?;
    let (file, text) = find_workflow(&sources, &body.workflow).ok_or_else(|| {
        let files: Vec<&str> = sources.iter().map(|(f, _)| f.as_str()).collect();
        ApiError::NotFound(format!(
            "no workflow {:?} in {} at {git_ref} (workflows there: {})",
            body.workflow,
            repo.name,
            if files.is_empty() {
                "none".to_owned()
            } else {
                files.join(", ")
            }
        ))
    })?;
    let parsed = parse_workflow(&file, &text);
    if parsed.has_errors() {
        let problems: Vec<String> = parsed
            .errors()
            .map(|d| match d.line_column() {
                Some((line, column)) => format!("{file}:{line}:{column}: {}", d.message),
                None => format!("{file}: {}", d.message),
            })
            .collect();
        return Err(ApiError::BadRequest(format!(
            "the workflow is invalid at {git_ref}: {}",
            problems.join("; ")
        )));
    }
    let dispatchable = parsed
        .workflow
        .as_ref()
        .is_some_and(|w| w.on.trigger("workflow_dispatch").is_some());
    if !dispatchable {
        return Err(ApiError::BadRequest(format!(
            "{file} has no `on: workflow_dispatch` trigger at {git_ref}, so it cannot be run by hand"
        )));
    }

    let actor = token.name.clone();
    let request = RunRequest {
        event: Event {
            name: "workflow_dispatch".to_owned(),
            git_ref: Some(git_ref.clone()),
            ..Event::default()
        },
        payload: json!({
            "inputs": inputs.iter().cloned().collect::<IndexMap<String, String>>(),
            "ref": git_ref,
            "repository": { "full_name": repo.name, "clone_url": repo.clone_url },
            "sender": { "login": actor },
            "workflow": file,
        }),
        sha: sha.clone(),
        actor: actor.clone(),
        trusted: true,
        title: format!("Manually run by {actor}"),
        inputs,
        only_workflow: Some(file.clone()),
        fork_url: None,
    };
    let planned = plan_request(&state, &repo, request, None)
        .await
        .map_err(|e| match e {
            IngestError::Transient(why) => ApiError::Unavailable(why),
            IngestError::Permanent(why) => ApiError::BadRequest(why),
        })?;
    let planned: Vec<_> = planned
        .into_iter()
        .filter(|r| r.run.workflow_file == file)
        .collect();
    // A workflow that cannot run (bad inputs...) is planned as a failed run: refuse instead.
    for new in &planned {
        let refused = new.run.status == RunStatus::Completed
            && new.jobs.is_empty()
            && new.run.conclusion == Some(gantry_protocol::Conclusion::Failure);
        if refused {
            let doc: GraphDoc = serde_json::from_str(&new.run.graph).unwrap_or_default();
            let why = doc
                .notes
                .iter()
                .filter_map(|n| n.reason.clone())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::BadRequest(if why.is_empty() {
                format!("{file} cannot run with these inputs")
            } else {
                why
            }));
        }
    }
    if planned.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "{file} did not start at {git_ref}"
        )));
    }
    let mut stored = Vec::with_capacity(planned.len());
    for new in &planned {
        let (run, _) = state
            .db
            .insert_run_with_jobs(&new.run, &new.jobs, &new.statuses, now_ms())
            .await
            .map_err(store_error)?;
        stored.push(run);
    }
    after_insert(&state, &stored).await;
    tracing::info!(repository = %repo.name, %file, %git_ref, by = %actor, "workflow dispatched");
    Ok((
        StatusCode::CREATED,
        Json(DispatchAnswer {
            runs: stored
                .iter()
                .map(|run| RunSummaryView::from_run(run, &repo.name))
                .collect(),
        }),
    ))
}

/// The full ref and commit a dispatch runs at.
async fn resolve_ref(
    state: &AppState,
    repo: &Repository,
    wanted: Option<&str>,
) -> Result<(String, String), ApiError> {
    let candidates: Vec<String> = match wanted.map(str::trim).filter(|r| !r.is_empty()) {
        Some(name) => {
            check_ref(name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if name.starts_with("refs/") {
                vec![name.to_owned()]
            } else {
                vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
            }
        }
        None => vec!["refs/heads/main".to_owned(), "refs/heads/master".to_owned()],
    };
    for candidate in &candidates {
        if let Ok(sha) = state.mirrors.resolve(repo.id.as_str(), candidate).await
            && !sha.is_empty()
        {
            return Ok((candidate.clone(), sha));
        }
    }
    Err(ApiError::BadRequest(match wanted {
        Some(name) => format!("{} has no branch or tag {name:?}", repo.name),
        None => format!(
            "{} has neither a main nor a master branch: pass the ref to run at",
            repo.name
        ),
    }))
}

/// The workflow `wanted` names: a file path, a file name, or a workflow's `name:`.
fn find_workflow(sources: &[(String, String)], wanted: &str) -> Option<(String, String)> {
    let wanted = wanted.trim();
    let by_file = sources.iter().find(|(file, _)| {
        file == wanted || file.rsplit('/').next() == Some(wanted) || {
            let stem = file.rsplit('/').next().unwrap_or(file);
            stem.rsplit_once('.').map(|(s, _)| s) == Some(wanted)
        }
    });
    if let Some(found) = by_file {
        return Some(found.clone());
    }
    sources
        .iter()
        .find(|(file, text)| {
            parse_workflow(file, text)
                .workflow
                .is_some_and(|w| w.name.as_ref().is_some_and(|n| n.value == wanted))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflows_are_found_by_path_file_stem_or_name() {
        let sources = vec![
            (
                ".github/workflows/ci.yml".to_owned(),
                "name: CI\non: push\njobs: {}\n".to_owned(),
            ),
            (
                ".github/workflows/deploy.yaml".to_owned(),
                "name: Deploy site\non: workflow_dispatch\njobs: {}\n".to_owned(),
            ),
        ];
        let file = |wanted: &str| find_workflow(&sources, wanted).map(|(f, _)| f);
        assert_eq!(
            file(".github/workflows/ci.yml").as_deref(),
            Some(".github/workflows/ci.yml")
        );
        assert_eq!(
            file("deploy.yaml").as_deref(),
            Some(".github/workflows/deploy.yaml")
        );
        assert_eq!(
            file("deploy").as_deref(),
            Some(".github/workflows/deploy.yaml")
        );
        assert_eq!(
            file("Deploy site").as_deref(),
            Some(".github/workflows/deploy.yaml")
        );
        assert_eq!(file("release"), None);
    }
}
