//! The tables (typed, versioned constants; the layout is in the module's design note) and
//! [`WriteTables`], the one place that writes records: it opens every record table of a write
//! transaction together and moves a record's index entries with the record, so the indexes stay
//! a function of `streams_v1`. Also the lookups of a record by key that reads and writes share.

use super::StoreError;
use super::encoding::{decode_record, encode_record};
use crate::audio::OriginalAudio;
use crate::event::{Event, EventKind, record_changes_with};
use crate::record::{Status, StreamKey, StreamRecord};
use crate::segments::{SegmentState, SegmentStatus};
use redb::{ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableHandle, WriteTransaction};
use std::ops::Bound;

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
pub(super) const STREAMS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("streams_v1");
pub(super) const PLAYLISTS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("playlists_v1");
pub(super) const DUE: TableDefinition<(i64, i64, u64), ()> = TableDefinition::new("due_v1");
pub(super) const BY_STREAMER: TableDefinition<(u64, i64, u64), ()> = TableDefinition::new("by_streamer_v1");
pub(super) const BY_STREAM_ID: TableDefinition<(u64, i64), ()> = TableDefinition::new("by_stream_id_v1");
pub(super) const LIVE: TableDefinition<(i64, u64), i64> = TableDefinition::new("live_v1");
pub(super) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state_v1");
pub(super) const BY_GAME: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("by_game_v1");
pub(super) const BY_LANGUAGE: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("by_language_v1");
pub(super) const BY_STATUS: TableDefinition<(u8, i64, u64), ()> = TableDefinition::new("by_status_v1");
pub(super) const BY_VIEWS: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_views_v1");
/// `(lowercase login, streamer_id)` → how many stored records carry that pair.
pub(super) const LOGINS: TableDefinition<(&str, u64), u32> = TableDefinition::new("logins_v1");
/// `(streamer_id, lowercase login)` → the same count: a streamer's names, old and new.
pub(super) const NAMES: TableDefinition<(u64, &str), u32> = TableDefinition::new("names_v1");
pub(super) const QUALITIES_DUE: TableDefinition<(i64, u64), u32> = TableDefinition::new("qualities_due_v1");
/// A capture's segment check: `(state code, checked_at, lost_at, due)`, state 0 = unchecked
/// (see `crate::segments::SegmentState::code`). Beside the record, not in it, so the packed
/// record encoding and older files stay as they are.
pub(super) const SEGMENTS: TableDefinition<(i64, u64), SegmentValue> = TableDefinition::new("segments_v1");
/// `(due, start_unix, stream_id)`: the segment checks waiting, earliest first.
pub(super) const SEGMENTS_DUE: TableDefinition<(i64, i64, u64), ()> = TableDefinition::new("segments_due_v1");

/// A capture's original-audio watch: `(listed_at, seen_at, gone_at, due)` (see
/// `crate::audio::OriginalAudio`). Beside the record, like `segments_v1`.
pub(super) const ORIGINAL_AUDIO: TableDefinition<(i64, u64), AudioValue> =
    TableDefinition::new("original_audio_v1");
/// `(due, start_unix, stream_id)`: the original-audio checks waiting, earliest first.
pub(super) const ORIGINAL_AUDIO_DUE: TableDefinition<(i64, i64, u64), ()> =
    TableDefinition::new("original_audio_due_v1");

/// Lifecycle events: sequence number (global, increasing, never reused: cursors stay valid) →
/// tag byte + postcard of `crate::event::Event`. The next number is `events_next` in `meta_v1`.
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// `(start_unix, stream_id, seq)`: each broadcast's events in order, so they go with it.
pub(super) const EVENTS_BY_STREAM: TableDefinition<(i64, u64, u64), ()> =
    TableDefinition::new("events_by_stream_v1");
pub(super) const EVENTS_NEXT: &str = "events_next";
/// The `meta_v1` name of how many events of `kind` were ever written (pruning keeps it).
pub(super) fn events_written_name(kind: EventKind) -> String {
    format!("events_written.{}", kind.as_str())
}

/// `events_v1` tag: postcard of `Event`.
const EVENT_POSTCARD: u8 = 1;

pub(super) fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(event, vec![EVENT_POSTCARD]).map_err(|error| StoreError::Encode {
        what: format!("an event of stream {:?}", event.stream),
        message: error.to_string(),
    })
}

pub(super) fn decode_event(seq: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    match bytes.split_first() {
        Some((&EVENT_POSTCARD, payload)) => match postcard::take_from_bytes::<Event>(payload) {
            Ok((event, [])) => Ok(event),
            _ => Err(StoreError::Corrupt {
                what: format!("event {seq} in {}: cannot decode it", EVENTS.name()),
            }),
        },
        _ => Err(StoreError::Corrupt {
            what: format!("event {seq} in {}: unknown tag", EVENTS.name()),
        }),
    }
}

pub(super) type SegmentValue = (u8, Option<i64>, Option<i64>, Option<i64>);
pub(super) type AudioValue = (i64, Option<i64>, Option<i64>, Option<i64>);

pub(super) fn audio_value(watch: &OriginalAudio) -> AudioValue {
    (watch.listed_at, watch.seen_at, watch.gone_at, watch.due)
}

pub(super) fn original_audio((listed_at, seen_at, gone_at, due): AudioValue) -> OriginalAudio {
    OriginalAudio {
        listed_at,
        seen_at,
        gone_at,
        due,
    }
}

pub(super) fn segment_value(status: &SegmentStatus) -> SegmentValue {
    (
        status.state.map_or(0, SegmentState::code),
        status.checked_at,
        status.lost_at,
        status.due,
    )
}

pub(super) fn segment_status((code, checked_at, lost_at, due): SegmentValue) -> SegmentStatus {
    SegmentStatus {
        state: SegmentState::from_code(code),
        checked_at,
        lost_at,
        due,
    }
}

/// The record tables of one write transaction, opened together so a record and its index
/// entries always change together.
pub(super) struct WriteTables<'txn> {
    /// The broadcasts this transaction changed.
    pub(super) touched: &'txn mut Vec<StreamKey>,
    pub(super) streams: Table<'txn, (i64, u64), &'static [u8]>,
    pub(super) playlists: Table<'txn, (i64, u64), &'static [u8]>,
    pub(super) due: Table<'txn, (i64, i64, u64), ()>,
    pub(super) by_streamer: Table<'txn, (u64, i64, u64), ()>,
    pub(super) by_stream_id: Table<'txn, (u64, i64), ()>,
    pub(super) live: Table<'txn, (i64, u64), i64>,
    pub(super) by_game: Table<'txn, (&'static str, i64, u64), ()>,
    pub(super) by_language: Table<'txn, (&'static str, i64, u64), ()>,
    pub(super) by_status: Table<'txn, (u8, i64, u64), ()>,
    pub(super) by_views: Table<'txn, (u32, i64, u64), ()>,
    pub(super) logins: Table<'txn, (&'static str, u64), u32>,
    pub(super) names: Table<'txn, (u64, &'static str), u32>,
    pub(super) qualities_due: Table<'txn, (i64, u64), u32>,
    pub(super) segments: Table<'txn, (i64, u64), SegmentValue>,
    pub(super) segments_due: Table<'txn, (i64, i64, u64), ()>,
    pub(super) original_audio: Table<'txn, (i64, u64), AudioValue>,
    pub(super) original_audio_due: Table<'txn, (i64, i64, u64), ()>,
    pub(super) events: Table<'txn, u64, &'static [u8]>,
    pub(super) events_by_stream: Table<'txn, (i64, u64, u64), ()>,
    meta: Table<'txn, &'static str, u64>,
    /// Off while a compaction's catch-up replays writes into its copy: the events are copied,
    /// not made again.
    pub(super) record_events: bool,
}

impl<'txn> WriteTables<'txn> {
    pub(super) fn open(
        txn: &'txn WriteTransaction,
        touched: &'txn mut Vec<StreamKey>,
    ) -> Result<Self, StoreError> {
        Ok(WriteTables {
            touched,
            streams: txn.open_table(STREAMS)?,
            playlists: txn.open_table(PLAYLISTS)?,
            due: txn.open_table(DUE)?,
            by_streamer: txn.open_table(BY_STREAMER)?,
            by_stream_id: txn.open_table(BY_STREAM_ID)?,
            live: txn.open_table(LIVE)?,
            by_game: txn.open_table(BY_GAME)?,
            by_language: txn.open_table(BY_LANGUAGE)?,
            by_status: txn.open_table(BY_STATUS)?,
            by_views: txn.open_table(BY_VIEWS)?,
            logins: txn.open_table(LOGINS)?,
            names: txn.open_table(NAMES)?,
            qualities_due: txn.open_table(QUALITIES_DUE)?,
            segments: txn.open_table(SEGMENTS)?,
            segments_due: txn.open_table(SEGMENTS_DUE)?,
            original_audio: txn.open_table(ORIGINAL_AUDIO)?,
            original_audio_due: txn.open_table(ORIGINAL_AUDIO_DUE)?,
            events: txn.open_table(EVENTS)?,
            events_by_stream: txn.open_table(EVENTS_BY_STREAM)?,
            meta: txn.open_table(META)?,
            record_events: true,
        })
    }

    /// Appends an event under the next sequence number.
    pub(super) fn add_event(&mut self, event: &Event) -> Result<(), StoreError> {
        if !self.record_events {
            return Ok(());
        }
        let seq = self.meta.get(EVENTS_NEXT)?.map_or(1, |next| next.value());
        self.events.insert(seq, encode_event(event)?.as_slice())?;
        let (start, id) = event.stream;
        self.events_by_stream.insert((start, id, seq), ())?;
        self.meta.insert(EVENTS_NEXT, seq + 1)?;
        let written = events_written_name(event.kind);
        let before = self.meta.get(written.as_str())?.map_or(0, |count| count.value());
        self.meta.insert(written.as_str(), before + 1)?;
        self.touched.push(event.stream);
        Ok(())
    }

    /// Forgets a broadcast's events.
    fn remove_events(&mut self, key: StreamKey) -> Result<(), StoreError> {
        let (start, id) = key;
        let seqs = self
            .events_by_stream
            .extract_from_if((start, id, 0)..=(start, id, u64::MAX), |_, _| true)?
            .map(|entry| Ok(entry?.0.value().2))
            .collect::<Result<Vec<u64>, StoreError>>()?;
        for seq in seqs {
            self.events.remove(seq)?;
        }
        Ok(())
    }

    /// The event a new record of a known streamer under a login not seen for it makes.
    fn renamed(&self, record: &StreamRecord) -> Result<Option<Event>, StoreError> {
        let login = record.login.to_ascii_lowercase();
        if self.names.get((record.streamer_id, login.as_str()))?.is_some() {
            return Ok(None);
        }
        let before = latest_of_streamer(&self.by_streamer, &self.streams, record.streamer_id, None)?;
        Ok(before
            .filter(|before| !before.login.eq_ignore_ascii_case(&login))
            .map(|before| Event {
                at: record.last_seen,
                stream: record.key(),
                streamer_id: record.streamer_id,
                kind: EventKind::Renamed,
                detail: format!("{} → {}", before.login, record.login),
            }))
    }

    /// Inserts or replaces a record, replacing the old record's index entries with its own.
    pub(super) fn put_record(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        self.put_record_with(record, None)
    }

    /// As [`WriteTables::put_record`], with the playlist the same write stores (its events
    /// can then name what was muted).
    pub(super) fn put_record_with(
        &mut self,
        record: &StreamRecord,
        playlist: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = record.key();
        self.touched.push(key);
        let renamed = if self.record_events {
            self.renamed(record)?
        } else {
            None
        };
        let encoded = encode_record(record)?;
        let old = self
            .streams
            .insert(key, encoded.as_slice())?
            .map(|old| decode_record(key, old.value()));
        if self.record_events {
            let previous = old.as_ref().and_then(|old| old.as_ref().ok());
            for event in renamed
                .iter()
                .chain(&record_changes_with(previous, record, playlist))
            {
                self.add_event(event)?;
            }
        }
        match old {
            Some(Ok(old)) => self.update_index_entries(&old, record),
            Some(Err(_undecodable)) => {
                self.purge_index_entries(key)?;
                self.insert_index_entries(record)
            }
            None => self.insert_index_entries(record),
        }
    }

    /// Queues a quality check, keeping the queue within `bound` by dropping the least viewed
    /// entry (this one, if it is the least viewed).
    pub(super) fn queue_quality_check(
        &mut self,
        key: StreamKey,
        viewers: u32,
        bound: u64,
    ) -> Result<(), StoreError> {
        self.qualities_due.insert(key, viewers)?;
        if self.qualities_due.len()? > bound {
            let mut least: Option<(u32, StreamKey)> = None;
            for entry in self.qualities_due.iter()? {
                let (key, viewers) = entry?;
                let candidate = (viewers.value(), key.value());
                if least.is_none_or(|least| candidate < least) {
                    least = Some(candidate);
                }
            }
            if let Some((_, key)) = least {
                self.touched.push(key);
                self.qualities_due.remove(key)?;
            }
        }
        Ok(())
    }

    /// A capture's segment check as stored.
    pub(super) fn segment_status(&self, key: StreamKey) -> Result<Option<SegmentStatus>, StoreError> {
        Ok(self.segments.get(key)?.map(|value| segment_status(value.value())))
    }

    /// Stores a capture's segment check, moving its entry in the queue of checks due.
    pub(super) fn put_segment_status(
        &mut self,
        key: StreamKey,
        status: &SegmentStatus,
    ) -> Result<(), StoreError> {
        self.touched.push(key);
        let (start, id) = key;
        let old = self
            .segments
            .insert(key, segment_value(status))?
            .map(|old| old.value());
        let was = old.and_then(|old| SegmentState::from_code(old.0));
        let kind = match status.state {
            Some(SegmentState::Partial) => Some(EventKind::SegmentsPartial),
            Some(SegmentState::Gone) => Some(EventKind::SegmentsGone),
            _ => None,
        };
        if let Some(kind) = kind
            && was != status.state
        {
            self.add_stream_event(key, status.checked_at, kind)?;
        }
        if let Some((.., Some(due))) = old {
            self.segments_due.remove((due, start, id))?;
        }
        if let Some(due) = status.due {
            self.segments_due.insert((due, start, id), ())?;
        }
        Ok(())
    }

    /// An event of a stored broadcast's capture (segments, original audio).
    fn add_stream_event(
        &mut self,
        key: StreamKey,
        at: Option<i64>,
        kind: EventKind,
    ) -> Result<(), StoreError> {
        let Some(record) = get_record(&self.streams, key)? else {
            return Ok(());
        };
        self.add_event(&Event {
            at: at.unwrap_or(record.last_seen),
            stream: key,
            streamer_id: record.streamer_id,
            kind,
            detail: String::new(),
        })
    }

    /// Forgets a broadcast's segment check and its queue entry.
    fn remove_segment_status(&mut self, key: StreamKey) -> Result<(), StoreError> {
        let (start, id) = key;
        if let Some(Some(due)) = self.segments.remove(key)?.map(|old| old.value().3) {
            self.segments_due.remove((due, start, id))?;
        }
        Ok(())
    }

    /// A capture's original-audio watch as stored.
    pub(super) fn original_audio(&self, key: StreamKey) -> Result<Option<OriginalAudio>, StoreError> {
        Ok(self
            .original_audio
            .get(key)?
            .map(|value| original_audio(value.value())))
    }

    /// Stores a capture's original-audio watch, moving its entry in the queue of checks due.
    pub(super) fn put_original_audio(
        &mut self,
        key: StreamKey,
        watch: &OriginalAudio,
    ) -> Result<(), StoreError> {
        self.touched.push(key);
        let (start, id) = key;
        let old = self
            .original_audio
            .insert(key, audio_value(watch))?
            .map(|old| old.value());
        if let Some(gone_at) = watch.gone_at
            && old.is_none_or(|old| old.2.is_none())
        {
            self.add_stream_event(key, Some(gone_at), EventKind::OriginalAudioGone)?;
        }
        if let Some((.., Some(due))) = old {
            self.original_audio_due.remove((due, start, id))?;
        }
        if let Some(due) = watch.due {
            self.original_audio_due.insert((due, start, id), ())?;
        }
        Ok(())
    }

    /// Forgets a broadcast's original-audio watch and its queue entry.
    fn remove_original_audio(&mut self, key: StreamKey) -> Result<(), StoreError> {
        let (start, id) = key;
        if let Some(Some(due)) = self.original_audio.remove(key)?.map(|old| old.value().3) {
            self.original_audio_due.remove((due, start, id))?;
        }
        Ok(())
    }

    /// Deletes a record, its playlist, its segment check and its index entries.
    pub(super) fn delete_record(&mut self, key: StreamKey) -> Result<(), StoreError> {
        self.touched.push(key);
        self.playlists.remove(key)?;
        self.qualities_due.remove(key)?;
        self.remove_segment_status(key)?;
        self.remove_original_audio(key)?;
        self.remove_events(key)?;
        let old = self
            .streams
            .remove(key)?
            .map(|old| decode_record(key, old.value()));
        match old {
            Some(Ok(old)) => self.remove_index_entries(&old),
            Some(Err(_undecodable)) => self.purge_index_entries(key),
            None => Ok(()),
        }
    }

    /// Moves the index entries of `old` to those of `new` (same key), touching only entries
    /// that change: a crawl that only moves `last_seen` rewrites two tables, not five.
    fn update_index_entries(&mut self, old: &StreamRecord, new: &StreamRecord) -> Result<(), StoreError> {
        let (start, id) = new.key();
        if old.probe.next_due != new.probe.next_due {
            if let Some(due) = old.probe.next_due {
                self.due.remove((due, start, id))?;
            }
            if let Some(due) = new.probe.next_due {
                self.due.insert((due, start, id), ())?;
            }
        }
        if old.streamer_id != new.streamer_id {
            self.by_streamer.remove((old.streamer_id, start, id))?;
            self.by_streamer.insert((new.streamer_id, start, id), ())?;
        }
        // by_stream_id_v1 holds nothing but the key, which old and new share.
        let (was_live, is_live) = (old.status == Status::Live, new.status == Status::Live);
        if is_live && (!was_live || old.last_seen != new.last_seen) {
            self.live.insert((start, id), new.last_seen)?;
        } else if was_live && !is_live {
            self.live.remove((start, id))?;
        }
        if old.game_id != new.game_id {
            self.by_game.remove((old.game_id.as_str(), start, id))?;
            self.by_game.insert((new.game_id.as_str(), start, id), ())?;
        }
        if old.language != new.language {
            self.by_language.remove((old.language.as_str(), start, id))?;
            self.by_language.insert((new.language.as_str(), start, id), ())?;
        }
        if old.status != new.status {
            self.by_status.remove((status_code(old.status), start, id))?;
            self.by_status.insert((status_code(new.status), start, id), ())?;
            if new.status != Status::Found {
                self.qualities_due.remove((start, id))?;
            }
        }
        if old.max_viewers != new.max_viewers {
            self.by_views.remove((old.max_viewers, start, id))?;
            self.by_views.insert((new.max_viewers, start, id), ())?;
        }
        if old.streamer_id != new.streamer_id || !old.login.eq_ignore_ascii_case(&new.login) {
            self.count_name(old, -1)?;
            self.count_name(new, 1)?;
        }
        Ok(())
    }

    /// Adds `delta` to the record's `(login, streamer_id)` count in both name tables, removing
    /// the pair when it reaches zero.
    fn count_name(&mut self, record: &StreamRecord, delta: i64) -> Result<(), StoreError> {
        let login = record.login.to_ascii_lowercase();
        let key = (login.as_str(), record.streamer_id);
        let current = self.logins.get(key)?.map_or(0, |count| count.value());
        let next = u32::try_from((i64::from(current) + delta).max(0)).unwrap_or(u32::MAX);
        if next == 0 {
            self.logins.remove(key)?;
            self.names.remove((record.streamer_id, login.as_str()))?;
        } else {
            self.logins.insert(key, next)?;
            self.names.insert((record.streamer_id, login.as_str()), next)?;
        }
        Ok(())
    }

    fn remove_index_entries(&mut self, old: &StreamRecord) -> Result<(), StoreError> {
        let (start, id) = old.key();
        if let Some(due) = old.probe.next_due {
            self.due.remove((due, start, id))?;
        }
        self.by_streamer.remove((old.streamer_id, start, id))?;
        self.by_stream_id.remove((id, start))?;
        self.live.remove((start, id))?;
        self.by_game.remove((old.game_id.as_str(), start, id))?;
        self.by_language.remove((old.language.as_str(), start, id))?;
        self.by_status.remove((status_code(old.status), start, id))?;
        self.by_views.remove((old.max_viewers, start, id))?;
        self.count_name(old, -1)
    }

    /// Removes whatever index entries name `key` when its record cannot be decoded: the
    /// indexes keyed by the record's fields are scanned (rare, and only on corruption).
    pub(super) fn purge_index_entries(&mut self, key: StreamKey) -> Result<(), StoreError> {
        let (start, id) = key;
        self.qualities_due.remove(key)?;
        self.due.retain(|(_, s, i), ()| (s, i) != key)?;
        self.by_streamer.retain(|(_, s, i), ()| (s, i) != key)?;
        self.by_stream_id.remove((id, start))?;
        self.live.remove(key)?;
        self.by_game.retain(|(_, s, i), ()| (s, i) != key)?;
        self.by_language.retain(|(_, s, i), ()| (s, i) != key)?;
        self.by_status.retain(|(_, s, i), ()| (s, i) != key)?;
        self.by_views.retain(|(_, s, i), ()| (s, i) != key)?;
        // Which name the record counted is unknown without it: count every other record
        // again (a full walk, but only after corruption).
        self.logins.retain(|_, _| false)?;
        self.names.retain(|_, _| false)?;
        let mut counts: std::collections::BTreeMap<(String, u64), u32> = Default::default();
        for entry in self.streams.iter()? {
            let (other, value) = entry?;
            if other.value() == key {
                continue;
            }
            if let Ok(record) = decode_record(other.value(), value.value()) {
                *counts
                    .entry((record.login.to_ascii_lowercase(), record.streamer_id))
                    .or_default() += 1;
            }
        }
        for ((login, id), count) in counts {
            self.logins.insert((login.as_str(), id), count)?;
            self.names.insert((id, login.as_str()), count)?;
        }
        Ok(())
    }

    fn insert_index_entries(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        let (start, id) = record.key();
        if let Some(due) = record.probe.next_due {
            self.due.insert((due, start, id), ())?;
        }
        self.by_streamer.insert((record.streamer_id, start, id), ())?;
        self.by_stream_id.insert((id, start), ())?;
        if record.status == Status::Live {
            self.live.insert((start, id), record.last_seen)?;
        }
        self.insert_query_entries(record)
    }

    /// The entries of the indexes added in schema 2 (the API's lists and streamer search).
    pub(super) fn insert_query_entries(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        let (start, id) = record.key();
        self.by_game.insert((record.game_id.as_str(), start, id), ())?;
        self.by_language
            .insert((record.language.as_str(), start, id), ())?;
        self.by_status
            .insert((status_code(record.status), start, id), ())?;
        self.by_views.insert((record.max_viewers, start, id), ())?;
        self.count_name(record, 1)
    }
}

/// The `by_status_v1` key byte of a status. Stored on disk: never renumber.
pub(super) fn status_code(status: Status) -> u8 {
    match status {
        Status::Live => 0,
        Status::Pending => 1,
        Status::Found => 2,
        Status::NotFound => 3,
    }
}

pub(super) fn get_record(
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
    key: StreamKey,
) -> Result<Option<StreamRecord>, StoreError> {
    match streams.get(key)? {
        Some(value) => decode_record(key, value.value()).map(Some),
        None => Ok(None),
    }
}

/// The record an index entry points at; a dangling entry is corruption.
pub(super) fn indexed_record(
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
    index: &str,
    key: StreamKey,
) -> Result<StreamRecord, StoreError> {
    get_record(streams, key)?.ok_or_else(|| StoreError::Corrupt {
        what: format!(
            "{index} names stream {key:?}, which {} does not hold",
            STREAMS.name()
        ),
    })
}

/// The streamer's broadcast with the most recent start (strictly before `before_start` if
/// given).
pub(super) fn latest_of_streamer(
    by_streamer: &impl ReadableTable<(u64, i64, u64), ()>,
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
    streamer_id: u64,
    before_start: Option<i64>,
) -> Result<Option<StreamRecord>, StoreError> {
    let upper = match before_start {
        Some(before) => Bound::Excluded((streamer_id, before, 0)),
        None => Bound::Included((streamer_id, i64::MAX, u64::MAX)),
    };
    let lower = Bound::Included((streamer_id, i64::MIN, 0));
    match by_streamer.range((lower, upper))?.next_back() {
        Some(entry) => {
            let (_, start, id) = entry?.0.value();
            indexed_record(streams, BY_STREAMER.name(), (start, id)).map(Some)
        }
        None => Ok(None),
    }
}

/// Records with status `Live`, in key order.
pub(super) fn live_records(
    live: &impl ReadableTable<(i64, u64), i64>,
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
) -> Result<Vec<StreamRecord>, StoreError> {
    let mut records = Vec::new();
    for entry in live.iter()? {
        let key = entry?.0.value();
        records.push(indexed_record(streams, LIVE.name(), key)?);
    }
    Ok(records)
}

/// Records whose next_due <= now, earliest due first (ties by key), at most `limit`.
pub(super) fn due_records(
    due: &impl ReadableTable<(i64, i64, u64), ()>,
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
    now: i64,
    limit: usize,
    newest: bool,
) -> Result<Vec<StreamRecord>, StoreError> {
    let mut records = Vec::new();
    let range = due.range(..=(now, i64::MAX, u64::MAX))?;
    let entries: Box<dyn Iterator<Item = _>> = if newest {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    for entry in entries.take(limit) {
        let (_, start, id) = entry?.0.value();
        records.push(indexed_record(streams, DUE.name(), (start, id))?);
    }
    Ok(records)
}
