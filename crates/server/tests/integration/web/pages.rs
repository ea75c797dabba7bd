//! The pages, through the router: what they show, that they escape what they show, and 404s.

use super::fixture::{Running, Site, agent, new_job, new_run, now, repository, run, unescape};
use axum::http::StatusCode;
use gantry_protocol::agent::JobEventKind;
use gantry_protocol::{Annotation, AnnotationLevel, Conclusion};
use gantry_server::run_state::{GraphDoc, JobNote};
use gantry_workflow::plan::RunContext;
use gantry_workflow::trigger::Event;

#[tokio::test]
async fn recent_runs_show_repository_number_workflow_ref_event_and_status() {
    let site = Site::new().await;
    let db = site.db();
    let app = repository(db, "acme/app").await;
    let lib = repository(db, "acme/lib").await;
    run(
        db,
        &new_run(&app, "Fix the build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    run(db, &new_run(&lib, "Add a feature", "feature/x"), &[]).await;

    let body = site.get("/").await.ok();
    assert!(body.contains("Fix the build"), "{body}");
    assert!(body.contains("Add a feature"));
    assert!(body.contains("acme/app") && body.contains("acme/lib"));
    assert!(body.contains("href=\"/repos/acme/app\""));
    assert!(body.contains("#1"));
    assert!(body.contains(">CI<"));
    assert!(
        body.contains(">feature/x<"),
        "refs are shown as branch names"
    );
    assert!(body.contains(">push<"));
    assert!(
        body.contains("status-queued"),
        "the status has its colour class"
    );
    assert!(body.contains("just now"), "times are relative");
}

#[tokio::test]
async fn titles_and_names_are_escaped_everywhere() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    let (stored, _) = run(
        db,
        &new_run(&repo, "<script>alert('title')</script>", "<b>branch</b>"),
        &[new_job("build", 0, "<img src=x onerror=alert(1)>", &[])],
    )
    .await;

    for page in [
        "/".to_owned(),
        format!("/runs/{}", stored.id),
        "/queue".to_owned(),
    ] {
        let body = site.get(&page).await.ok();
        assert!(!body.contains("<script>alert"), "{page}: {body}");
        assert!(!body.contains("<b>branch"), "{page}");
        assert!(!body.contains("<img src=x"), "{page}");
    }
    let body = site.get("/").await.ok();
    assert!(
        unescape(&body).contains("<script>alert('title')</script>"),
        "the title is shown as text: {body}"
    );
}

#[tokio::test]
async fn runs_are_filtered_by_repository_branch_and_status() {
    let site = Site::new().await;
    let db = site.db();
    let app = repository(db, "acme/app").await;
    let lib = repository(db, "acme/lib").await;
    run(db, &new_run(&app, "app on main", "main"), &[]).await;
    run(db, &new_run(&app, "app on topic", "topic"), &[]).await;
    run(db, &new_run(&lib, "lib on main", "main"), &[]).await;

    let body = site.get("/?repo=acme%2Fapp").await.ok();
    assert!(body.contains("app on main") && body.contains("app on topic"));
    assert!(!body.contains("lib on main"));
    assert!(
        body.contains("<option value=\"acme/app\" selected>"),
        "the filter stays selected"
    );

    let body = site.get("/?branch=main").await.ok();
    assert!(body.contains("app on main") && body.contains("lib on main"));
    assert!(!body.contains("app on topic"));

    let body = site.get("/?status=completed").await.ok();
    assert!(body.contains("No runs match."), "{body}");
    let body = site.get("/?status=queued&repo=acme/lib").await.ok();
    assert!(body.contains("lib on main") && !body.contains("app on main"));

    let body = site.get("/?repo=acme/none").await.ok();
    assert!(body.contains("There is no repository named acme/none."));

    assert_eq!(
        site.get("/?status=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        site.get("/?before=nonsense").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(site.get("/?limit=-3").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn run_lists_have_pages() {
    let site = Site::new().await;
    let db = site.db();
    let app = repository(db, "acme/app").await;
    for title in ["first run", "second run", "third run"] {
        run(db, &new_run(&app, title, "main"), &[]).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let body = site.get("/?limit=2").await.ok();
    assert!(body.contains("third run") && body.contains("second run"));
    assert!(!body.contains("first run"));
    let body = unescape(&body);
    let start = body
        .find("href=\"/?limit=2&before=")
        .expect("a link to older runs");
    let rest = &body[start + 6..];
    let link = &rest[..rest.find('"').expect("end of link")];

    let older = site.get(link).await.ok();
    assert!(older.contains("first run"), "{older}");
    assert!(!older.contains("third run"));
    assert!(
        older.contains("Newest runs"),
        "the second page links back to the first"
    );
    assert!(
        !older.contains("Older runs"),
        "the last page has no next page"
    );
}

#[tokio::test]
async fn a_repository_page_lists_its_runs() {
    let site = Site::new().await;
    let db = site.db();
    let app = repository(db, "acme/app").await;
    let lib = repository(db, "acme/lib").await;
    run(db, &new_run(&app, "an app run", "main"), &[]).await;
    run(db, &new_run(&lib, "a lib run", "main"), &[]).await;

    let body = site.get("/repos/acme/app").await.ok();
    assert!(body.contains("<h1>acme/app</h1>"), "{body}");
    assert!(body.contains("an app run") && !body.contains("a lib run"));
    let body = site.get("/repos/acme/app?status=completed").await.ok();
    assert!(!body.contains("an app run"));

    assert_eq!(
        site.get("/repos/acme/none").await.status,
        StatusCode::NOT_FOUND
    );
    let redirect = site.get(&format!("/repositories/{}", app.id)).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.header("location"), "/repos/acme/app");
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let site = Site::new().await;
    for path in [
        "/runs/run_0000",
        "/jobs/job_0000",
        "/jobs/job_0000/state",
        "/jobs/job_0000/sections",
        "/jobs/job_0000/log.txt",
        "/jobs/job_0000/live",
        "/repositories/repo_0000",
        "/repos/nobody/nothing",
        "/static/nothing.js",
    ] {
        let page = site.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    let page = site.get("/runs/%3Cscript%3E").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("<script>"), "{}", page.body);
}

const WORKFLOW: &str = "name: CI
on: push
jobs:
  build:
    strategy:
      matrix:
        os: [linux, mac]
    runs-on: ubuntu-latest
    steps:
      - run: make
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
  deploy:
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps:
      - run: make deploy
";

#[tokio::test]
async fn a_run_shows_jobs_in_needs_order_with_legs_attempts_and_why_jobs_never_ran() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    let context = RunContext::new(Event {
        name: "push".into(),
        action: None,
        git_ref: Some("refs/heads/main".into()),
        base_ref: None,
        changed_paths: None,
        workflow_name: None,
    });
    let doc = GraphDoc {
        journal: Vec::new(),
        notes: vec![JobNote {
            key: "deploy".into(),
            name: "deploy".into(),
            conclusion: Conclusion::Skipped,
            reason: Some("a job it needs failed".into()),
        }],
    };
    let mut new = new_run(&repo, "Release", "main");
    new.context = serde_json::to_string(&context).expect("context");
    new.sources = serde_json::to_string(&vec![(
        ".github/workflows/ci.yml".to_owned(),
        WORKFLOW.to_owned(),
    )])
    .expect("sources");
    new.graph = serde_json::to_string(&doc).expect("graph");
    let (stored, _) = run(
        db,
        &new,
        &[
            new_job("lint", 0, "lint", &["lint"]),
            new_job("build", 0, "build (linux)", &["linux"]),
            new_job("build", 1, "build (mac)", &["mac"]),
        ],
    )
    .await;
    // build (linux) succeeds on agent "penguin".
    let linux = Running::claim(db, "penguin", &["linux"]).await;
    linux.finish(db, Conclusion::Success).await;
    // build (mac) loses its agent and runs again.
    let mac = Running::claim(db, "apple", &["mac"]).await;
    let expired = db.expire_leases(now() + 10_000_000).await.expect("expire");
    assert_eq!(expired.len(), 1);
    db.insert_retry_attempt(&mac.job, now())
        .await
        .expect("retry");

    let body = site.get(&format!("/runs/{}", stored.id)).await.ok();
    let build = body.find("id=\"job-build\"").expect("build group");
    let lint = body.find("id=\"job-lint\"").expect("lint group");
    let deploy = body.find("id=\"job-deploy\"").expect("deploy group");
    assert!(
        build < lint && lint < deploy,
        "jobs follow the plan's needs order"
    );
    assert!(
        body.contains("needs <a href=\"#job-build\">build</a>, <a href=\"#job-lint\">lint</a>")
    );
    assert!(body.contains("build (linux)") && body.contains("build (mac)"));
    assert!(
        body.contains(">penguin</a>"),
        "the agent that ran a leg is named"
    );
    assert!(
        body.contains("attempt 2"),
        "the retried leg shows its attempt"
    );
    assert!(
        body.contains("attempt 1 (failure)"),
        "and links the earlier one"
    );
    assert!(body.contains("waiting for an agent with lint"));
    assert!(
        body.contains("a job it needs failed"),
        "a job that never ran says why"
    );
    assert!(body.contains("status-skipped"));
    assert!(!body.contains("could not be rebuilt"));
}

#[tokio::test]
async fn a_run_without_a_plan_lists_its_jobs_in_creation_order() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    let (stored, _) = run(
        db,
        &new_run(&repo, "Plain", "main"),
        &[new_job("test", 0, "test", &[])],
    )
    .await;
    let body = site.get(&format!("/runs/{}", stored.id)).await.ok();
    assert!(body.contains("could not be rebuilt"));
    assert!(body.contains("id=\"job-test\""));
    assert!(body.contains("waiting for an agent"));
}

#[tokio::test]
async fn a_job_page_splits_the_log_by_step_and_shows_it_escaped_and_coloured() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let mut job = Running::claim(db, "runner", &[]).await;
    job.log(db, "Preparing\n").await;
    job.start_step(db, 1, "Check out").await;
    job.log(db, "checked out\n").await;
    job.finish_step(db, 1, Conclusion::Success).await;
    job.start_step(db, 2, "Run tests").await;
    job.other_event(
        db,
        JobEventKind::GroupStarted {
            step: Some(1),
            title: "Compiling <deps>".into(),
        },
    )
    .await;
    job.log(db, "compiling a\ncompiling b\n").await;
    job.other_event(db, JobEventKind::GroupEnded { step: Some(1) })
        .await;
    job.log(db, "<script>alert('log')</script>\n").await;
    job.log(db, "\u{1b}[31mred\u{1b}[0m plain \u{1b}]0;title\u{7}\n")
        .await;
    job.other_event(
        db,
        JobEventKind::Annotation {
            step: Some(1),
            annotation: Annotation {
                level: AnnotationLevel::Error,
                message: "test <failed>".into(),
                title: Some("Tests".into()),
                file: Some("src/lib.rs".into()),
                line: Some(7),
                end_line: None,
                column: None,
                end_column: None,
            },
        },
    )
    .await;
    job.log(db, "half a li").await;

    let body = site.get(&format!("/jobs/{}", job.job)).await.ok();
    // Sections in log order, each step's output in its own.
    let setup = body.find("id=\"log-setup\"").expect("setup section");
    let step1 = body.find("id=\"step-1\"").expect("step 1 section");
    let step2 = body.find("id=\"step-2\"").expect("step 2 section");
    assert!(setup < step1 && step1 < step2);
    let preparing = body.find(">Preparing</div>").expect("setup output");
    let checked_out = body.find(">checked out</div>").expect("step 1 output");
    assert!(setup < preparing && preparing < step1 && step1 < checked_out && checked_out < step2);
    // Groups, escaped, around their lines.
    let group = body
        .find("<details class=\"group\"><summary>Compiling &lt;deps&gt;</summary>")
        .expect("a collapsible group");
    assert!(group < body.find(">compiling a</div>").expect("grouped line"));
    // Log text is escaped, never markup.
    assert!(unescape(&body).contains("<script>alert('log')</script>"));
    assert!(!body.contains("<script>alert"));
    // Colours become classes; other escapes disappear.
    assert!(
        body.contains("<span class=\"ansi-fg-1\">red</span> plain"),
        "{body}"
    );
    assert!(!body.contains('\u{1b}'));
    // Annotations: listed on top and highlighted in the log.
    assert!(body.contains("annotation annotation-error"));
    assert!(unescape(&body).contains("test <failed>"));
    assert!(!body.contains("<failed>"));
    assert!(body.contains("src/lib.rs:7"));
    // Steps table and live state.
    assert!(body.contains("id=\"step-row-1\"") && body.contains("Run tests"));
    assert!(body.contains("data-live=\"true\""));
    assert!(
        body.contains("src=\"/static/job.js?v="),
        "the live script is included"
    );
    // The unfinished last line is left to the live stream, which starts where the page ends.
    assert!(!body.contains("half a li"));
    let size = db.log_size(&job.job).await.expect("size");
    assert!(body.contains(&format!(
        "data-offset=\"{}\"",
        size - "half a li".len() as u64
    )));
}

#[tokio::test]
async fn a_finished_job_page_is_static_and_shows_its_result() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let mut job = Running::claim(db, "runner", &[]).await;
    job.start_step(db, 1, "Build").await;
    job.log(db, "error: it broke\nno newline at the end").await;
    job.finish_step(db, 1, Conclusion::Failure).await;
    job.finish(db, Conclusion::Failure).await;

    let body = site.get(&format!("/jobs/{}", job.job)).await.ok();
    assert!(body.contains("data-live=\"false\""));
    assert!(!body.contains("job.js"), "no script for a finished job");
    assert!(body.contains("status-failure"));
    assert!(
        body.contains(">no newline at the end</div>"),
        "a finished log is shown whole"
    );
    assert!(
        body.contains("<details open>"),
        "the failed step is expanded"
    );
}

#[tokio::test]
async fn the_raw_log_is_plain_text() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let job = Running::claim(db, "runner", &[]).await;
    job.log(db, "<html>not a page</html>\n").await;
    let page = site.get(&format!("/jobs/{}/log.txt", job.job)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.body, "<html>not a page</html>\n");
}

#[tokio::test]
async fn the_job_state_and_log_sections_are_served_alone() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    run(
        db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let mut job = Running::claim(db, "runner", &[]).await;
    job.start_step(db, 1, "Compile").await;
    job.log(db, "<i>x</i>\n").await;

    let state: serde_json::Value =
        serde_json::from_str(&site.get(&format!("/jobs/{}/state", job.job)).await.ok())
            .expect("json");
    assert_eq!(state["status"], "running");
    assert_eq!(state["badge"]["label"], "running");
    assert_eq!(state["complete"], false);
    assert_eq!(state["log_size"], 9);
    assert_eq!(state["steps"][0]["name"], "Compile");
    assert_eq!(state["steps"][0]["log_start"], 0);

    let fragment = site.get(&format!("/jobs/{}/sections", job.job)).await.ok();
    assert!(fragment.contains("<section class=\"log-section\" id=\"step-1\""));
    assert!(fragment.contains("&lt;i&gt;x&lt;/i&gt;"));
    assert!(!fragment.contains("<i>"));
    assert!(!fragment.contains("<html"), "a fragment, not a page");
}

#[tokio::test]
async fn agents_and_the_queue_say_who_could_run_what() {
    let site = Site::new().await;
    let db = site.db();
    let repo = repository(db, "acme/app").await;
    agent(db, "penguin", &["linux", "x64"]).await;
    run(
        db,
        &new_run(&repo, "Needs a GPU", "main"),
        &[
            new_job("cuda", 0, "cuda tests", &["gpu"]),
            new_job("unit", 0, "unit tests", &["linux"]),
        ],
    )
    .await;

    let agents = site.get("/agents").await.ok();
    assert!(agents.contains("penguin"));
    assert!(agents.contains("linux, x64"));
    assert!(
        agents.contains(">idle</span>") || agents.contains(" idle</span>"),
        "{agents}"
    );

    let queue = site.get("/queue").await.ok();
    assert!(queue.contains("cuda tests") && queue.contains("unit tests"));
    assert!(queue.contains("no agent has the labels gpu"), "{queue}");
    assert!(queue.contains("an agent can take it"));
    assert!(queue.contains("acme/app"));
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_assets_are_embedded() {
    let site = Site::new().await;
    let page = site.get("/").await;
    assert!(
        page.header("content-security-policy")
            .contains("script-src 'self'")
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    let css = page
        .body
        .split("href=\"")
        .find(|part| part.starts_with("/static/gantry.css"))
        .and_then(|part| part.split('"').next())
        .expect("the page links the style sheet")
        .to_owned();
    let css = site.get(&css).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    let js = site.get("/static/job.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("EventSource"));
}
