//! A delivery's event name and id, from the headers each forge sends.
//!
//! The id is what makes a redelivery a no-op (`deliveries` is unique on forge and id):
//! - GitHub: `X-GitHub-Delivery` (kept by a redelivery);
//! - Gitea/Forgejo: `X-Gitea-Delivery` (or its `X-Forgejo-`, `X-Gogs-`, `X-GitHub-` copies);
//! - GitLab: `Idempotency-Key`, which GitLab keeps across retries of one event. GitLab's
//!   `X-Gitlab-Event-UUID` is *not* used: it is a recursion-detection id that GitLab reuses
//!   for every event a webhook-triggered request causes, so two different events can share
//!   it, and `X-Gitlab-Webhook-UUID` changes on every retry.
//!
//! Without an id header the id is `sha256:<hex>` of the body: stable across retries of the
//! same body. Headers are not covered by the signature, so a replayed body with a new id is
//! a new delivery: event-level deduplication (same repository, commit, event and action)
//! belongs to the ingester.

use super::event::Forge;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The headers a delivery is filed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryInfo {
    /// The event header's value as sent (`push`, `pull_request`, `Merge Request Hook`): what
    /// [`parse_webhook`](super::parse_webhook) expects.
    pub event: String,
    /// The delivery id (see the module docs).
    pub delivery_id: String,
}

/// Why a delivery's headers are unusable (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the delivery has no {expected} header, so its event is unknown")]
    MissingEvent { expected: &'static str },
    #[error("the {header} header is not valid: {reason}")]
    Invalid {
        header: &'static str,
        reason: &'static str,
    },
}

const GITHUB_EVENT: &[&str] = &["X-GitHub-Event"];
const GITHUB_ID: &[&str] = &["X-GitHub-Delivery"];
const GITEA_EVENT: &[&str] = &[
    "X-Gitea-Event",
    "X-Forgejo-Event",
    "X-Gogs-Event",
    "X-GitHub-Event",
];
const GITEA_ID: &[&str] = &[
    "X-Gitea-Delivery",
    "X-Forgejo-Delivery",
    "X-Gogs-Delivery",
    "X-GitHub-Delivery",
];
const GITLAB_EVENT: &[&str] = &["X-Gitlab-Event"];
const GITLAB_ID: &[&str] = &["Idempotency-Key"];

/// Reads the event name and delivery id of a delivery.
pub fn read_delivery(
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DeliveryInfo, HeaderError> {
    let (event_headers, id_headers) = match forge {
        Forge::GitHub => (GITHUB_EVENT, GITHUB_ID),
        Forge::Gitea => (GITEA_EVENT, GITEA_ID),
        Forge::GitLab => (GITLAB_EVENT, GITLAB_ID),
    };
    let (name, event) = first_header(headers, event_headers)?.ok_or(HeaderError::MissingEvent {
        expected: event_headers[0],
    })?;
    check_event(name, event)?;
    let delivery_id = match first_header(headers, id_headers)? {
        Some((name, id)) => {
            check_id(name, id)?;
            id.to_owned()
        }
        None => body_id(body),
    };
    Ok(DeliveryInfo {
        event: event.to_owned(),
        delivery_id,
    })
}

/// The id of a delivery that came without one: `sha256:<hex of the body>`.
pub fn body_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// The first of `names` present with a non-empty value.
fn first_header<'a>(
    headers: &'a HeaderMap,
    names: &[&'static str],
) -> Result<Option<(&'static str, &'a str)>, HeaderError> {
    for &name in names {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let value = value.to_str().map_err(|_| HeaderError::Invalid {
            header: name,
            reason: "the value is not visible ASCII",
        })?;
        let value = value.trim();
        if !value.is_empty() {
            return Ok(Some((name, value)));
        }
    }
    Ok(None)
}

fn check_event(header: &'static str, event: &str) -> Result<(), HeaderError> {
    if event.len() > 100 {
        return Err(HeaderError::Invalid {
            header,
            reason: "longer than 100 characters",
        });
    }
    if !event
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-' | b'.'))
    {
        return Err(HeaderError::Invalid {
            header,
            reason: "only letters, digits, spaces, `_`, `-` and `.` are expected",
        });
    }
    Ok(())
}

fn check_id(header: &'static str, id: &str) -> Result<(), HeaderError> {
    if id.len() > 200 {
        return Err(HeaderError::Invalid {
            header,
            reason: "longer than 200 characters",
        });
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeaderError::Invalid {
            header,
            reason: "it contains spaces or control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("test header"));
        }
        map
    }

    #[test]
    fn github_headers() {
        let info = read_delivery(
            Forge::GitHub,
            &headers(&[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ]),
            b"{}",
        )
        .expect("valid");
        assert_eq!(info.event, "push");
        assert_eq!(info.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    }

    #[test]
    fn gitea_and_forgejo_headers() {
        let gitea = read_delivery(
            Forge::Gitea,
            &headers(&[
                ("X-Gitea-Event", "pull_request"),
                ("X-Gitea-Delivery", "g-1"),
            ]),
            b"{}",
        )
        .expect("valid");
        assert_eq!(
            (gitea.event.as_str(), gitea.delivery_id.as_str()),
            ("pull_request", "g-1")
        );
        let forgejo = read_delivery(
            Forge::Gitea,
            &headers(&[("X-Forgejo-Event", "push"), ("X-Forgejo-Delivery", "f-1")]),
            b"{}",
        )
        .expect("valid");
        assert_eq!(
            (forgejo.event.as_str(), forgejo.delivery_id.as_str()),
            ("push", "f-1")
        );
    }

    #[test]
    fn gitlab_uses_the_idempotency_key_then_the_body_hash() {
        let with_key = read_delivery(
            Forge::GitLab,
            &headers(&[
                ("X-Gitlab-Event", "Push Hook"),
                ("Idempotency-Key", "k-1"),
                ("X-Gitlab-Event-UUID", "shared"),
            ]),
            b"{}",
        )
        .expect("valid");
        assert_eq!(with_key.delivery_id, "k-1");
        assert_eq!(with_key.event, "Push Hook");

        let without = headers(&[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Event-UUID", "shared"),
        ]);
        let a = read_delivery(Forge::GitLab, &without, b"{\"a\":1}").expect("valid");
        let again = read_delivery(Forge::GitLab, &without, b"{\"a\":1}").expect("valid");
        let b = read_delivery(Forge::GitLab, &without, b"{\"a\":2}").expect("valid");
        assert_eq!(a.delivery_id, again.delivery_id);
        assert_ne!(a.delivery_id, b.delivery_id);
        assert_eq!(
            a.delivery_id,
            "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }

    #[test]
    fn missing_or_hostile_headers_are_refused() {
        assert_eq!(
            read_delivery(Forge::GitHub, &headers(&[]), b"{}"),
            Err(HeaderError::MissingEvent {
                expected: "X-GitHub-Event"
            })
        );
        assert!(matches!(
            read_delivery(
                Forge::GitHub,
                &headers(&[("X-GitHub-Event", "push;rm -rf")]),
                b""
            ),
            Err(HeaderError::Invalid {
                header: "X-GitHub-Event",
                ..
            })
        ));
        assert!(matches!(
            read_delivery(
                Forge::GitHub,
                &headers(&[
                    ("X-GitHub-Event", "push"),
                    ("X-GitHub-Delivery", &"x".repeat(201))
                ]),
                b""
            ),
            Err(HeaderError::Invalid {
                header: "X-GitHub-Delivery",
                ..
            })
        ));
    }
}
