//! Reading a webhook's JSON: a typed view of an object that names the field (`pull_request.head.sha`)
//! in every error, and the checks on values that later reach git (commit ids and ref names).

use serde_json::{Map, Value};

/// Why a webhook body could not be understood. The HTTP answer is 400; the message says which
/// field was missing or wrong so the operator can compare with the forge's delivery log.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {source}{hint}")]
    NotJson {
        #[source]
        source: serde_json::Error,
        /// Extra advice when the body looks like a form (`payload=...`).
        hint: &'static str,
    },
    #[error("the body is JSON but not an object")]
    NotAnObject,
    #[error("the payload has no `{field}`")]
    MissingField { field: String },
    #[error("`{field}` is {found}, expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}` is not valid: {reason}")]
    Invalid { field: String, reason: String },
}

impl PayloadError {
    /// The field the error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            PayloadError::MissingField { field }
            | PayloadError::WrongType { field, .. }
            | PayloadError::Invalid { field, .. } => Some(field),
            PayloadError::NotJson { .. } | PayloadError::NotAnObject => None,
        }
    }
}

/// Parses a body into a JSON object.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(|source| PayloadError::NotJson {
        source,
        hint: if body.starts_with(b"payload=") {
            " (it looks like a form: set the webhook's content type to application/json)"
        } else {
            ""
        },
    })?;
    if !value.is_object() {
        return Err(PayloadError::NotAnObject);
    }
    Ok(value)
}

/// A JSON object and the path that led to it, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// `pull_request.head`; empty for the root.
    path: String,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Obj<'a> {
    /// The root object of a payload.
    pub(crate) fn root(value: &'a Value) -> Result<Obj<'a>, PayloadError> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: String::new(),
            }),
            _ => Err(PayloadError::NotAnObject),
        }
    }

    /// An object found elsewhere (an array item), with the path to show for it.
    pub(crate) fn at(value: &'a Value, path: String) -> Result<Obj<'a>, PayloadError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(PayloadError::WrongType {
                field: path,
                expected: "an object",
                found: type_name(other),
            }),
        }
    }

    /// The path of `key` in this object, for messages.
    pub(crate) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of `key`, `None` when absent or null.
    pub(crate) fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> PayloadError {
        PayloadError::WrongType {
            field: self.field(key),
            expected,
            found: type_name(found),
        }
    }

    pub(crate) fn missing(&self, key: &str) -> PayloadError {
        PayloadError::MissingField {
            field: self.field(key),
        }
    }

    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> PayloadError {
        PayloadError::Invalid {
            field: self.field(key),
            reason: reason.into(),
        }
    }

    /// A nested object that must be present.
    pub(crate) fn obj(&self, key: &str) -> Result<Obj<'a>, PayloadError> {
        self.opt_obj(key)?.ok_or_else(|| self.missing(key))
    }

    /// A nested object; absent or null is `None`, another type is an error.
    pub(crate) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, PayloadError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.field(key),
            })),
            Some(other) => Err(self.wrong_type(key, "an object", other)),
        }
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, PayloadError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, PayloadError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, PayloadError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "a boolean", other)),
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Result<u64, PayloadError> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, PayloadError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.invalid(key, format!("{n} is not a whole number >= 0"))),
            Some(other) => Err(self.wrong_type(key, "a number", other)),
        }
    }

    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>, PayloadError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// A commit id (40 or 64 hex digits; all zeros for "no commit").
    pub(crate) fn sha(&self, key: &str) -> Result<&'a str, PayloadError> {
        let value = self.str(key)?;
        check_sha(value).map_err(|reason| self.invalid(key, reason))?;
        Ok(value)
    }

    pub(crate) fn opt_sha(&self, key: &str) -> Result<Option<&'a str>, PayloadError> {
        match self.opt_str(key)? {
            None | Some("") => Ok(None),
            Some(value) => {
                check_sha(value).map_err(|reason| self.invalid(key, reason))?;
                Ok(Some(value))
            }
        }
    }

    /// A full ref (`refs/heads/main`).
    pub(crate) fn full_ref(&self, key: &str) -> Result<&'a str, PayloadError> {
        let value = self.str(key)?;
        if !value.starts_with("refs/") {
            return Err(self.invalid(key, format!("{value:?} is not a full ref (refs/...)")));
        }
        check_ref_name(value).map_err(|reason| self.invalid(key, reason))?;
        Ok(value)
    }

    /// A branch name (`main`, `feature/x`).
    pub(crate) fn branch(&self, key: &str) -> Result<&'a str, PayloadError> {
        let value = self.str(key)?;
        check_ref_name(value).map_err(|reason| self.invalid(key, reason))?;
        Ok(value)
    }
}

/// Checks a commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub(crate) fn check_sha(value: &str) -> Result<(), String> {
    if (value.len() == 40 || value.len() == 64) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a commit id (40 or 64 hex digits)",
            shorten(value)
        ))
    }
}

/// Checks a ref or branch name against git's rules (`git check-ref-format`), and refuses a
/// leading `-` so the name can never be read as an option by a command it reaches.
pub(crate) fn check_ref_name(value: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{:?} is not a valid ref name: {why}",
            shorten(value)
        ))
    };
    if value.is_empty() {
        return bad("it is empty");
    }
    if value.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if value.starts_with('-') {
        return bad("it starts with `-`");
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return bad(&format!("it contains {c:?}"));
    }
    if value.contains("..") || value.contains("@{") || value == "@" {
        return bad("it contains `..` or `@{`");
    }
    if value.ends_with('/') || value.ends_with('.') || value.ends_with(".lock") {
        return bad("it ends with `/`, `.` or `.lock`");
    }
    if value
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return bad("a component is empty or starts with `.`");
    }
    Ok(())
}

/// The first 80 characters of a value, for messages about hostile input.
fn shorten(value: &str) -> String {
    let mut out: String = value.chars().take(80).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    out
}

/// The all-zeros commit id forges use for "no commit" (branch created or deleted).
pub(crate) fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_nested_field() {
        let value = json!({"pull_request": {"head": {"sha": 5}}});
        let root = Obj::root(&value).expect("object");
        let pr = root.obj("pull_request").expect("pr");
        let head = pr.obj("head").expect("head");
        let err = head.str("sha").expect_err("number");
        assert_eq!(
            err.to_string(),
            "`pull_request.head.sha` is a number, expected a string"
        );
        let err = head.str("ref").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "the payload has no `pull_request.head.ref`"
        );
        let err = root.obj("repository").expect_err("missing");
        assert_eq!(err.field(), Some("repository"));
    }

    #[test]
    fn ref_names_follow_git_rules() {
        for good in [
            "refs/heads/main",
            "refs/tags/v1.0.0",
            "feature/x-y_z",
            "ms-viewport",
        ] {
            assert_eq!(check_ref_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "--upload-pack=touch pwned",
            "refs/heads/a..b",
            "refs/heads/a b",
            "refs/heads/x.lock",
            "refs/heads/.hidden",
            "refs//heads",
            "a\u{0}b",
            "refs/heads/a@{1}",
            "refs/heads/",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn shas_are_40_or_64_hex_digits() {
        assert!(check_sha(&"a".repeat(40)).is_ok());
        assert!(check_sha(&"0".repeat(64)).is_ok());
        assert!(check_sha("abc").is_err());
        assert!(check_sha(&"g".repeat(40)).is_err());
        assert!(check_sha(&format!("--{}", "a".repeat(38))).is_err());
    }
}
