//! The contexts a job's expressions see (`github`, `runner`, `matrix`, `strategy`, `needs`,
//! `vars`, `secrets`, `inputs`) and the default environment variables of step processes
//! (`GITHUB_*`, `RUNNER_*`), both filled from the same values so they always agree.

use crate::job::JobRequest;
use gantry_expr::{Contexts, Object, Value};
use std::path::Path;

/// `RUNNER_OS` of this machine, as GitHub names it.
pub fn runner_os() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        other => other,
    }
}

/// `RUNNER_ARCH` of this machine, as GitHub names it.
pub fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "x86" => "X86",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        other => other,
    }
}

/// Contexts that stay the same for the whole job.
pub(crate) fn base_contexts(req: &JobRequest) -> Contexts {
    let spec = &req.spec;
    let mut ctx = Contexts::new();

    let mut github = match Value::from(spec.github.clone()) {
        Value::Object(o) => o,
        _ => Object::new(),
    };
    github.insert("job", Value::String(spec.job_id.clone()));
    github.insert(
        "workspace",
        Value::String(req.workspace.to_string_lossy().into_owned()),
    );
    github.insert_if_absent("token", Value::String(String::new()));
    github.insert_if_absent("action", Value::String(String::new()));
    ctx.insert("github", Value::Object(github));

    let mut runner = Object::new();
    runner.insert("name", Value::String(req.options.runner_name.clone()));
    runner.insert("os", Value::String(runner_os().to_owned()));
    runner.insert("arch", Value::String(runner_arch().to_owned()));
    runner.insert(
        "temp",
        Value::String(req.temp_dir.to_string_lossy().into_owned()),
    );
    runner.insert(
        "tool_cache",
        Value::String(req.tool_cache.to_string_lossy().into_owned()),
    );
    runner.insert("environment", Value::String("self-hosted".to_owned()));
    if req.options.step_debug {
        runner.insert("debug", Value::String("1".to_owned()));
    }
    ctx.insert("runner", Value::Object(runner));

    ctx.insert("vars", object_or_empty(&spec.vars));
    ctx.insert("inputs", object_or_empty(&spec.inputs));
    ctx.insert("needs", object_or_empty(&spec.needs));
    ctx.insert(
        "matrix",
        if spec.matrix.is_null() {
            Value::Object(Object::new())
        } else {
            Value::from(spec.matrix.clone())
        },
    );
    let mut strategy = Object::new();
    strategy.insert("fail-fast", Value::Bool(spec.strategy.fail_fast));
    strategy.insert(
        "job-index",
        Value::Number(f64::from(spec.strategy.job_index)),
    );
    strategy.insert(
        "job-total",
        Value::Number(f64::from(spec.strategy.job_total)),
    );
    strategy.insert(
        "max-parallel",
        Value::Number(f64::from(spec.strategy.max_parallel)),
    );
    ctx.insert("strategy", Value::Object(strategy));

    let mut secrets = Object::new();
    for (name, value) in &req.secrets {
        secrets.insert(name.clone(), Value::String(value.clone()));
    }
    secrets.insert_if_absent("GITHUB_TOKEN", Value::String(String::new()));
    ctx.insert("secrets", Value::Object(secrets));
    ctx
}

fn object_or_empty(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Object(_) => Value::from(value.clone()),
        _ => Value::Object(Object::new()),
    }
}

/// GitHub's default environment variables for a step of this job.
pub(crate) fn default_env(req: &JobRequest, event_path: &Path) -> Vec<(String, String)> {
    let github = &req.spec.github;
    let text = |key: &str| -> String {
        match github.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    };
    let mut env = vec![
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
        ("GANTRY".to_owned(), "true".to_owned()),
        (
            "GITHUB_WORKSPACE".to_owned(),
            req.workspace.to_string_lossy().into_owned(),
        ),
        (
            "GITHUB_EVENT_PATH".to_owned(),
            event_path.to_string_lossy().into_owned(),
        ),
        ("GITHUB_JOB".to_owned(), req.spec.job_id.clone()),
        ("RUNNER_OS".to_owned(), runner_os().to_owned()),
        ("RUNNER_ARCH".to_owned(), runner_arch().to_owned()),
        ("RUNNER_NAME".to_owned(), req.options.runner_name.clone()),
        ("RUNNER_ENVIRONMENT".to_owned(), "self-hosted".to_owned()),
        (
            "RUNNER_TEMP".to_owned(),
            req.temp_dir.to_string_lossy().into_owned(),
        ),
        (
            "RUNNER_TOOL_CACHE".to_owned(),
            req.tool_cache.to_string_lossy().into_owned(),
        ),
    ];
    for (var, key) in [
        ("GITHUB_SHA", "sha"),
        ("GITHUB_REF", "ref"),
        ("GITHUB_REF_NAME", "ref_name"),
        ("GITHUB_REF_TYPE", "ref_type"),
        ("GITHUB_REF_PROTECTED", "ref_protected"),
        ("GITHUB_EVENT_NAME", "event_name"),
        ("GITHUB_REPOSITORY", "repository"),
        ("GITHUB_REPOSITORY_OWNER", "repository_owner"),
        ("GITHUB_REPOSITORY_ID", "repository_id"),
        ("GITHUB_RUN_ID", "run_id"),
        ("GITHUB_RUN_NUMBER", "run_number"),
        ("GITHUB_RUN_ATTEMPT", "run_attempt"),
        ("GITHUB_ACTOR", "actor"),
        ("GITHUB_TRIGGERING_ACTOR", "triggering_actor"),
        ("GITHUB_WORKFLOW", "workflow"),
        ("GITHUB_WORKFLOW_REF", "workflow_ref"),
        ("GITHUB_HEAD_REF", "head_ref"),
        ("GITHUB_BASE_REF", "base_ref"),
        ("GITHUB_SERVER_URL", "server_url"),
        ("GITHUB_API_URL", "api_url"),
        ("GITHUB_GRAPHQL_URL", "graphql_url"),
        ("GITHUB_RETENTION_DAYS", "retention_days"),
    ] {
        env.push((var.to_owned(), text(key)));
    }
    if req.options.step_debug {
        env.push(("RUNNER_DEBUG".to_owned(), "1".to_owned()));
    }
    env
}
