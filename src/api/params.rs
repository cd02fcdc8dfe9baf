//! Query-string parsing and opaque cursors. Every problem is an [`ApiError`] naming the
//! parameter, so a client learns which one to fix.

use super::handlers::ApiError;
use crate::record::Status;
use crate::segments::SegmentState;
use crate::store::{NamePosition, Position, SegmentFilter, Sort};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// The parsed query string of one request.
#[derive(Debug)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `raw`; a parameter not in `allowed`, or given twice, is an error.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                let known = if allowed.is_empty() {
                    "this route takes no parameters".to_string()
                } else {
                    format!("known: {}", allowed.join(", "))
                };
                return Err(ApiError::bad_parameter(
                    &name,
                    format!("unknown parameter ({known})"),
                ));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(ApiError::bad_parameter(&name, "given more than once"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Query { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
                _ => Err(ApiError::bad_parameter(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"),
                )),
            },
        }
    }

    /// A non-empty text value.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            Some("") => Err(ApiError::bad_parameter(name, "must not be empty")),
            other => Ok(other),
        }
    }

    /// An id: decimal digits.
    pub fn id(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|text| {
                text.parse::<u64>()
                    .map_err(|_| ApiError::bad_parameter(name, format!("must be a numeric id, not {text:?}")))
            })
            .transpose()
    }

    /// A time: unix seconds or RFC 3339.
    pub fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name).map(|text| parse_time(name, text)).transpose()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(text) => Err(ApiError::bad_parameter(
                name,
                format!("must be true or false, not {text:?}"),
            )),
        }
    }

    /// `status`: a filterable status.
    pub fn status(&self) -> Result<Option<Status>, ApiError> {
        match self.get("status") {
            None => Ok(None),
            Some("live") => Ok(Some(Status::Live)),
            Some("pending") => Ok(Some(Status::Pending)),
            Some("found") => Ok(Some(Status::Found)),
            Some("not_found") => Ok(Some(Status::NotFound)),
            Some(text) => Err(ApiError::bad_parameter(
                "status",
                format!("must be live, pending, found or not_found, not {text:?}"),
            )),
        }
    }

    /// `segments_state`: what the capture's segment check found, or `unchecked`.
    pub fn segments_state(&self) -> Result<Option<SegmentFilter>, ApiError> {
        match self.get("segments_state") {
            None => Ok(None),
            Some("ok") => Ok(Some(SegmentFilter::Checked(SegmentState::Ok))),
            Some("partial") => Ok(Some(SegmentFilter::Checked(SegmentState::Partial))),
            Some("gone") => Ok(Some(SegmentFilter::Checked(SegmentState::Gone))),
            Some("unchecked") => Ok(Some(SegmentFilter::Unchecked)),
            Some(text) => Err(ApiError::bad_parameter(
                "segments_state",
                format!("must be ok, partial, gone or unchecked, not {text:?}"),
            )),
        }
    }

    /// `sort`: recent (default) or views.
    pub fn sort(&self) -> Result<Sort, ApiError> {
        match self.get("sort") {
            None | Some("recent") => Ok(Sort::Recent),
            Some("views") => Ok(Sort::Views),
            Some(text) => Err(ApiError::bad_parameter(
                "sort",
                format!("must be recent or views, not {text:?}"),
            )),
        }
    }
}

/// Unix seconds or RFC 3339 (any offset).
pub fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp())
        .map_err(|_| {
            ApiError::bad_parameter(
                name,
                format!("must be unix seconds or RFC 3339 (2024-05-01T18:00:00Z), not {text:?}"),
            )
        })
}

fn bad_cursor() -> ApiError {
    ApiError::bad_parameter(
        "cursor",
        "is not a cursor this server gave out (pass next_cursor back unchanged)",
    )
}

fn decode(cursor: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

fn numbers<const N: usize>(text: &str) -> Result<[i64; N], ApiError> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != N {
        return Err(bad_cursor());
    }
    let mut out = [0; N];
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = part.parse().map_err(|_| bad_cursor())?;
    }
    Ok(out)
}

/// A list cursor. Ids above `i64::MAX` do not occur (Twitch ids are far smaller), so every
/// number is written as i64.
pub fn encode_position(position: Position) -> String {
    let text = match position {
        Position::Recent((start, id)) => format!("r{start}.{id}"),
        Position::Views(views, (start, id)) => format!("v{views}.{start}.{id}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

/// Decodes a list cursor; it must belong to the same sort order.
pub fn decode_position(cursor: &str, sort: Sort) -> Result<Position, ApiError> {
    let text = decode(cursor)?;
    let position = match text.split_at_checked(1) {
        Some(("r", rest)) => {
            let [start, id] = numbers::<2>(rest)?;
            Position::Recent((start, u64::try_from(id).map_err(|_| bad_cursor())?))
        }
        Some(("v", rest)) => {
            let [views, start, id] = numbers::<3>(rest)?;
            let views = u32::try_from(views).map_err(|_| bad_cursor())?;
            Position::Views(views, (start, u64::try_from(id).map_err(|_| bad_cursor())?))
        }
        _ => return Err(bad_cursor()),
    };
    match (position, sort) {
        (Position::Recent(_), Sort::Recent) | (Position::Views(..), Sort::Views) => Ok(position),
        _ => Err(ApiError::bad_parameter(
            "cursor",
            "belongs to the other sort order; start again without a cursor",
        )),
    }
}

pub fn encode_name_position(position: &NamePosition) -> String {
    let text = match position {
        NamePosition::Prefix(login, id) => format!("p{id}.{login}"),
        NamePosition::Contains(login, id) => format!("c{id}.{login}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_name_position(cursor: &str) -> Result<NamePosition, ApiError> {
    let text = decode(cursor)?;
    let (kind, rest) = text.split_at_checked(1).ok_or_else(bad_cursor)?;
    let (id, login) = rest.split_once('.').ok_or_else(bad_cursor)?;
    let id: u64 = id.parse().map_err(|_| bad_cursor())?;
    match kind {
        "p" => Ok(NamePosition::Prefix(login.to_string(), id)),
        "c" => Ok(NamePosition::Contains(login.to_string(), id)),
        _ => Err(bad_cursor()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for position in [
            Position::Recent((1_700_000_000, 42)),
            Position::Recent((-5, 0)),
            Position::Views(1234, (1_700_000_000, 9)),
        ] {
            let sort = match position {
                Position::Recent(_) => Sort::Recent,
                Position::Views(..) => Sort::Views,
            };
            assert_eq!(
                decode_position(&encode_position(position), sort).ok(),
                Some(position)
            );
        }
        let views = encode_position(Position::Views(1, (2, 3)));
        assert!(decode_position(&views, Sort::Recent).is_err());
        for garbage in [
            "",
            "!!",
            "cjE",
            "r1.2",
            &URL_SAFE_NO_PAD.encode("r1.x"),
            &URL_SAFE_NO_PAD.encode("v-1.2.3"),
        ] {
            assert!(decode_position(garbage, Sort::Recent).is_err(), "{garbage}");
        }
        for name in [
            NamePosition::Prefix("xqc".into(), 7),
            NamePosition::Contains("a.b".into(), 0),
        ] {
            assert_eq!(
                decode_name_position(&encode_name_position(&name)).ok(),
                Some(name)
            );
        }
        assert!(decode_name_position(&URL_SAFE_NO_PAD.encode("z1.x")).is_err());
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let query = Query::parse(
            "limit=10&status=found&since=2024-05-01T18:00:00Z",
            &["limit", "status", "since"],
        )
        .expect("parses");
        assert_eq!(query.limit().ok(), Some(10));
        assert_eq!(query.status().ok(), Some(Some(Status::Found)));
        assert_eq!(query.time("since").ok(), Some(Some(1_714_586_400)));
        let unknown = Query::parse("stremer=x", &["streamer"]).expect_err("unknown");
        assert!(unknown.message.contains("stremer"), "{}", unknown.message);
        assert!(Query::parse("a=1&a=2", &["a"]).is_err());
        let query = Query::parse("limit=0", &["limit"]).expect("parses");
        assert!(query.limit().is_err());
        let query = Query::parse("limit=501", &["limit"]).expect("parses");
        assert!(query.limit().is_err());
    }
}
