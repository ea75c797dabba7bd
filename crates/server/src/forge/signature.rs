//! Webhook authentication: HMAC-SHA256 signatures over the raw body (GitHub, Gitea, Forgejo)
//! and GitLab's shared token, always compared in constant time.
//!
//! Every failure is a distinct [`SignatureError`] so logs say what went wrong; the HTTP answer
//! is 401 for all of them. An empty secret never verifies anything: a repository without a
//! secret refuses signed and unsigned deliveries alike (accepting unsigned deliveries is a
//! separate, explicit per-repository setting the handler checks before calling this).

use super::event::Forge;
use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// GitHub's (and Gitea's and Forgejo's) signature header: `sha256=<64 hex digits>`.
pub const GITHUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// GitHub's legacy SHA-1 signature header, refused.
pub const GITHUB_SHA1_SIGNATURE_HEADER: &str = "X-Hub-Signature";
/// Gitea's signature header: the bare hex HMAC-SHA256.
pub const GITEA_SIGNATURE_HEADER: &str = "X-Gitea-Signature";
/// Forgejo's copy of [`GITEA_SIGNATURE_HEADER`].
pub const FORGEJO_SIGNATURE_HEADER: &str = "X-Forgejo-Signature";
/// GitLab's secret token header: the configured secret, verbatim.
pub const GITLAB_TOKEN_HEADER: &str = "X-Gitlab-Token";

/// Why a delivery is not authentic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no webhook secret is configured for this repository, so no delivery can be verified")]
    NoSecret,
    #[error("the delivery has no {header} header (is a secret set on the forge's webhook?)")]
    Missing { header: &'static str },
    #[error("the {header} header is malformed: {reason}")]
    Malformed {
        header: &'static str,
        reason: &'static str,
    },
    #[error(
        "the {header} header does not match (the secrets differ, or the body was changed on the way)"
    )]
    Mismatch { header: &'static str },
}

/// Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub fn verify_github_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    const HEADER: &str = GITHUB_SIGNATURE_HEADER;
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let value = header
        .map(str::trim)
        .ok_or(SignatureError::Missing { header: HEADER })?;
    let Some((algorithm, digest)) = value.split_once('=') else {
        return Err(SignatureError::Malformed {
            header: HEADER,
            reason: "expected `sha256=` followed by 64 hex digits",
        });
    };
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return Err(SignatureError::Malformed {
            header: HEADER,
            reason: if algorithm.eq_ignore_ascii_case("sha1") {
                "it is a SHA-1 signature (`sha1=`); only `sha256=` signatures are accepted"
            } else {
                "the algorithm is not `sha256=`"
            },
        });
    }
    if digest.is_empty() {
        // Gitea sends `sha256=` with nothing after it when its webhook has no secret.
        return Err(SignatureError::Missing { header: HEADER });
    }
    verify_hex_hmac(HEADER, secret, body, digest)
}

/// Verifies Gitea's (or Forgejo's) `X-Gitea-Signature: <hex>` over the raw body.
pub fn verify_gitea_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_bare_hex(GITEA_SIGNATURE_HEADER, secret, body, header)
}

fn verify_bare_hex(
    name: &'static str,
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    match header.map(str::trim) {
        // Gitea sends the header empty when its webhook has no secret.
        None | Some("") => Err(SignatureError::Missing { header: name }),
        Some(digest) => verify_hex_hmac(name, secret, body, digest),
    }
}

fn verify_hex_hmac(
    header: &'static str,
    secret: &[u8],
    body: &[u8],
    digest: &str,
) -> Result<(), SignatureError> {
    let mut expected = [0u8; 32];
    if digest.len() != 64 {
        return Err(SignatureError::Malformed {
            header,
            reason: "the digest is not 64 hex digits long",
        });
    }
    hex::decode_to_slice(digest, &mut expected).map_err(|_| SignatureError::Malformed {
        header,
        reason: "the digest is not hexadecimal",
    })?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch { header })
}

/// Verifies GitLab's `X-Gitlab-Token` against the configured secret, in constant time. GitLab
/// sends the secret with line breaks removed, so they are removed from the secret too.
pub fn verify_gitlab_token(secret: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    const HEADER: &str = GITLAB_TOKEN_HEADER;
    let secret: Vec<u8> = secret
        .iter()
        .copied()
        .filter(|b| *b != b'\n' && *b != b'\r')
        .collect();
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let token = match header {
        None | Some("") => return Err(SignatureError::Missing { header: HEADER }),
        Some(token) => token,
    };
    // Compare HMACs of both under one key: constant time, and the lengths do not leak.
    let tag = |bytes: &[u8]| {
        let mut mac = HmacSha256::new_from_slice(b"gantry gitlab token comparison")
            .expect("HMAC accepts keys of any length");
        mac.update(bytes);
        mac
    };
    let expected = tag(&secret).finalize().into_bytes();
    tag(token.as_bytes())
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch { header: HEADER })
}

/// Verifies a delivery with the headers its forge signs with:
/// - GitHub: `X-Hub-Signature-256` (a request with only the SHA-1 `X-Hub-Signature` is
///   refused as malformed);
/// - Gitea/Forgejo: `X-Hub-Signature-256` when it carries a digest, else `X-Gitea-Signature`,
///   else `X-Forgejo-Signature` (all the same HMAC);
/// - GitLab: `X-Gitlab-Token`.
pub fn verify_signature(
    forge: Forge,
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    match forge {
        Forge::GitHub => {
            let value = header_str(headers, GITHUB_SIGNATURE_HEADER)?;
            if value.is_none() && headers.contains_key(GITHUB_SHA1_SIGNATURE_HEADER) {
                if secret.is_empty() {
                    return Err(SignatureError::NoSecret);
                }
                return Err(SignatureError::Malformed {
                    header: GITHUB_SHA1_SIGNATURE_HEADER,
                    reason: "only the SHA-1 signature was sent; X-Hub-Signature-256 is required",
                });
            }
            verify_github_signature(secret, body, value)
        }
        Forge::Gitea => {
            let hub = header_str(headers, GITHUB_SIGNATURE_HEADER)?;
            if let Some(hub) = hub
                && hub.trim().len() > "sha256=".len()
            {
                return verify_github_signature(secret, body, Some(hub));
            }
            for name in [GITEA_SIGNATURE_HEADER, FORGEJO_SIGNATURE_HEADER] {
                if let Some(value) = header_str(headers, name)?
                    && !value.trim().is_empty()
                {
                    return verify_bare_hex(name, secret, body, Some(value));
                }
            }
            if secret.is_empty() {
                return Err(SignatureError::NoSecret);
            }
            Err(SignatureError::Missing {
                header: GITEA_SIGNATURE_HEADER,
            })
        }
        Forge::GitLab => verify_gitlab_token(secret, header_str(headers, GITLAB_TOKEN_HEADER)?),
    }
}

/// A header as text; a value that is not visible ASCII is malformed.
fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, SignatureError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| SignatureError::Malformed {
                header: name,
                reason: "the value is not visible ASCII",
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector from GitHub's "Validating webhook deliveries".
    #[test]
    fn github_documentation_vector_verifies() {
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_github_signature(
                b"It's a Secret to Everybody",
                b"Hello, World!",
                Some(header)
            ),
            Ok(())
        );
        assert_eq!(
            verify_github_signature(
                b"It's a Secret to Everybody",
                b"Hello, World?",
                Some(header)
            ),
            Err(SignatureError::Mismatch {
                header: GITHUB_SIGNATURE_HEADER
            })
        );
    }

    #[test]
    fn gitlab_token_compares_whole_values() {
        assert_eq!(verify_gitlab_token(b"s3cret", Some("s3cret")), Ok(()));
        assert_eq!(verify_gitlab_token(b"s3cret\n", Some("s3cret")), Ok(()));
        for wrong in ["s3cre", "s3cret2", "S3CRET", " s3cret"] {
            assert_eq!(
                verify_gitlab_token(b"s3cret", Some(wrong)),
                Err(SignatureError::Mismatch {
                    header: GITLAB_TOKEN_HEADER
                }),
                "{wrong:?}"
            );
        }
        assert_eq!(
            verify_gitlab_token(b"s3cret", None),
            Err(SignatureError::Missing {
                header: GITLAB_TOKEN_HEADER
            })
        );
        assert_eq!(
            verify_gitlab_token(b"", Some("")),
            Err(SignatureError::NoSecret)
        );
    }
}
