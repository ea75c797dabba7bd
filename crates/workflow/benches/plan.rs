//! Planning speed on a large generated workflow: 1,000 jobs with needs (up to three earlier
//! jobs each) and matrices (every tenth job, six legs), three steps each. Times, separately,
//! parse + validate (`parse_workflow`), planning an event (`plan_run`), and driving the whole
//! run through `RunGraph` with every leg succeeding. Prints the median of several iterations;
//! asserts only that the plan is what the generator made.
//!
//! Run with `cargo bench -p gantry-workflow --bench plan` (or `bench/plan.sh`).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gantry_protocol::Conclusion;
use gantry_workflow::parse_workflow;
use gantry_workflow::plan::{Action, PlannedMatrix, RunContext, RunGraph, plan_run};
use gantry_workflow::trigger::Event;
use indexmap::IndexMap;

const JOBS: usize = 1_000;
const ITERATIONS: usize = 9;

/// A deterministic pseudo-random sequence (xorshift), so every run benchmarks the same file.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn generate(jobs: usize) -> (String, usize) {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut yaml = String::from(
        "name: Big\non:\n  push:\n    branches: [main]\n    paths-ignore: ['docs/**']\nenv:\n  CI: 'true'\njobs:\n",
    );
    let mut legs = 0;
    for i in 0..jobs {
        let _ = writeln!(yaml, "  job{i:04}:");
        let _ = writeln!(yaml, "    name: Job {i} ${{{{ github.ref_name }}}}");
        if i > 0 {
            let count = rng.next(4).min(i);
            let mut needs: Vec<usize> = (0..count).map(|_| i - 1 - rng.next(i.min(50))).collect();
            needs.sort_unstable();
            needs.dedup();
            if !needs.is_empty() {
                let list: Vec<String> = needs.iter().map(|n| format!("job{n:04}")).collect();
                let _ = writeln!(yaml, "    needs: [{}]", list.join(", "));
            }
        }
        if i % 7 == 3 {
            let _ = writeln!(yaml, "    if: github.event_name == 'push' || failure()");
        }
        yaml.push_str("    runs-on: ${{ matrix.os || 'ubuntu-latest' }}\n");
        if i % 10 == 0 {
            yaml.push_str(
                "    strategy:\n      fail-fast: false\n      max-parallel: 4\n      matrix:\n        os: [ubuntu-latest, macos-latest]\n        node: [18, 20, 22]\n        include:\n          - os: ubuntu-latest\n            experimental: true\n",
            );
            legs += 6;
        } else {
            legs += 1;
        }
        yaml.push_str(
            "    timeout-minutes: 30\n    env:\n      JOB: ${{ github.job }}\n    outputs:\n      result: ${{ steps.build.outputs.result }}\n    steps:\n      - uses: actions/checkout@v4\n      - id: build\n        run: |\n          echo building\n          echo result=ok >> \"$GITHUB_OUTPUT\"\n      - name: Test ${{ matrix.node }}\n        run: make test\n",
        );
    }
    (yaml, legs)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure<T>(mut f: impl FnMut() -> T) -> Duration {
    let samples = (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    let (yaml, expected_legs) = generate(JOBS);
    let file = ".github/workflows/big.yml";

    let parse = measure(|| parse_workflow(file, &yaml));
    let parsed = parse_workflow(file, &yaml);
    assert!(
        !parsed.has_errors(),
        "the generated workflow is valid: {:?}",
        parsed.errors().next()
    );
    let workflows = vec![parsed.workflow.expect("a model")];

    let ctx = RunContext::new(Event {
        name: "push".into(),
        git_ref: Some("refs/heads/main".into()),
        changed_paths: Some(vec!["src/main.rs".into()]),
        ..Event::default()
    });
    let plan_time = measure(|| plan_run(&workflows, &ctx));
    let plan = plan_run(&workflows, &ctx);
    let wf = &plan.workflows[0];
    assert!(wf.is_runnable(), "{:?}", wf.errors);
    let legs: usize = wf
        .jobs
        .iter()
        .map(|j| match &j.matrix {
            PlannedMatrix::Legs { legs } => legs.len(),
            PlannedMatrix::RunTime { .. } => 0,
        })
        .sum();
    assert_eq!(wf.jobs.len(), JOBS);
    assert_eq!(legs, expected_legs);

    let drive = || {
        let mut graph = RunGraph::new(wf, &workflows).expect("runnable");
        let mut running = Vec::new();
        let mut started = 0usize;
        loop {
            for action in graph.next_actions() {
                if let Action::StartLeg(start) = action {
                    started += 1;
                    running.push((start.key, start.leg));
                }
            }
            if graph.is_finished() {
                break;
            }
            let Some((key, leg)) = running.pop() else {
                panic!("legs are running until the run is finished");
            };
            graph.finish(&key, leg, Conclusion::Success, IndexMap::new());
        }
        assert_eq!(graph.conclusion(), Some(Conclusion::Success));
        started
    };
    let run_time = measure(drive);
    assert_eq!(drive(), expected_legs);

    let per_job = |d: Duration| d.as_secs_f64() * 1e6 / JOBS as f64;
    println!(
        "generated workflow: {JOBS} jobs, {expected_legs} legs, {} KiB of YAML",
        yaml.len() / 1024
    );
    println!("median of {ITERATIONS} iterations:");
    println!(
        "  parse + validate  {:>9.2} ms  ({:.1} µs/job)",
        parse.as_secs_f64() * 1e3,
        per_job(parse)
    );
    println!(
        "  plan_run          {:>9.2} ms  ({:.1} µs/job)",
        plan_time.as_secs_f64() * 1e3,
        per_job(plan_time)
    );
    println!(
        "  RunGraph (all {expected_legs} legs started and finished) {:>9.2} ms  ({:.1} µs/job)",
        run_time.as_secs_f64() * 1e3,
        per_job(run_time)
    );
}
