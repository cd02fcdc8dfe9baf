//! The event feeds: lifecycle events (`crate::event`) as Atom, all or one channel's, narrowed
//! by `kind=` as `GET /api/v1/events` reads it, rendered by [`feed`](super::feed)'s model with
//! the capture feeds' validators (`feeds::conditional`). No warp here.

use super::Backend;
use super::dto::{playlist_path, rfc3339};
use super::events::kinds;
use super::feed::{self, Entry, Feed, Link};
use super::feeds::{FeedRequest, conditional};
use super::handlers::{ApiError, Reply, Result, blocking};
use super::params::Query;
use crate::event::Event;
use crate::record::{Status, StreamRecord};
use crate::store::{EventFilter, StoreError};
use std::sync::Arc;

/// An event with the record of its broadcast (gone only in a race with pruning, which takes
/// the events along).
type Shown = (u64, Event, Option<StreamRecord>);

pub async fn feed(
    backend: Arc<dyn Backend>,
    login: Option<String>,
    query: &Query,
    base: &str,
    limit: usize,
    request: &FeedRequest,
) -> Result<Reply> {
    let mut kinds = query.get("kind").map(kinds).transpose()?.unwrap_or_default();
    kinds.sort_by_key(|kind| kind.as_str());
    kinds.dedup();
    let store = backend.store();
    let (ids, events) = {
        let login = login.clone();
        let kinds = kinds.clone();
        blocking(move || {
            let ids = match &login {
                Some(login) => store.streamer_ids_for_login(login)?,
                None => Vec::new(),
            };
            if login.is_some() && ids.is_empty() {
                return Ok((ids, Vec::new()));
            }
            let filter = EventFilter {
                streamers: login.is_some().then(|| ids.clone()),
                kinds,
                ..EventFilter::default()
            };
            let page = store.events(&filter, limit)?;
            let keys: Vec<_> = page.events.iter().map(|(_, event)| event.stream).collect();
            let records = store.get_streams(&keys)?;
            let events: Vec<Shown> = page
                .events
                .into_iter()
                .zip(records)
                .map(|((seq, event), record)| (seq, event, record))
                .collect();
            Ok::<_, StoreError>((ids, events))
        })
        .await?
    };
    if let Some(login) = &login
        && ids.is_empty()
    {
        return Err(ApiError::not_found(format!(
            "no streamer ever used the login {login:?}"
        )));
    }
    let kind_names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
    let feed = events_feed(base, login.as_deref(), &ids, &kind_names, &events);
    let updated = feed.updated();
    Ok(conditional(
        "application/atom+xml; charset=utf-8",
        feed::atom(&feed).into_bytes(),
        updated,
        request,
    ))
}

fn entry((seq, event, record): &Shown, base: &str) -> Entry {
    let (stream_id, start) = (event.stream.1, event.stream.0);
    let kind = event.kind.as_str().replace('_', " ");
    let login = record.as_ref().map_or("", |record| record.login.as_str());
    let mut links = vec![
        Link {
            rel: "alternate",
            href: format!("{base}/#/vod/{stream_id}/{start}"),
            media_type: Some("text/html"),
        },
        Link {
            rel: "related",
            href: format!("{base}/#/channel/{}", event.streamer_id),
            media_type: Some("text/html"),
        },
    ];
    // Our copy stays playable whatever happened to Twitch's (that is the point of a deletion).
    if record
        .as_ref()
        .is_some_and(|record| record.status == Status::Found && record.archive.is_some())
    {
        links.push(Link {
            rel: "enclosure",
            href: format!("{base}{}", playlist_path(stream_id, start)),
            media_type: Some("application/vnd.apple.mpegurl"),
        });
    }
    let mut summary = String::new();
    if !event.detail.is_empty() {
        summary.push_str(&event.detail);
        summary.push_str(". ");
    }
    if let Some(record) = record {
        summary.push_str(&format!("“{}”, ", record.title));
    }
    summary.push_str(&format!("broadcast {stream_id} started {}.", rfc3339(start)));
    Entry {
        id: format!("urn:vodprobe:event:{seq}"),
        title: if login.is_empty() {
            format!("{kind}: broadcast {stream_id}")
        } else {
            format!("{login}: {kind}")
        },
        updated: event.at,
        published: Some(event.at),
        author: if login.is_empty() {
            event.streamer_id.to_string()
        } else {
            login.to_string()
        },
        links,
        summary,
    }
}

fn events_feed(base: &str, login: Option<&str>, ids: &[u64], kinds: &[&str], events: &[Shown]) -> Feed {
    let entries = events.iter().map(|shown| entry(shown, base)).collect();
    // Each kind selection is its own feed: its id and self link say which.
    let (kind_id, kind_query, kind_title) = if kinds.is_empty() {
        (String::new(), String::new(), String::new())
    } else {
        let list = kinds.join(",");
        (
            format!(":kind={list}"),
            format!("?kind={list}"),
            format!(" ({})", kinds.join(", ")),
        )
    };
    let (id, title, self_path, alternate) = match login {
        None => (
            format!("urn:vodprobe:feed:events{kind_id}"),
            format!("vodprobe: events{kind_title}"),
            format!("/feeds/events.atom{kind_query}"),
            "/#/".to_string(),
        ),
        Some(login) => {
            // Keyed by account, so a rename keeps the feed's id.
            let keys: Vec<String> = ids.iter().map(u64::to_string).collect();
            let shown = events
                .iter()
                .find_map(|(_, _, record)| record.as_ref())
                .map_or(login, |record| record.login.as_str());
            (
                format!("urn:vodprobe:feed:channel:{}:events{kind_id}", keys.join("+")),
                format!("vodprobe: events of {shown}{kind_title}"),
                format!("/feeds/channels/{login}/events.atom{kind_query}"),
                ids.first()
                    .map_or("/#/".to_string(), |id| format!("/#/channel/{id}")),
            )
        }
    };
    Feed {
        id,
        title,
        self_url: format!("{base}{self_path}"),
        alternate_url: format!("{base}{alternate}"),
        entries,
        // An empty feed changes only when its first entry comes: a fixed time keeps its ETag.
        empty_updated: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn an_event_feed_names_its_kinds_and_links_the_broadcast() {
        let event = Event {
            at: 1_700_000_000,
            stream: (1_699_990_000, 42),
            streamer_id: 7,
            kind: EventKind::Deleted,
            detail: "vanished".into(),
        };
        let feed = events_feed(
            "http://h:1",
            Some("seven"),
            &[7],
            &["deleted", "muted"],
            &[(3, event, None)],
        );
        assert_eq!(feed.id, "urn:vodprobe:feed:channel:7:events:kind=deleted,muted");
        assert_eq!(
            feed.self_url,
            "http://h:1/feeds/channels/seven/events.atom?kind=deleted,muted"
        );
        assert_eq!(feed.updated(), 1_700_000_000);
        let entry = &feed.entries[0];
        assert_eq!(
            (entry.id.as_str(), entry.title.as_str(), entry.author.as_str()),
            ("urn:vodprobe:event:3", "deleted: broadcast 42", "7")
        );
        assert!(
            entry.summary.starts_with("vanished. broadcast 42 started"),
            "{}",
            entry.summary
        );
        // No record: no playable link.
        assert!(entry.links.iter().all(|link| link.rel != "enclosure"));
    }
}
