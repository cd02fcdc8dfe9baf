//! Read-modify-write inside the store: [`Update`] is one write transaction's view of the
//! records, handed to the closure of [`Store::update`]. What it reads, it reads inside that
//! transaction, so nothing another writer commits can come between a read and the write that
//! depends on it; redb runs one write transaction at a time, so this is the only lock callers
//! need. Its writes are the store's own (`Store::put_streams` and the others run through it):
//! index maintenance, the compaction journal, the generation and the quality queue's bound
//! behave alike whichever way a write comes.

use super::encoding::{decode_record, encode_playlist};
use super::tables::{self, WriteTables, get_record};
use super::{Store, StoreError};
use crate::audio::OriginalAudio;
use crate::event::{Event, EventKind};
use crate::record::{Status, StreamKey, StreamRecord};
use crate::segments::SegmentStatus;
use redb::{ReadableTable, ReadableTableMetadata};

/// One write transaction's reads and writes of records (see [`Store::update`]). Reads see the
/// transaction's own writes.
pub struct Update<'txn> {
    tables: WriteTables<'txn>,
    /// [`super::MAX_QUALITY_QUEUE`], or what a test lowered it to.
    quality_queue_bound: u64,
}

impl Store {
    /// Reads and writes in one write transaction: nothing another writer commits can come
    /// between what `f` reads and what it writes. Commits when `f` returns Ok having written
    /// something (an update that only read costs no sync and leaves the generation alone);
    /// writes nothing on Err. Other writers wait while `f` runs, so keep it short and free of I/O; it must not
    /// call this store's own methods (a write would wait for itself), only `Update`'s.
    pub fn update<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Update<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let quality_queue_bound = self
            .shared
            .quality_queue_bound
            .load(std::sync::atomic::Ordering::Relaxed);
        self.transact_if(|txn, touched| {
            let mut update = Update {
                tables: WriteTables::open(txn, touched)?,
                quality_queue_bound,
            };
            let out = f(&mut update)?;
            // Every write through `Update` touches a broadcast: none touched, nothing to commit
            // (no sync, and the API's kept answers stay valid).
            let wrote = !update.tables.touched.is_empty();
            Ok((out, wrote))
        })
    }
}

impl Update<'_> {
    /// As [`Store::get_stream`].
    pub fn get_stream(&self, key: StreamKey) -> Result<Option<StreamRecord>, StoreError> {
        get_record(&self.tables.streams, key)
    }

    /// As [`Store::get_streams`]: aligned with `keys`.
    pub fn get_streams(&self, keys: &[StreamKey]) -> Result<Vec<Option<StreamRecord>>, StoreError> {
        keys.iter()
            .map(|key| get_record(&self.tables.streams, *key))
            .collect()
    }

    /// As [`Store::latest_of_streamer`].
    pub fn latest_of_streamer(
        &self,
        streamer_id: u64,
        before_start: Option<i64>,
    ) -> Result<Option<StreamRecord>, StoreError> {
        tables::latest_of_streamer(
            &self.tables.by_streamer,
            &self.tables.streams,
            streamer_id,
            before_start,
        )
    }

    /// As [`Store::live`].
    pub fn live(&self) -> Result<Vec<StreamRecord>, StoreError> {
        tables::live_records(&self.tables.live, &self.tables.streams)
    }

    /// As [`Store::due`].
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        tables::due_records(&self.tables.due, &self.tables.streams, now, limit, false)
    }

    /// As [`Store::queue_len`].
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        Ok(self.tables.due.len()?)
    }

    /// As [`Store::put_streams`]: inserts or replaces records with their index entries.
    pub fn put_streams(&mut self, records: &[StreamRecord]) -> Result<(), StoreError> {
        records.iter().try_for_each(|record| {
            // A copy taken while live that the crawl completes at the end (its playlist had
            // ended) becomes found here, without another capture: it is checked as one.
            let newly_found = record.status == Status::Found
                && record.archive.is_some()
                && !self.was_found(record.key())?;
            self.tables.put_record(record)?;
            if newly_found {
                self.queue_first_checks(record)?;
            }
            Ok(())
        })
    }

    /// Whether the stored record under `key` is found.
    fn was_found(&self, key: StreamKey) -> Result<bool, StoreError> {
        Ok(match self.tables.streams.get(key)? {
            Some(old) => decode_record(key, old.value()).is_ok_and(|old| old.status == Status::Found),
            None => false,
        })
    }

    /// A broadcast found for the first time joins the quality-check queue, and its segment
    /// check is queued unless it has one.
    fn queue_first_checks(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        self.tables
            .queue_quality_check(record.key(), record.max_viewers, self.quality_queue_bound)?;
        self.queue_segment_check_once(record)
    }

    /// Queues a found capture's segment check unless it has one: checked once per broadcast
    /// at its first capture; a later re-capture (the hour's second probe) keeps what the check
    /// found.
    fn queue_segment_check_once(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        let key = record.key();
        if self.tables.segment_status(key)?.is_none() {
            let captured = record.archive.as_ref().map_or(0, |archive| archive.fetched_at);
            self.tables
                .put_segment_status(key, &SegmentStatus::unchecked(captured))?;
        }
        Ok(())
    }

    /// As [`Store::apply`]: deletes `delete` (records, playlists, index entries), then writes
    /// `write`; a key in both ends up written.
    pub fn apply(&mut self, write: &[StreamRecord], delete: &[StreamKey]) -> Result<(), StoreError> {
        delete
            .iter()
            .try_for_each(|key| self.tables.delete_record(*key))?;
        self.put_streams(write)
    }

    /// As [`Store::put_archived`]: the record and its playlist; a broadcast archived as found
    /// for the first time joins the quality-check queue.
    pub fn put_archived(&mut self, record: &StreamRecord, playlist_text: &str) -> Result<(), StoreError> {
        let payload = encode_playlist(record.key(), playlist_text)?;
        self.put_archived_encoded(record, &payload, playlist_text)
    }

    /// [`Update::put_archived`] with the playlist already encoded (the store encodes before it
    /// takes the write gate); `text` is what it encodes, for the events.
    pub(super) fn put_archived_encoded(
        &mut self,
        record: &StreamRecord,
        payload: &[u8],
        text: &str,
    ) -> Result<(), StoreError> {
        let key = record.key();
        let was_found = self.was_found(key)?;
        self.tables.put_record_with(record, Some(text))?;
        self.tables.playlists.insert(key, payload)?;
        if record.status == Status::Found && !was_found {
            self.queue_first_checks(record)?;
        } else if record.status == Status::Found {
            self.queue_segment_check_once(record)?;
        }
        Ok(())
    }

    /// As [`Store::segment_status`].
    pub fn segment_status(&self, key: StreamKey) -> Result<Option<SegmentStatus>, StoreError> {
        self.tables.segment_status(key)
    }

    /// Stores a capture's segment check (its state and when it is next due), for a broadcast
    /// still stored; returns false, writing nothing, for one that is not (pruned meanwhile).
    pub fn set_segment_status(&mut self, key: StreamKey, status: &SegmentStatus) -> Result<bool, StoreError> {
        if self.tables.streams.get(key)?.is_none() {
            return Ok(false);
        }
        self.tables.put_segment_status(key, status)?;
        Ok(true)
    }

    /// Starts watching a capture's `-unmuted` originals, first seen listed at `listed_at`,
    /// unless it is already watched (or was, and they are gone).
    pub fn watch_original_audio(&mut self, key: StreamKey, listed_at: i64) -> Result<(), StoreError> {
        if self.tables.original_audio(key)?.is_none() {
            self.tables
                .put_original_audio(key, &OriginalAudio::watch(listed_at))?;
        }
        Ok(())
    }

    /// As [`Store::original_audio`].
    pub fn original_audio(&self, key: StreamKey) -> Result<Option<OriginalAudio>, StoreError> {
        self.tables.original_audio(key)
    }

    /// Stores a capture's original-audio watch, for a broadcast still stored; returns false,
    /// writing nothing, for one that is not (pruned meanwhile).
    pub fn set_original_audio(&mut self, key: StreamKey, watch: &OriginalAudio) -> Result<bool, StoreError> {
        if self.tables.streams.get(key)?.is_none() {
            return Ok(false);
        }
        self.tables.put_original_audio(key, watch)?;
        Ok(true)
    }

    /// Marks a capture no longer listed publicly, as a re-read of its channel's video list
    /// found at `at`, with its event (`kind`: `SubOnly`, or `Deleted` with `detail`). Only a
    /// capture still stored and last seen public changes, so each change makes one event;
    /// returns whether it changed.
    pub fn set_not_public(
        &mut self,
        key: StreamKey,
        kind: EventKind,
        detail: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = get_record(&self.tables.streams, key)? else {
            return Ok(false);
        };
        if record.status != Status::Found || record.public != Some(true) {
            return Ok(false);
        }
        record.public = Some(false);
        self.tables.put_record(&record)?;
        self.tables.add_event(&Event {
            at,
            stream: key,
            streamer_id: record.streamer_id,
            kind,
            detail: detail.to_string(),
        })?;
        Ok(true)
    }

    /// As [`Store::set_qualities`]: records the qualities a check found and takes the broadcast
    /// off the quality queue; a broadcast no longer found (or gone) just leaves the queue.
    pub fn set_qualities(&mut self, key: StreamKey, qualities: &[String]) -> Result<(), StoreError> {
        let tables = &mut self.tables;
        tables.touched.push(key);
        tables.qualities_due.remove(key)?;
        if let Some(mut record) = get_record(&tables.streams, key)?
            && record.status == Status::Found
            && let Some(archive) = record.archive.as_mut()
        {
            archive.qualities = qualities.to_vec();
            tables.put_record(&record)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
