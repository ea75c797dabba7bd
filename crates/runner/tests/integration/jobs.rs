//! Whole jobs: step order, status functions, env and output files, masking, cancel, timeouts.

use crate::harness::*;
use gantry_protocol::Conclusion::{self, *};
use gantry_protocol::EventKind;
use gantry_runner::Cancel;
use std::time::{Duration, Instant};

#[tokio::test]
async fn outputs_and_env_flow_from_step_to_step_and_to_job_outputs() {
    let mut spec =
        job(vec![
        run("echo \"greeting=hello\" >> \"$GITHUB_OUTPUT\"\necho \"FOO=bar\" >> \"$GITHUB_ENV\"\n\
             printf 'MULTI<<EOF\\nline1\\nline2\\nEOF\\n' >> \"$GITHUB_ENV\"")
        .id("first"),
        run("echo \"${{ steps.first.outputs.greeting }} $FOO ${{ env.FOO }}\"\necho \"$MULTI\""),
    ]);
    spec.outputs.insert(
        "greeting".into(),
        "${{ steps.first.outputs.greeting }} world".into(),
    );
    let done = Setup::new(spec).run().await;
    assert_eq!(done.outcome.conclusion, Success, "{:?}", done.annotations());
    assert_eq!(done.log(), "hello bar bar\nline1\nline2\n");
    assert_eq!(done.outcome.outputs["greeting"], "hello world");
}

#[tokio::test]
async fn every_step_gets_empty_files_of_its_own_and_late_writes_to_old_ones_are_ignored() {
    // Files of finished steps are recycled (renamed) for the next steps: each step must still
    // see empty files under new names, and what a step wrote must never reach a later step.
    let spec = job(vec![
        run("echo \"$GITHUB_OUTPUT $GITHUB_ENV $GITHUB_PATH $GITHUB_STATE $GITHUB_STEP_SUMMARY\" \
             > \"$RUNNER_TEMP/first\"\n\
             echo a=1 >> \"$GITHUB_OUTPUT\"; echo A=1 >> \"$GITHUB_ENV\"; echo '# one' >> \"$GITHUB_STEP_SUMMARY\"")
        .id("one"),
        run("for f in \"$GITHUB_OUTPUT\" \"$GITHUB_ENV\" \"$GITHUB_PATH\" \"$GITHUB_STATE\" \"$GITHUB_STEP_SUMMARY\"; do\n\
               test -f \"$f\" && test ! -s \"$f\" || { echo \"not empty: $f\"; exit 1; }\n\
               case \" $(cat \"$RUNNER_TEMP/first\") \" in *\" $f \"*) echo \"reused name: $f\"; exit 1;; esac\n\
             done\n\
             echo \"$GITHUB_OUTPUT\" > \"$RUNNER_TEMP/second\"")
        .id("two"),
        // A late writer: appends to the previous step's output file by name.
        run("echo late=1 >> \"$(cat \"$RUNNER_TEMP/second\")\"; echo \"A=$A\"").id("three"),
        run("echo \"${{ steps.one.outputs.a }}-${{ steps.two.outputs.late }}-${{ steps.three.outputs.late }}\""),
    ]);
    let done = Setup::new(spec).run().await;
    assert_eq!(
        done.outcome.conclusion,
        Success,
        "{:?} {}",
        done.annotations(),
        done.log()
    );
    assert_eq!(done.log(), "A=1\n1--\n");
}

#[tokio::test]
async fn a_failing_step_skips_the_rest_but_failure_and_always_steps_run() {
    let spec = job(vec![
        run("echo one; exit 3").id("bad"),
        run("echo never"),
        run("echo on-failure ${{ steps.bad.outcome }}").when("failure()"),
        run("echo always").when("always()"),
        run("echo ok-step").when("success()"),
    ]);
    let done = Setup::new(spec).run().await;
    assert_eq!(done.outcome.conclusion, Failure);
    assert_eq!(
        done.steps(),
        vec![
            (Failure, Failure),
            (Skipped, Skipped),
            (Success, Success),
            (Success, Success),
            (Skipped, Skipped)
        ]
    );
    assert_eq!(done.log(), "one\non-failure failure\nalways\n");
    assert!(
        done.annotations()
            .iter()
            .any(|a| a == "Process completed with exit code 3.")
    );
}

#[tokio::test]
async fn continue_on_error_keeps_the_job_green_with_outcome_failure() {
    let spec = job(vec![
        run("exit 1").id("flaky").continue_on_error(),
        run("echo ${{ steps.flaky.outcome }}/${{ steps.flaky.conclusion }}"),
    ]);
    let done = Setup::new(spec).run().await;
    assert_eq!(done.outcome.conclusion, Success);
    assert_eq!(done.steps()[0], (Failure, Success));
    assert_eq!(done.log(), "failure/success\n");
}

#[tokio::test]
async fn secrets_are_masked_even_across_lines_and_in_expressions() {
    let mut setup = Setup::new(job(vec![
        run("echo \"token is ${{ secrets.TOKEN }}\"\necho \"$SECRET_ENV\"\necho '::add-mask::extra-value'\necho extra-value")
            .env("SECRET_ENV", "${{ secrets.TOKEN }}"),
    ]));
    setup.secrets.insert("TOKEN".into(), "s3cr3t-v4lue".into());
    let done = setup.run().await;
    assert_eq!(done.outcome.conclusion, Success);
    assert_eq!(done.log(), "token is ***\n***\n***\n");
}

#[tokio::test]
async fn github_default_variables_are_set() {
    let done = Setup::new(job(vec![run(
        "echo \"$CI $GITHUB_ACTIONS $GANTRY $GITHUB_REF $GITHUB_REPOSITORY $GITHUB_RUN_NUMBER $GITHUB_JOB $RUNNER_OS\"\n\
         test -f \"$GITHUB_EVENT_PATH\" && grep -q refs/heads/main \"$GITHUB_EVENT_PATH\" && echo event-ok\n\
         test \"$PWD\" = \"$GITHUB_WORKSPACE\" && echo cwd-ok",
    )]))
    .run()
    .await;
    assert_eq!(done.outcome.conclusion, Success, "{}", done.log());
    assert_eq!(
        done.log(),
        "true true true refs/heads/main acme/widgets 3 test Linux\nevent-ok\ncwd-ok\n"
    );
}

#[tokio::test]
async fn github_path_prepends_for_later_steps() {
    let done = Setup::new(job(vec![
        run("mkdir -p \"$RUNNER_TEMP/bin\"\nprintf '#!/bin/sh\\necho tool-ran\\n' > \"$RUNNER_TEMP/bin/mytool\"\nchmod +x \"$RUNNER_TEMP/bin/mytool\"\necho \"$RUNNER_TEMP/bin\" >> \"$GITHUB_PATH\""),
        run("mytool"),
    ]))
    .run()
    .await;
    assert_eq!(done.outcome.conclusion, Success, "{:?}", done.annotations());
    assert_eq!(done.log(), "tool-ran\n");
}

#[tokio::test]
async fn a_missing_working_directory_or_shell_is_a_clear_step_failure() {
    let mut missing_dir = run("pwd");
    missing_dir.working_directory = Some("nope".into());
    let mut missing_shell = run("echo hi").when("always()");
    missing_shell.shell = Some("no-such-shell-xyz {0}".into());
    let done = Setup::new(job(vec![missing_dir, missing_shell]))
        .run()
        .await;
    assert_eq!(done.outcome.conclusion, Failure);
    let annotations = done.annotations().join("\n");
    assert!(
        annotations.contains("working-directory `nope` does not exist"),
        "{annotations}"
    );
    assert!(
        annotations.contains("`no-such-shell-xyz` was not found in PATH"),
        "{annotations}"
    );
}

#[tokio::test]
async fn a_step_timeout_stops_the_step_and_fails_it() {
    let done = Setup::new(job(vec![run("sleep 30").timeout("0.01")]))
        .run()
        .await;
    assert_eq!(done.outcome.conclusion, Failure);
    assert!(
        done.annotations()
            .iter()
            .any(|a| a.starts_with("The step has timed out")),
        "{:?}",
        done.annotations()
    );
}

#[tokio::test]
async fn cancelling_interrupts_the_step_then_runs_always_steps() {
    let cancel = Cancel::default();
    let trigger = cancel.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let done = Setup::new(job(vec![
        run("echo started; sleep 30"),
        run("echo not-me"),
        run("echo cleanup ${{ job.status }}").when("always()"),
        run("echo cancelled-seen").when("cancelled()"),
    ]))
    .run_with(cancel)
    .await;
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(done.outcome.conclusion, Cancelled);
    assert_eq!(done.log(), "started\ncleanup cancelled\ncancelled-seen\n");
    let outcomes: Vec<Conclusion> = done.steps().iter().map(|s| s.0).collect();
    assert_eq!(outcomes, vec![Cancelled, Skipped, Success, Success]);
}

#[tokio::test]
async fn step_summaries_become_events() {
    let done = Setup::new(job(vec![run(
        "echo '### Results' >> \"$GITHUB_STEP_SUMMARY\"",
    )]))
    .run()
    .await;
    let summary = done.events.iter().find_map(|e| match &e.kind {
        EventKind::StepSummary { markdown, .. } => Some(markdown.clone()),
        _ => None,
    });
    assert_eq!(summary.as_deref(), Some("### Results\n"));
}

fn write(path: &std::path::Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

#[tokio::test]
async fn composite_actions_take_inputs_run_nested_steps_and_return_outputs() {
    let setup = Setup::new(job(vec![
        uses("./actions/greet", &[("who", "${{ github.repository }}")]).id("greet"),
        run("echo \"got: ${{ steps.greet.outputs.greeting }}\""),
    ]));
    let ws = setup.workspace();
    write(
        &ws.join("actions/greet/action.yml"),
        "name: Greet\ninputs:\n  who:\n    required: true\n  punctuation:\n    default: '!'\n\
         outputs:\n  greeting:\n    value: ${{ steps.inner.outputs.text }}\n\
         runs:\n  using: composite\n  steps:\n\
         \x20   - run: echo \"hello $WHO${{ inputs.punctuation }}\"\n      shell: bash\n      env:\n        WHO: ${{ inputs.who }}\n\
         \x20   - uses: ./actions/shout\n      id: inner\n      with:\n        text: hi ${{ inputs.who }}\n",
    );
    write(
        &ws.join("actions/shout/action.yml"),
        "name: Shout\ninputs:\n  text: {}\noutputs:\n  text:\n    value: ${{ steps.up.outputs.loud }}\n\
         runs:\n  using: composite\n  steps:\n\
         \x20   - id: up\n      shell: sh\n      run: echo \"loud=$(echo '${{ inputs.text }}' | tr a-z A-Z)\" >> \"$GITHUB_OUTPUT\"\n",
    );
    let done = setup.run().await;
    assert_eq!(done.outcome.conclusion, Success, "{:?}", done.annotations());
    assert_eq!(done.log(), "hello acme/widgets!\ngot: HI ACME/WIDGETS\n");
}

#[tokio::test]
async fn a_failing_composite_step_fails_the_outer_step() {
    let setup = Setup::new(job(vec![uses("./act", &[])]));
    write(
        &setup.workspace().join("act/action.yml"),
        "name: x\nruns:\n  using: composite\n  steps:\n    - run: exit 4\n      shell: bash\n    - run: echo after\n      shell: bash\n",
    );
    let done = setup.run().await;
    assert_eq!(done.outcome.conclusion, Failure);
    assert!(!done.log().contains("after"));
}

#[tokio::test]
async fn unavailable_actions_fail_before_any_step_runs() {
    let done = Setup::new(job(vec![
        run("echo first"),
        uses("actions/setup-node@v4", &[("node-version", "20")]),
    ]))
    .run()
    .await;
    assert_eq!(done.outcome.conclusion, Failure);
    assert_eq!(done.log(), "", "no step ran");
    let annotations = done.annotations().join("\n");
    assert!(
        annotations.contains("actions/setup-node@v4"),
        "{annotations}"
    );
    assert!(
        annotations.contains("--skip-unavailable-actions"),
        "{annotations}"
    );
}

#[tokio::test]
async fn unavailable_actions_can_be_skipped_with_a_warning() {
    let mut setup = Setup::new(job(vec![
        run("echo first"),
        uses("actions/setup-node@v4", &[]),
        run("echo last"),
    ]));
    setup.options.skip_unavailable_actions = true;
    let done = setup.run().await;
    assert_eq!(done.outcome.conclusion, Success);
    assert_eq!(done.log(), "first\nlast\n");
    assert!(done.annotations()[0].contains("Skipping steps"));
}

#[tokio::test]
async fn checkout_brings_the_run_commit_into_the_workspace() {
    let repo = tempfile::tempdir().expect("repo");
    let git = |args: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("git {args}"))
            .current_dir(repo.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("git");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git("init -q -b main");
    std::fs::write(repo.path().join("hello.txt"), "from the repo\n").expect("write");
    git("add hello.txt");
    git("commit -qm first");
    let sha = git("rev-parse HEAD");
    let mut setup = Setup::new(job(vec![
        uses("actions/checkout@v4", &[]).id("co"),
        run("cat hello.txt; git rev-parse HEAD; echo ${{ steps.co.outputs.commit }}"),
        uses("actions/checkout@v4", &[("path", "sub")]),
        run("cat sub/hello.txt"),
        uses("actions/checkout@v4", &[("path", "../escape")]).when("always()"),
    ]));
    setup.source = Some(gantry_runner::checkout::RepoSource {
        url: gantry_runner::checkout::file_url(repo.path()),
        sha: sha.clone(),
        git_ref: Some("refs/heads/main".into()),
    });
    let done = setup.run().await;
    assert!(
        done.log()
            .contains(&format!("from the repo\n{sha}\n{sha}\n"))
    );
    assert!(done.log().ends_with("from the repo\n"));
    assert_eq!(done.steps()[4].0, Failure, "path outside the workspace");
    assert!(
        done.annotations()
            .iter()
            .any(|a| a.contains("`../escape` is outside the workspace"))
    );
}
