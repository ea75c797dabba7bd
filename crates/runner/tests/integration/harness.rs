//! Builds job specs and runs them, collecting the events.

use gantry_protocol::{Conclusion, Event, EventKind, JobSpec, StepKind, StepSpec};
use gantry_runner::{Cancel, EventSink, JobOutcome, JobRequest, RunnerOptions, run_job};
use indexmap::IndexMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().expect("lock").push(event);
    }
}

pub fn run(script: &str) -> StepSpec {
    StepSpec {
        id: String::new(),
        default_name: format!("Run {}", script.lines().next().unwrap_or("")),
        condition: "success()".into(),
        kind: StepKind::Run {
            script: script.into(),
        },
        continue_on_error: "false".into(),
        ..StepSpec::default()
    }
}

pub fn uses(action: &str, with: &[(&str, &str)]) -> StepSpec {
    StepSpec {
        id: String::new(),
        default_name: action.into(),
        condition: "success()".into(),
        kind: StepKind::Uses {
            uses: action.into(),
            with: with
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
        continue_on_error: "false".into(),
        ..StepSpec::default()
    }
}

pub trait StepExt {
    fn id(self, id: &str) -> Self;
    fn when(self, condition: &str) -> Self;
    fn env(self, name: &str, value: &str) -> Self;
    fn continue_on_error(self) -> Self;
    fn timeout(self, minutes: &str) -> Self;
}

impl StepExt for StepSpec {
    fn id(mut self, id: &str) -> Self {
        self.id = id.into();
        self.explicit_id = true;
        self
    }
    fn when(mut self, condition: &str) -> Self {
        self.condition = condition.into();
        self
    }
    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
    fn continue_on_error(mut self) -> Self {
        self.continue_on_error = "true".into();
        self
    }
    fn timeout(mut self, minutes: &str) -> Self {
        self.timeout_minutes = Some(minutes.into());
        self
    }
}

pub fn job(steps: Vec<StepSpec>) -> JobSpec {
    let mut steps = steps;
    for (i, step) in steps.iter_mut().enumerate() {
        if step.id.is_empty() {
            step.id = format!("__run_{i}");
        }
    }
    JobSpec {
        key: "test".into(),
        job_id: "test".into(),
        name: "test".into(),
        github: serde_json::json!({
            "event_name": "push",
            "ref": "refs/heads/main",
            "ref_name": "main",
            "sha": "0000000000000000000000000000000000000000",
            "repository": "acme/widgets",
            "run_id": "7",
            "run_number": "3",
            "run_attempt": "1",
            "event": {"ref": "refs/heads/main"},
        }),
        steps,
        timeout_minutes: 360.0,
        ..JobSpec::default()
    }
}

pub struct Finished {
    pub outcome: JobOutcome,
    pub events: Vec<Event>,
    pub _dirs: tempfile::TempDir,
}

impl Finished {
    pub fn log(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Log { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn annotations(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Annotation { annotation, .. } => Some(annotation.message.clone()),
                _ => None,
            })
            .collect()
    }

    /// (outcome, conclusion) of each step, in order.
    pub fn steps(&self) -> Vec<(Conclusion, Conclusion)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StepFinished {
                    outcome,
                    conclusion,
                    ..
                } => Some((*outcome, *conclusion)),
                _ => None,
            })
            .collect()
    }
}

pub struct Setup {
    pub spec: JobSpec,
    pub secrets: IndexMap<String, String>,
    pub options: RunnerOptions,
    pub dirs: tempfile::TempDir,
    pub source: Option<gantry_runner::checkout::RepoSource>,
}

impl Setup {
    pub fn new(spec: JobSpec) -> Setup {
        let dirs = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dirs.path().join("work")).expect("work");
        std::fs::create_dir_all(dirs.path().join("temp")).expect("temp");
        Setup {
            spec,
            secrets: IndexMap::new(),
            options: RunnerOptions::default(),
            dirs,
            source: None,
        }
    }

    pub fn workspace(&self) -> std::path::PathBuf {
        self.dirs.path().join("work")
    }

    pub fn request(&self) -> JobRequest {
        JobRequest {
            spec: self.spec.clone(),
            secrets: self.secrets.clone(),
            workspace: self.workspace(),
            temp_dir: self.dirs.path().join("temp"),
            tool_cache: self.dirs.path().join("tools"),
            source: self.source.clone(),
            workspace_is_working_tree: false,
            base_env: std::env::vars()
                .filter(|(k, _)| k == "PATH" || k == "HOME" || k == "LANG")
                .collect(),
            tracking_id: format!("test-{}-{}", std::process::id(), rand_suffix()),
            step_files: gantry_runner::StepFiles::default(),
            options: self.options.clone(),
        }
    }

    pub async fn run(self) -> Finished {
        self.run_with(Cancel::default()).await
    }

    pub async fn run_with(self, cancel: Cancel) -> Finished {
        let sink = Arc::new(Collect::default());
        let outcome = run_job(self.request(), sink.clone(), cancel).await;
        let events = sink.0.lock().expect("lock").clone();
        Finished {
            outcome,
            events,
            _dirs: self.dirs,
        }
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
