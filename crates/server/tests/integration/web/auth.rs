//! Reading the web UI when anonymous reading is off: the sign-in form, `?token=` links, the
//! cookie, and refusals.

use super::fixture::{Site, new_job, new_run, repository, run};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gantry_server::store::{ApiRole, hash_token};

const TOKEN: &str = "gantry_test_token_0123456789";

async fn private_site() -> Site {
    let site = Site::with(|config| config.anonymous_read = false).await;
    site.db()
        .insert_api_token("reader", &hash_token(TOKEN), ApiRole::Read, 0)
        .await
        .expect("a token");
    site
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn without_a_token_pages_send_readers_to_sign_in() {
    let site = private_site().await;
    let page = site.get("/runs/run_1?x=1").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.header("location"),
        "/login?next=%2Fruns%2Frun_1%3Fx%3D1"
    );
    for path in ["/agents", "/queue", "/jobs/job_1/log.txt"] {
        assert_eq!(site.get(path).await.status, StatusCode::SEE_OTHER, "{path}");
    }
    // Data for scripts is refused outright.
    assert_eq!(
        site.get("/jobs/job_1/live").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        site.get("/jobs/job_1/state").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The form and the assets are open.
    let form = site.get("/login?next=/queue").await.ok();
    assert!(form.contains("name=\"token\""));
    assert!(form.contains("value=\"/queue\""));
    assert_eq!(site.get("/static/job.js").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_in_sets_a_cookie_that_opens_the_pages() {
    let site = private_site().await;
    let repo = repository(site.db(), "acme/app").await;
    run(
        site.db(),
        &new_run(&repo, "Secret project", "main"),
        &[new_job("b", 0, "b", &[])],
    )
    .await;

    let wrong = site
        .request(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("token=nope&next=%2Fqueue"))
                .expect("request"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That token is not valid."));
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let signed_in = site
        .request(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={TOKEN}&next=%2F%2Fevil.example")))
                .expect("request"),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in.header("location"),
        "/",
        "only local addresses are followed"
    );
    let set_cookie = signed_in.header("set-cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = cookie_of(&set_cookie);

    let page = site
        .request(
            Request::get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    let body = page.ok();
    assert!(body.contains("Secret project"));
    assert!(body.contains("Sign out"));

    // A deleted token stops working at once.
    let tokens = site.db().list_api_tokens().await.expect("tokens");
    site.db()
        .delete_api_token(&tokens[0].id)
        .await
        .expect("delete");
    let page = site
        .request(
            Request::get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_token_in_a_link_becomes_a_cookie_and_leaves_the_address() {
    let site = private_site().await;
    let page = site.get(&format!("/queue?token={TOKEN}&x=1")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/queue?x=1");
    let cookie = cookie_of(page.header("set-cookie"));
    let page = site
        .request(
            Request::get("/queue?x=1")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);

    let bad = site.get("/queue?token=wrong").await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    assert_eq!(bad.header("location"), "/login?next=%2Fqueue");
    assert!(bad.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn signing_out_clears_the_cookie() {
    let site = private_site().await;
    let page = site
        .request(
            Request::post("/logout")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.header("set-cookie").contains("Max-Age=0"));
}
