//! The JSON field readers both listing decoders use.
//!
//! The field readers return the reason as a `String` naming the full path
//! (`edges[3].node.createdAt: not RFC 3339`) rather than a [`DiscoverError`]: a bad field inside
//! one stream only skips that stream (the reason goes to
//! [`ListingPage::first_skip`](super::ListingPage::first_skip)), so the caller decides whether
//! it is fatal. A body that is not JSON at all fails the whole answer.

use serde_json::Value;

use super::{DiscoverError, excerpt};

pub(super) fn parse_json(body: &[u8], what: &str) -> Result<Value, DiscoverError> {
    serde_json::from_slice(body)
        .map_err(|error| DiscoverError::Decode(format!("{what}: not JSON ({error}): {}", excerpt(body))))
}

pub(super) fn str_at<'a>(value: &'a Value, key: &str, path: &str) -> Result<&'a str, String> {
    match value.get(key) {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err(format!("{path}.{key}: missing")),
        Some(_) => Err(format!("{path}.{key}: not a string")),
    }
}

/// A string that may be null or absent (titles, games): "" then.
pub(super) fn opt_str_at(value: &Value, key: &str, path: &str) -> Result<String, String> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("{path}.{key}: not a string")),
    }
}

pub(super) fn opt_bool_at(value: &Value, key: &str, path: &str) -> Result<bool, String> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(format!("{path}.{key}: not a boolean")),
    }
}

/// Twitch ids are decimal strings.
pub(super) fn id_at(value: &Value, key: &str, path: &str) -> Result<u64, String> {
    let text = str_at(value, key, path)?;
    text.parse()
        .map_err(|_| format!("{path}.{key}: {text:?} is not a numeric id"))
}

pub(super) fn count_at(value: &Value, key: &str, path: &str) -> Result<u32, String> {
    match value.get(key) {
        // Saturate rather than refuse: more than 4 billion viewers only means "very many".
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or(format!("{path}.{key}: not a viewer count")),
        None | Some(Value::Null) => Err(format!("{path}.{key}: missing")),
        Some(_) => Err(format!("{path}.{key}: not a viewer count")),
    }
}

pub(super) fn time_at(value: &Value, key: &str, path: &str) -> Result<i64, String> {
    let text = str_at(value, key, path)?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| format!("{path}.{key}: not RFC 3339"))
}
