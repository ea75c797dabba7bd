//! The web UI's error answer: an HTML page with the right status. Internal errors are logged
//! with a request id and shown as that id only, never their details.

use super::Layout;
use crate::store::StoreError;
use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the database is busy or unreachable; try again in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (heading, message) = match &self {
            PageError::NotFound(what) => ("Not found", what.clone()),
            PageError::BadRequest(why) => ("Bad request", why.clone()),
            PageError::Unavailable => ("Unavailable", self.to_string()),
            PageError::Internal(error) => {
                let id = hex::encode(rand::random::<[u8; 8]>());
                tracing::error!(error = ?error, request = %id, "web page failed");
                (
                    "Internal error",
                    format!("Something went wrong (request {id}); the server log has the details."),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout::new(heading),
            status: status.as_u16(),
            heading,
            message,
        };
        (status, page).into_response()
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        match error {
            StoreError::NotFound { entity, id } => PageError::NotFound(format!(
                "There is no {entity} {}.",
                id.chars().take(80).collect::<String>()
            )),
            StoreError::Unavailable(_) => PageError::Unavailable,
            other => PageError::Internal(other.into()),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> PageError {
        PageError::Internal(error.into())
    }
}
