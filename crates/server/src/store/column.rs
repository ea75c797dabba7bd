//! Conversions between Rust values and the column types the `Any` driver carries (integers,
//! text, blobs): flags are 0/1 integers, sizes are non-negative BIGINTs, JSON is TEXT, and
//! status words are TEXT.

use super::StoreError;
use gantry_protocol::{Conclusion, FailureReason};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// A size or count for a BIGINT column (saturates at `i64::MAX`, which no log reaches).
pub(crate) fn size(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_json<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn from_json<T: DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn conclusion_str(conclusion: Conclusion) -> &'static str {
    conclusion.as_str()
}

pub(crate) fn parse_conclusion(text: &str) -> Result<Conclusion, StoreError> {
    match text {
        "success" => Ok(Conclusion::Success),
        "failure" => Ok(Conclusion::Failure),
        "cancelled" => Ok(Conclusion::Cancelled),
        "skipped" => Ok(Conclusion::Skipped),
        other => Err(StoreError::corrupt("conclusion", other)),
    }
}

pub(crate) fn reason_json(reason: &FailureReason) -> Result<String, StoreError> {
    to_json("failure reason", reason)
}

/// Typed reads from a row; a missing column or a wrong type is a bug, reported as `Backend`.
pub(crate) trait RowExt {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A non-negative integer column.
    fn unsigned(&self, column: &'static str) -> Result<u64, StoreError>;
    fn opt_conclusion(&self, column: &str) -> Result<Option<Conclusion>, StoreError>;
}

impl RowExt for AnyRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get::<String, _>(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get::<Option<String>, _>(column)?)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get::<i64, _>(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get::<Option<i64>, _>(column)?)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.int(column)? != 0)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get::<Vec<u8>, _>(column)?)
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get::<Option<Vec<u8>>, _>(column)?)
    }

    fn unsigned(&self, column: &'static str) -> Result<u64, StoreError> {
        let value = self.int(column)?;
        u64::try_from(value).map_err(|_| StoreError::corrupt(column, value))
    }

    fn opt_conclusion(&self, column: &str) -> Result<Option<Conclusion>, StoreError> {
        self.opt_text(column)?
            .map(|text| parse_conclusion(&text))
            .transpose()
    }
}
