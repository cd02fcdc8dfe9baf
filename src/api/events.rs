//! `GET /api/v1/events`: the lifecycle events (`crate::event`), paged by cursor, newest first
//! or (`order=asc`, for consumers replaying them) oldest first.

use super::Backend;
use super::dto::{List, rfc3339};
use super::handlers::{ApiError, Reply, Result, blocking};
use super::params::Query;
use crate::event::{Event, EventKind};
use crate::record::StreamRecord;
use crate::store::EventFilter;
use serde::Serialize;
use std::sync::Arc;

const EVENT_PARAMS: &[&str] = &["streamer", "kind", "since", "order", "limit", "cursor"];

/// One event as the API shows it (and as a webhook receives it, `crate::notify`).
#[derive(Clone, Debug, Serialize)]
pub struct EventItem {
    /// Its sequence number: increasing, never reused.
    id: String,
    at: String,
    kind: &'static str,
    stream_id: String,
    start_time: String,
    streamer_id: String,
    detail: String,
    /// The broadcast's login and title as stored, for a reader (none once it is pruned).
    login: Option<String>,
    title: Option<String>,
}

impl EventItem {
    pub fn new(seq: u64, event: Event, record: Option<StreamRecord>) -> EventItem {
        EventItem {
            id: seq.to_string(),
            at: rfc3339(event.at),
            kind: event.kind.as_str(),
            stream_id: event.stream.1.to_string(),
            start_time: rfc3339(event.stream.0),
            streamer_id: event.streamer_id.to_string(),
            detail: event.detail,
            login: record.as_ref().map(|record| record.login.clone()),
            title: record.map(|record| record.title),
        }
    }
}

pub(super) fn kinds(text: &str) -> Result<Vec<EventKind>> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            EventKind::parse(name).ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
                ApiError::bad_parameter(
                    "kind",
                    format!("unknown kind {name:?} (known: {})", known.join(", ")),
                )
            })
        })
        .collect()
}

pub async fn events(backend: Arc<dyn Backend>, raw: String) -> Result<Reply> {
    let query = Query::parse(&raw, EVENT_PARAMS)?;
    let limit = query.limit()?;
    let ascending = match query.get("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "order",
                format!("must be asc or desc, not {other:?}"),
            ));
        }
    };
    let after = query
        .get("cursor")
        .map(|cursor| {
            cursor
                .parse::<u64>()
                .map_err(|_| ApiError::bad_parameter("cursor", "not a cursor this API gave out"))
        })
        .transpose()?;
    let mut filter = EventFilter {
        streamers: None,
        kinds: query.get("kind").map(kinds).transpose()?.unwrap_or_default(),
        since: query.time("since")?,
        ascending,
        after,
    };
    let streamer = query.text("streamer")?.map(str::to_string);
    let store = backend.store();
    let page = blocking(move || {
        if let Some(streamer) = streamer {
            // A numeric streamer is an id; otherwise a login names every account that used it.
            filter.streamers = Some(match streamer.parse::<u64>() {
                Ok(id) => vec![id],
                Err(_) => store.streamer_ids_for_login(&streamer)?,
            });
        }
        let page = store.events(&filter, limit)?;
        let keys: Vec<_> = page.events.iter().map(|(_, event)| event.stream).collect();
        let records = store.get_streams(&keys)?;
        Ok((page, records))
    })
    .await?;
    let (page, records) = page;
    Ok(Reply::json(&List {
        items: page
            .events
            .into_iter()
            .zip(records)
            .map(|((seq, event), record)| EventItem::new(seq, event, record))
            .collect::<Vec<_>>(),
        next_cursor: page.next.map(|seq| seq.to_string()),
    }))
}
