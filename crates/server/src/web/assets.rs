//! The style sheet and the script, compiled into the binary (`include_str!`): nothing is read
//! from disk at run time. Pages link them with a content hash in the query (`?v=…`), so a new
//! binary's files are fetched at once and the old ones may be cached for long.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const CSS: &str = include_str!("static/gantry.css");
const JS: &str = include_str!("static/job.js");

struct Asset {
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const ASSETS: [Asset; 2] = [
    Asset {
        name: "gantry.css",
        body: CSS,
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "job.js",
        body: JS,
        content_type: "text/javascript; charset=utf-8",
    },
];

/// `/static/<name>?v=<first 12 hex digits of the content's sha256>`.
fn versioned(name: &str, body: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    format!("/static/{name}?v={}", &digest[..12])
}

pub fn css_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| versioned("gantry.css", CSS))
}

pub fn js_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| versioned("job.js", JS))
}

/// `GET /static/{file}`.
pub async fn serve_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
