//! The lifecycle events as the API pages them (`events_v1`, see `tables.rs`; written by
//! `WriteTables` in the transaction of the change that makes them).

use super::tables::{EVENTS, META, decode_event, events_written_name};
use super::{Store, StoreError};
use crate::event::{Event, EventKind};
use redb::{ReadableTable, ReadableTableMetadata};
use std::ops::Bound;

/// Which events a page holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    /// Only these streamers' (none: everyone's).
    pub streamers: Option<Vec<u64>>,
    /// Only these kinds (empty: every kind).
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Oldest first (replaying consumers) rather than newest first.
    pub ascending: bool,
    /// Only events after this sequence number in the page's order (a cursor).
    pub after: Option<u64>,
}

impl EventFilter {
    fn admits(&self, event: &Event) -> bool {
        self.streamers
            .as_ref()
            .is_none_or(|ids| ids.contains(&event.streamer_id))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self.since.is_none_or(|since| event.at >= since)
    }
}

/// Events scanned at most for one page, so a rare filter cannot walk the whole table in one
/// request; a page cut short says where to go on.
const MAX_SCANNED: usize = 100_000;

/// One page of events and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    pub events: Vec<(u64, Event)>,
    /// The cursor of the next page; `None` when there is nothing after this one.
    pub next: Option<u64>,
}

impl Store {
    /// Up to `limit` events passing `filter`, in sequence order (ascending or descending).
    pub fn events(&self, filter: &EventFilter, limit: usize) -> Result<EventPage, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(EVENTS)?;
            let range = match (filter.ascending, filter.after) {
                (true, Some(after)) => (Bound::Excluded(after), Bound::Unbounded),
                (false, Some(after)) => (Bound::Unbounded, Bound::Excluded(after)),
                (_, None) => (Bound::Unbounded, Bound::Unbounded),
            };
            let entries = table.range::<u64>(range)?;
            let entries: Box<dyn Iterator<Item = _>> = if filter.ascending {
                Box::new(entries)
            } else {
                Box::new(entries.rev())
            };
            let mut events = Vec::new();
            let mut last = None;
            let mut more = false;
            for (scanned, entry) in entries.enumerate() {
                let (seq, value) = entry?;
                let seq = seq.value();
                if events.len() == limit || scanned == MAX_SCANNED {
                    more = true;
                    break;
                }
                last = Some(seq);
                let event = decode_event(seq, value.value())?;
                if filter.admits(&event) {
                    events.push((seq, event));
                }
            }
            Ok(EventPage {
                events,
                next: if more { last } else { None },
            })
        })
    }

    /// How many events of each kind were ever written (pruned ones included), every kind.
    pub fn events_written(&self) -> Result<Vec<(EventKind, u64)>, StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(META)?;
            EventKind::ALL
                .into_iter()
                .map(|kind| {
                    let name = events_written_name(kind);
                    Ok((kind, meta.get(name.as_str())?.map_or(0, |count| count.value())))
                })
                .collect()
        })
    }

    /// The oldest and newest event sequence numbers stored (`None` while there are none).
    pub fn event_bounds(&self) -> Result<Option<(u64, u64)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(EVENTS)?;
            let first = table.first()?.map(|(seq, _)| seq.value());
            let last = table.last()?.map(|(seq, _)| seq.value());
            Ok(first.zip(last))
        })
    }

    /// Events stored.
    pub fn count_events(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(EVENTS)?.len()?))
    }
}

#[cfg(test)]
mod tests;
