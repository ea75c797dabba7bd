//! The job page in a real browser: headless Chromium driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`; `.ci/setup` installs them). The server runs in this
//! process on 127.0.0.1, behind a small TCP relay that can cut every open connection; the test
//! writes log chunks, steps and the job's end through the store while the page is open, and
//! checks that the page shows them without being reloaded, also after its connection was cut.
//!
//! Without Chromium the test fails when `CI` is set, and is skipped (saying so) otherwise.

use crate::web::fixture::{Running, Site, new_job, new_run, repository, run};
use gantry_protocol::Conclusion;
use std::future::Future;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thirtyfour::prelude::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one expected change may take to show.
const WAIT: Duration = Duration::from_secs(8);

/// The whole test's bound.
const BOUND: Duration = Duration::from_secs(28);

/// Whether the browser can run here; panics in CI when it cannot.
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .filter(|path| !std::path::Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} missing: in CI the browser test must run (.ci/setup installs the Debian packages \
             chromium and chromium-driver)",
            missing.join(" and ")
        );
    }
    eprintln!(
        "skipped: {} missing (apt-get install chromium chromium-driver to run the browser test)",
        missing.join(" and ")
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Starts chromedriver on a free port and waits until it answers.
async fn start_chromedriver() -> (Child, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client
            .get(format!("{url}/status"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return (child, url);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not answer within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP relay in front of the server whose open connections can be cut, as a flaky network
/// would.
struct Relay {
    address: String,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a relay port");
        let address = listener.local_addr().expect("address").to_string();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = connections.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().expect("relay connections").push(task);
            }
        });
        Relay {
            address,
            connections,
            accepted,
            accept,
        }
    }

    /// Cuts every connection open now (and says how many); new ones are relayed as before.
    fn cut(&self) -> usize {
        let mut connections = self.connections.lock().expect("relay connections");
        let open = connections
            .iter()
            .filter(|task| !task.is_finished())
            .count();
        for task in connections.drain(..) {
            task.abort();
        }
        open
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Waits until `check` holds, at most [`WAIT`].
async fn wait_for<F, Fut>(what: &str, mut check: F) -> WebDriverResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = WebDriverResult<bool>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the page did not show {what} within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(driver: &WebDriver, css: &str) -> WebDriverResult<String> {
    match driver.find_all(By::Css(css)).await?.first() {
        Some(element) => element.text().await,
        None => Ok(String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_page_shows_new_log_lines_and_the_final_status_without_reloading() {
    if !browser_available() {
        return;
    }
    tokio::time::timeout(BOUND, scenario())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {BOUND:?}"));
}

async fn scenario() {
    let site = Site::new().await;
    let db = site.db().clone();
    let repo = repository(&db, "acme/app").await;
    run(
        &db,
        &new_run(&repo, "Build", "main"),
        &[new_job("build", 0, "build", &[])],
    )
    .await;
    let mut job = Running::claim(&db, "runner", &[]).await;
    job.start_step(&db, 1, "Build").await;
    job.log(&db, "first line\n").await;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the server");
    let server_address = listener.local_addr().expect("address").to_string();
    let server = tokio::spawn(axum::serve(listener, site.router.clone()).into_future());
    let relay = Relay::start(server_address).await;
    let base = format!("http://{}", relay.address);

    let (_chromedriver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).expect("binary");
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,900",
    ] {
        caps.add_arg(arg).expect("argument");
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
        .expect("argument");
    let driver = WebDriver::new(&driver_url, caps)
        .await
        .expect("a Chromium session");

    let outcome = follow_the_log(&driver, &base, &relay, &db, &mut job).await;
    let _ = driver.quit().await;
    server.abort();
    outcome.expect("the browser answers");
}

async fn follow_the_log(
    driver: &WebDriver,
    base: &str,
    relay: &Relay,
    db: &gantry_server::store::Db,
    job: &mut Running,
) -> WebDriverResult<()> {
    driver.goto(format!("{base}/jobs/{}", job.job)).await?;
    driver
        .execute(
            "window.gantryPageMarker = 'same page'; return true;",
            vec![],
        )
        .await?;
    wait_for("the first line", || async {
        Ok(text_of(driver, "#log").await?.contains("first line"))
    })
    .await?;

    // New lines appear: markup in them is text, colours are rendered.
    job.log(db, "second <b>line</b>\n\u{1b}[32mgreen text\u{1b}[0m\n")
        .await;
    wait_for("the appended lines", || async {
        let log = text_of(driver, "#log").await?;
        Ok(log.contains("second <b>line</b>") && log.contains("green text"))
    })
    .await?;
    assert!(
        driver.find_all(By::Css("#log b")).await?.is_empty(),
        "log text never becomes markup"
    );
    assert_eq!(
        text_of(driver, "#log .ansi-fg-2").await?,
        "green text",
        "ANSI colours are rendered"
    );

    // The connection drops; what was written meanwhile arrives once the page reconnects, and
    // nothing arrives twice.
    let accepted = relay.accepted();
    assert!(relay.cut() >= 1, "the live stream's connection was open");
    job.log(db, "written while the page was away\n").await;
    wait_for("the lines written while disconnected", || async {
        Ok(text_of(driver, "#log")
            .await?
            .contains("written while the page was away"))
    })
    .await?;
    assert!(relay.accepted() > accepted, "the page connected again");
    let log = text_of(driver, "#log").await?;
    assert_eq!(log.matches("second <b>line</b>").count(), 1, "{log}");
    assert_eq!(
        log.matches("written while the page was away").count(),
        1,
        "{log}"
    );

    // Invalid UTF-8 shows as U+FFFD and does not throw the page's byte count off.
    let size = db.log_size(&job.job).await.expect("size");
    db.append_log_chunk(&job.job, &job.lease, size, b"bad \xff byte\n")
        .await
        .expect("append");
    gantry_server::web::notify_log(&job.job);
    job.log(db, "after the bad byte\n").await;
    wait_for("the lines around an invalid byte", || async {
        let log = text_of(driver, "#log").await?;
        Ok(log.contains("bad \u{fffd} byte") && log.contains("after the bad byte"))
    })
    .await?;
    let log = text_of(driver, "#log").await?;
    assert_eq!(log.matches("after the bad byte").count(), 1, "{log}");

    // A new step gets its own section and row; a line without its end shows too.
    job.finish_step(db, 1, Conclusion::Success).await;
    job.start_step(db, 2, "Test").await;
    job.log(db, "in step two\nno newline yet").await;
    wait_for("the second step's section", || async {
        let section = text_of(driver, "#step-2").await?;
        Ok(section.contains("in step two") && section.contains("no newline yet"))
    })
    .await?;
    wait_for("the second step's row", || async {
        Ok(text_of(driver, "#step-row-2").await?.contains("Test"))
    })
    .await?;
    assert!(
        !text_of(driver, "#step-1").await?.contains("in step two"),
        "each step's output stays in its section"
    );

    // The job ends: the final status shows.
    job.log(db, ", now it has one\n").await;
    job.finish_step(db, 2, Conclusion::Success).await;
    job.finish(db, Conclusion::Success).await;
    wait_for("the final status", || async {
        let badge = text_of(driver, "#job-badge").await?;
        let status = text_of(driver, "#live-status").await?;
        Ok(badge.contains("success") && status.contains("finished"))
    })
    .await?;
    wait_for("the whole last line", || async {
        Ok(text_of(driver, "#log")
            .await?
            .contains("no newline yet, now it has one"))
    })
    .await?;
    let marker = driver
        .execute("return window.gantryPageMarker || null;", vec![])
        .await?;
    assert_eq!(
        marker.json().as_str(),
        Some("same page"),
        "the page was never reloaded"
    );
    let log = text_of(driver, "#log").await?;
    assert!(
        log.contains("first line") && log.contains("in step two"),
        "{log}"
    );
    Ok(())
}
