//! The embedded database: every stream record, archived playlist, probe-queue entry and index
//! lives in one redb file, and this is the only module that knows redb exists. Callers see
//! [`StreamRecord`]s, playlist text and named state blobs; they never see a table, a key
//! encoding or a transaction.
//!
//! # Tables
//!
//! Names carry a version suffix: a table whose key, value or encoding changes incompatibly gets
//! a new name (`streams_v2`), so an old file is never read with the wrong types. Keys are redb
//! tuples, which sort field by field, so every "by time" query is a range scan.
//!
//! | table             | key                                    | value                        |
//! |-------------------|----------------------------------------|------------------------------|
//! | `meta_v1`         | `&str` name                            | `u64`                        |
//! | `streams_v1`      | `(start_unix, stream_id)`              | `&[u8]`: tag byte + payload  |
//! | `playlists_v1`    | `(start_unix, stream_id)`              | `&[u8]`: tag byte + payload  |
//! | `due_v1`          | `(next_due, start_unix, stream_id)`    | `()`                         |
//! | `by_streamer_v1`  | `(streamer_id, start_unix, stream_id)` | `()`                         |
//! | `by_stream_id_v1` | `(stream_id, start_unix)`              | `()`                         |
//! | `live_v1`         | `(start_unix, stream_id)`              | `i64`: last_seen             |
//! | `state_v1`        | `&str` name                            | `&[u8]`, opaque to the store |
//! | `by_game_v1`      | `(game_id, start_unix, stream_id)`     | `()`                         |
//! | `by_language_v1`  | `(language, start_unix, stream_id)`    | `()`                         |
//! | `by_status_v1`    | `(status code, start_unix, stream_id)` | `()`                         |
//! | `by_views_v1`     | `(max_viewers, start_unix, stream_id)` | `()`                         |
//! | `logins_v1`       | `(lowercase login, streamer_id)`       | `u32`: records with the pair |
//! | `names_v1`        | `(streamer_id, lowercase login)`       | `u32`: the same count        |
//! | `qualities_due_v1`| `(start_unix, stream_id)`              | `u32`: max_viewers           |
//! | `segments_v1`     | `(start_unix, stream_id)`              | `(u8, Option<i64> ×3)`       |
//! | `segments_due_v1` | `(due, start_unix, stream_id)`         | `()`                         |
//! | `original_audio_v1` | `(start_unix, stream_id)`            | `(i64, Option<i64> ×3)`      |
//! | `original_audio_due_v1` | `(due, start_unix, stream_id)`   | `()`                         |
//! | `events_v1`       | `u64` sequence number                  | `&[u8]`: tag byte + postcard |
//! | `events_by_stream_v1` | `(start_unix, stream_id, seq)`     | `()`                         |
//!
//! Times (`start_unix`, `next_due`) are `i64` unix seconds; ids are `u64`.
//!
//! * `meta_v1` holds `schema_version` (currently [`SCHEMA_VERSION`]). A fresh file gets it
//!   written; a file with a larger number was written by a newer binary and is refused with
//!   [`OpenError::NewerSchema`] before anything is written. This table's name and types never
//!   change, so every binary can read the version.
//! * `streams_v1` values start with an encoding tag: `1` = postcard of [`StreamRecord`]; `3` =
//!   the compact encoding of `crate::packed::record` (times relative to the start, known
//!   domains, forms, qualities, categories and languages as codes, the URL as nothing or its
//!   hash; the key's fields left out), written whenever it decodes back to the same record; `2`
//!   = the same with category and language spelled out (earlier binaries; read, and rewritten
//!   as `3` by `vodprobe compact` or the record's next write). Postcard is not self-describing, so a
//!   change to `StreamRecord`'s serialized shape needs a frozen copy of the old struct to decode
//!   tag `1`; old records stay readable, and a schema-2 file's are converted in the background. An
//!   unknown tag, an empty value, trailing bytes or a record whose own key differs from its
//!   table key is [`StoreError::Corrupt`], naming the key.
//! * `playlists_v1` values: tag `1` = zstd (level 3) of the playlist's UTF-8 text; tag `2` =
//!   the structural encoding of `crate::packed` (a Twitch playlist in a few dozen bytes), used
//!   when it decodes back to the exact text and is the smaller. Schema 3 introduced tag 2:
//!   files from schema 2 have their zstd playlists converted in the background, resumably
//!   (`pack_playlists`; cursor in `state_v1`, `playlists_packed` in `meta_v1` when done).
//! * `due_v1` is the probe queue: one entry per record whose `probe.next_due` is `Some`, ordered
//!   by due time, so "what is due now" is a prefix scan.
//! * `by_streamer_v1` and `by_stream_id_v1` answer "this streamer's broadcasts" and "every
//!   broadcast with this stream id" (restarts reuse ids) without decoding records.
//! * `live_v1` lists records whose status is `Live`, with their `last_seen`; it stays small and
//!   is scanned each crawl to find streams that ended.
//! * `qualities_due_v1` lists broadcasts captured for the first time whose other quality
//!   folders are still to be checked (background work, most viewed first). A capture adds its
//!   entry in the transaction that archives it; the check's result removes it; at most
//!   [`MAX_QUALITY_QUEUE`] entries, the least viewed dropped first. Added without a schema
//!   change: opening a file creates the table, and older binaries ignore it.
//! * `segments_v1` holds each capture's segment check (`crate::segments::SegmentStatus`):
//!   state code (0 unchecked, 1 ok, 2 partial, 3 gone), `checked_at`, `lost_at` (the first
//!   partial or gone) and when the next check is due; `segments_due_v1` is the queue of checks
//!   by due time. A first capture adds the entry, unchecked and due, in the transaction that
//!   archives it, so a restart still checks it; deleting the record deletes both. Kept beside
//!   the record rather than in it, so the record encodings stay untouched. Added without a
//!   schema change, like `qualities_due_v1`.
//! * `original_audio_v1` holds the original-audio watch of each capture whose playlist listed
//!   `-unmuted` segments (`crate::audio::OriginalAudio`): when that listing was first
//!   captured, when the originals were last seen answering, when first seen gone, and when
//!   the next check is due; `original_audio_due_v1` is its queue. A capture listing `-unmuted`
//!   adds the entry in the transaction that archives it; deleting the record deletes both.
//!   Added without a schema change, like `segments_v1`.
//! * `events_v1` holds the lifecycle events (`crate::event::Event`), keyed by a sequence
//!   number that only grows (the next one is `events_next` in `meta_v1`), so API cursors stay
//!   valid. `WriteTables` makes them from the old and new state in the transaction that changes
//!   it, so a crash loses or repeats none; `events_by_stream_v1` lists each broadcast's, and
//!   they are deleted (pruned) with it. Added without a schema change, like `segments_v1`.
//! * `state_v1` holds small named blobs the daemon persists (budget slot, learned statistics).
//! * The `by_*` tables and the two name tables (schema 2) serve the API's lists and streamer
//!   search (`query.rs`): every list is a descending walk of one of them. Status codes are
//!   0 live, 1 pending, 2 found, 3 not found. A schema-1 file gets them built on open, in
//!   batches, before its version is raised.
//!
//! # Invariants
//!
//! * The four index tables are a pure function of `streams_v1`. Every write of a record reads
//!   the old record in the same write transaction and moves its index entries to the new
//!   record's (touching only the entries that change); a delete or prune removes the record, its
//!   playlist and its index entries together. So the indexes cannot drift, even across crashes.
//!   A stored record that can no longer be decoded is replaced (or pruned) after its index
//!   entries are found by scanning, so one bad record cannot wedge the queue.
//! * Every commit is durable when `commit` returns (redb's `Durability::Immediate`) and uses
//!   quick-repair (two-phase commit plus a saved allocator state), so opening the file after a
//!   power cut is instant instead of a walk over the whole file. Commits cost two syncs; the
//!   daemon batches its writes.
//! * redb locks the file: a second process (or a second handle in this one) is refused with
//!   [`OpenError::AlreadyOpen`]. After an I/O error (disk full) redb refuses further writes on
//!   the handle ([`StoreError::needs_reopen`] says so); [`Store::reopen`] closes it and opens
//!   the file again, losing nothing committed.
//! * The cache size is always set explicitly (redb's default is 1 GiB, too much for a Pi).
//!
//! Every method blocks; the daemon calls them from `spawn_blocking`. Write transactions are
//! short and redb runs one at a time.
//!
//! # Read-modify-write
//!
//! [`Store::update`] runs a closure on an [`Update`]: reads (`get_stream`, `latest_of_streamer`,
//! `live`, `due`, `segment_status`, ...) and writes (`put_streams`, `apply`, `put_archived`,
//! `set_qualities`, `set_segment_status`, `watch_original_audio`, `set_original_audio`)
//! inside one write transaction, committed when the closure returns `Ok` and dropped on `Err`.
//! Nothing another writer commits can come between what it reads and what it writes, so
//! callers need no lock of their own. The `Store` methods of the same names are one-call
//! updates: every record write takes the same path (index maintenance, the compaction journal,
//! the generation, the quality queue's bound).
//!
//! Every write transaction holds the write gate (the compaction journal is the data it guards)
//! from its begin until its keys are journalled; an online compaction holds it only for its
//! last catch-up round and the swap of the files.
//!
//! # Errors
//!
//! One enum per operation family, as redb does it: [`OpenError`] (open, reopen, and the open
//! of a compaction), [`StoreError`] (every read and write on an open handle) and
//! [`CompactError`]. They carry redb's and the OS's errors as their sources; callers match
//! types, not messages: [`StoreError::needs_reopen`] (the handle must be opened again) and
//! [`CompactError::is_refusal`] (a compaction that did not run and may run later, rather than
//! one that failed).
//!
//! # Files
//!
//! This file holds the handle ([`Store`]): opening, reopening, and the public reads and writes.
//! `update.rs` holds [`Update`] and [`Store::update`];
//! `tables.rs` defines the tables and `WriteTables`, through which every record write goes;
//! `encoding.rs` the value tags and their encoders; `migrate.rs` schema set-up, the 1 → 2
//! migration and the background conversion of older encodings; `error.rs` the errors;
//! `query.rs` the API's lists; `checks.rs` the background checks' reads (qualities, segments,
//! original audio); `compact.rs` offline and online compaction.

use crate::record::{StreamKey, StreamRecord};
use encoding::{decode_playlist, decode_record, encode_playlist};
use migrate::init_schema;
use redb::{
    Builder, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction,
};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tables::{
    BY_GAME, BY_LANGUAGE, BY_STATUS, BY_STREAM_ID, BY_STREAMER, BY_VIEWS, DUE, EVENTS, EVENTS_BY_STREAM,
    LIVE, LOGINS, NAMES, ORIGINAL_AUDIO, ORIGINAL_AUDIO_DUE, PLAYLISTS, QUALITIES_DUE, SEGMENTS,
    SEGMENTS_DUE, STATE, STREAMS, WriteTables, get_record, indexed_record,
};

pub use compact::{CompactProgress, Compacted, Occupancy, compact_file, compacting_path};
pub use error::{CompactError, OpenError, StoreError};
pub use events::{EventFilter, EventPage};
pub use migrate::PackingStep;
pub use query::{Counts, NamePosition, Page, Position, SegmentFilter, Sort, StreamerMatch, VodFilter};
pub use update::Update;

mod checks;
mod compact;
mod encoding;
mod error;
mod events;
mod migrate;
mod query;
mod tables;
#[cfg(test)]
mod tests;
mod update;

/// The schema this binary writes and the newest it can read.
pub const SCHEMA_VERSION: u64 = 3;
const SCHEMA_VERSION_NAME: &str = "schema_version";

/// Captures waiting for a quality check beyond this drop the least viewed: the checks use only
/// spare budget, and a backlog of old broadcasts is worth less than keeping up with new ones.
pub const MAX_QUALITY_QUEUE: u64 = 10_000;

/// One table's share of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSize {
    pub name: String,
    pub entries: u64,
    /// Keys and values.
    pub stored_bytes: u64,
    /// Page headers, offsets and branch pages.
    pub metadata_bytes: u64,
    /// Unused space inside the table's pages.
    pub fragmented_bytes: u64,
}

/// The database handle. `Send + Sync`: reads run concurrently, writes one at a time.
pub struct Store {
    shared: Arc<Handle>,
}

/// The open database and what it takes to open it again. The handles [`Store::reopen`]
/// returns share it, so a handle the caller has not replaced yet keeps working on the new file
/// handle instead of failing.
struct Handle {
    /// `None` after a failed reopen (until one succeeds) or after [`Store::close`].
    db: RwLock<Option<Database>>,
    path: PathBuf,
    cache_bytes: u64,
    /// [`MAX_QUALITY_QUEUE`], lowered by tests.
    quality_queue_bound: std::sync::atomic::AtomicU64,
    /// Counts committed writes (and reopens), so that readers can tell whether what they
    /// derived from the store may have changed.
    generation: std::sync::atomic::AtomicU64,
    /// The write gate: held by every write transaction until its keys are journalled, and by
    /// a compaction for its last catch-up round and the swap of the files.
    writes: Mutex<WriteState>,
    /// A compaction is running (one at a time).
    compacting: std::sync::atomic::AtomicBool,
}

/// What the write gate guards.
struct WriteState {
    /// While a compaction copies the file: the broadcasts written since it began.
    journal: Option<BTreeSet<StreamKey>>,
}

impl WriteState {
    /// The broadcasts journalled since the last call (none when no compaction runs).
    fn take_journal(&mut self) -> BTreeSet<StreamKey> {
        self.journal.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .field("cache_bytes", &self.shared.cache_bytes)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` with a redb page cache of `cache_bytes`,
    /// creating parent directories, checking the schema version and creating every table.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, OpenError> {
        let db = open_database(path, cache_bytes)?;
        // Holding the file, this process owns what a compaction that died left beside it.
        compact::remove_leftovers(path);
        let handle = Handle {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            cache_bytes,
            quality_queue_bound: std::sync::atomic::AtomicU64::new(MAX_QUALITY_QUEUE),
            generation: std::sync::atomic::AtomicU64::new(0),
            writes: Mutex::new(WriteState { journal: None }),
            compacting: std::sync::atomic::AtomicBool::new(false),
        };
        Ok(Store {
            shared: Arc::new(handle),
        })
    }

    /// Closes the file handle (after the operations in flight on it) and opens the file again.
    /// Used after an I/O error such as a full disk, when redb refuses further writes on the
    /// old file handle; nothing committed is lost. The returned `Store` and this one share the
    /// new file handle. If the open fails, every operation answers [`StoreError::Closed`] until
    /// a later `reopen` succeeds.
    pub fn reopen(&self) -> Result<Store, OpenError> {
        let mut slot = self.shared.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = slot.take() {
            // A close error is the I/O failure that prompted the reopen; whether the file is
            // usable is what the open below reports.
            let _ = db.close();
        }
        *slot = Some(open_database(&self.shared.path, self.shared.cache_bytes)?);
        self.shared
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(Store {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Closes the database, reporting a failure to flush or unlock (dropping the last handle
    /// closes it too, ignoring such a failure). Handles sharing it answer [`StoreError::Closed`].
    pub fn close(self) -> Result<(), StoreError> {
        let db = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match db {
            Some(db) => db.close().map_err(StoreError::Close),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The bytes the file occupies on disk, as `du` counts them (0 if it cannot be read).
    /// redb grows a file by doubling it and leaves the new part unwritten, so on file systems
    /// with sparse files this is far below [`Store::file_length`] and is what fills the disk.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.shared.path)
            .map(|meta| compact::disk_bytes(&meta))
            .unwrap_or(0)
    }

    /// The file's length (its apparent size, unwritten parts included).
    pub fn file_length(&self) -> u64 {
        std::fs::metadata(&self.shared.path)
            .map(|meta| meta.len())
            .unwrap_or(0)
    }

    /// Writes records (insert or replace) and their index entries in ONE transaction.
    pub fn put_streams(&self, records: &[StreamRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.update(|update| update.put_streams(records))
    }

    /// Deletes the records under `delete` (with their playlists and index entries), then writes
    /// `write` (insert or replace), all in ONE transaction: a key in both ends up written.
    /// Deleting a key that is not stored is not an error.
    pub fn apply(&self, write: &[StreamRecord], delete: &[StreamKey]) -> Result<(), StoreError> {
        if write.is_empty() && delete.is_empty() {
            return Ok(());
        }
        self.update(|update| update.apply(write, delete))
    }

    /// Archives a playlist: writes the record (with its archive info) and the compressed text in
    /// one transaction.
    /// A broadcast archived as found for the first time also joins the quality-check queue.
    pub fn put_archived(&self, record: &StreamRecord, playlist_text: &str) -> Result<(), StoreError> {
        // Encoded before the write gate is taken: other writers need not wait for zstd.
        let payload = encode_playlist(record.key(), playlist_text)?;
        self.update(|update| update.put_archived_encoded(record, &payload, playlist_text))
    }

    /// Archives many records with their playlists in one transaction (imports, benchmarks):
    /// all of them or, on error, none.
    pub fn put_archived_many(&self, items: &[(StreamRecord, String)]) -> Result<(), StoreError> {
        let payloads = items
            .iter()
            .map(|(record, text)| encode_playlist(record.key(), text))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(|txn, touched| {
            let mut tables = WriteTables::open(txn, touched)?;
            for ((record, _), payload) in items.iter().zip(&payloads) {
                tables.put_record(record)?;
                tables.playlists.insert(record.key(), payload.as_slice())?;
            }
            Ok(())
        })
    }

    pub fn get_stream(&self, key: StreamKey) -> Result<Option<StreamRecord>, StoreError> {
        self.read(|txn| get_record(&txn.open_table(STREAMS)?, key))
    }

    /// Looks up several records in one read transaction; the answer is aligned with `keys`.
    pub fn get_streams(&self, keys: &[StreamKey]) -> Result<Vec<Option<StreamRecord>>, StoreError> {
        self.read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            keys.iter().map(|key| get_record(&streams, *key)).collect()
        })
    }

    /// Every broadcast with this stream id (a restart reuses it), oldest start first.
    pub fn by_stream_id(&self, stream_id: u64) -> Result<Vec<StreamRecord>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(BY_STREAM_ID)?;
            let streams = txn.open_table(STREAMS)?;
            let mut records = Vec::new();
            for entry in index.range((stream_id, i64::MIN)..=(stream_id, i64::MAX))? {
                let (id, start) = entry?.0.value();
                records.push(indexed_record(&streams, BY_STREAM_ID.name(), (start, id))?);
            }
            Ok(records)
        })
    }

    /// The streamer's broadcast with the most recent start (strictly before `before_start` if
    /// given).
    pub fn latest_of_streamer(
        &self,
        streamer_id: u64,
        before_start: Option<i64>,
    ) -> Result<Option<StreamRecord>, StoreError> {
        self.read(|txn| {
            tables::latest_of_streamer(
                &txn.open_table(BY_STREAMER)?,
                &txn.open_table(STREAMS)?,
                streamer_id,
                before_start,
            )
        })
    }

    /// The streamer's broadcasts, newest start first, at most `limit`.
    pub fn streamer_records(&self, streamer_id: u64, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(BY_STREAMER)?;
            let streams = txn.open_table(STREAMS)?;
            let range = (streamer_id, i64::MIN, 0)..=(streamer_id, i64::MAX, u64::MAX);
            let mut records = Vec::new();
            for entry in index.range(range)?.rev().take(limit) {
                let (_, start, id) = entry?.0.value();
                records.push(indexed_record(&streams, BY_STREAMER.name(), (start, id))?);
            }
            Ok(records)
        })
    }

    /// Records with status `Live`, in key order.
    pub fn live(&self) -> Result<Vec<StreamRecord>, StoreError> {
        self.read(|txn| tables::live_records(&txn.open_table(LIVE)?, &txn.open_table(STREAMS)?))
    }

    /// Keys and `last_seen` of the records with status `Live`, in key order, without decoding
    /// the records (the cheap form of [`Store::live`] for each crawl).
    pub fn live_last_seen(&self) -> Result<Vec<(StreamKey, i64)>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(LIVE)?;
            let mut out = Vec::new();
            for entry in index.iter()? {
                let (key, last_seen) = entry?;
                out.push((key.value(), last_seen.value()));
            }
            Ok(out)
        })
    }

    /// Records whose next_due <= now, earliest due first (ties by key), at most `limit`.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        self.read(|txn| {
            tables::due_records(
                &txn.open_table(DUE)?,
                &txn.open_table(STREAMS)?,
                now,
                limit,
                false,
            )
        })
    }

    /// Records whose next_due <= now, latest due first, at most `limit`: with a backlog, the
    /// broadcasts that just became due (just ended: most at risk of a quick delete).
    pub fn due_newest(&self, now: i64, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        self.read(|txn| {
            tables::due_records(&txn.open_table(DUE)?, &txn.open_table(STREAMS)?, now, limit, true)
        })
    }

    /// The earliest `next_due` in the queue, if any.
    pub fn next_due_time(&self) -> Result<Option<i64>, StoreError> {
        self.read(|txn| Ok(txn.open_table(DUE)?.first()?.map(|(key, _)| key.value().0)))
    }

    /// Entries in the probe queue (records with a `next_due`).
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(DUE)?.len()?))
    }

    pub fn count_streams(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(STREAMS)?.len()?))
    }

    /// The archived playlist text of a broadcast, if one was stored.
    pub fn playlist(&self, key: StreamKey) -> Result<Option<String>, StoreError> {
        self.read(|txn| match txn.open_table(PLAYLISTS)?.get(key)? {
            Some(value) => decode_playlist(key, value.value()).map(Some),
            None => Ok(None),
        })
    }

    /// Deletes records (and their playlists and index entries) with start_unix < cutoff, in
    /// transactions of at most `batch` records (at least 1); returns how many were deleted.
    pub fn prune(&self, cutoff_start: i64, batch: usize) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut deleted = 0u64;
        loop {
            let count = self.write(|txn, touched| {
                let mut tables = WriteTables::open(txn, touched)?;
                let keys = tables
                    .streams
                    .range(..(cutoff_start, 0))?
                    .take(batch)
                    .map(|entry| Ok(entry?.0.value()))
                    .collect::<Result<Vec<StreamKey>, StoreError>>()?;
                keys.iter().try_for_each(|key| tables.delete_record(*key))?;
                Ok(keys.len())
            })?;
            deleted += count as u64;
            if count < batch {
                return Ok(deleted);
            }
        }
    }

    /// [`Store::prune`] where some streamers have their own cutoff (a followed channel's
    /// retention, longer or shorter): their records go when they start before it, everyone
    /// else's before `cutoff_start`. Returns how many were deleted.
    pub fn prune_with(
        &self,
        cutoff_start: i64,
        own: &HashMap<u64, i64>,
        batch: usize,
    ) -> Result<u64, StoreError> {
        if own.is_empty() {
            return self.prune(cutoff_start, batch);
        }
        let batch = batch.max(1);
        // Records older than the common cutoff that a longer retention keeps: few, the
        // followed channels' broadcasts in their extra time.
        let keep: BTreeSet<StreamKey> = self.read(|txn| {
            let by_streamer = txn.open_table(BY_STREAMER)?;
            let mut keep = BTreeSet::new();
            for (&streamer, &own_cutoff) in own.iter().filter(|(_, c)| **c < cutoff_start) {
                let range = (streamer, own_cutoff, 0)..(streamer, cutoff_start, 0);
                for entry in by_streamer.range(range)? {
                    let (_, start, id) = entry?.0.value();
                    keep.insert((start, id));
                }
            }
            Ok(keep)
        })?;
        let mut deleted = 0u64;
        let mut resume: Option<StreamKey> = None;
        loop {
            let (count, examined, last) = self.write(|txn, touched| {
                let mut tables = WriteTables::open(txn, touched)?;
                let lower = resume.map_or(Bound::Unbounded, Bound::Excluded);
                let keys = tables
                    .streams
                    .range((lower, Bound::Excluded((cutoff_start, 0))))?
                    .take(batch)
                    .map(|entry| Ok(entry?.0.value()))
                    .collect::<Result<Vec<StreamKey>, StoreError>>()?;
                let doomed: Vec<StreamKey> = keys.iter().copied().filter(|k| !keep.contains(k)).collect();
                doomed.iter().try_for_each(|key| tables.delete_record(*key))?;
                Ok((doomed.len(), keys.len(), keys.last().copied()))
            })?;
            deleted += count as u64;
            resume = last;
            if examined < batch {
                break;
            }
        }
        // Shorter retentions: the streamer's records between its cutoff and the common one.
        for (&streamer, &own_cutoff) in own.iter().filter(|(_, c)| **c > cutoff_start) {
            deleted += self.write(|txn, touched| {
                let mut tables = WriteTables::open(txn, touched)?;
                let keys = tables
                    .by_streamer
                    .range((streamer, i64::MIN, 0)..(streamer, own_cutoff, 0))?
                    .map(|entry| {
                        let (_, start, id) = entry?.0.value();
                        Ok((start, id))
                    })
                    .collect::<Result<Vec<StreamKey>, StoreError>>()?;
                keys.iter().try_for_each(|key| tables.delete_record(*key))?;
                Ok(keys.len() as u64)
            })?;
        }
        Ok(deleted)
    }

    /// All records in key order after `after` (exclusive), at most `limit`.
    pub fn scan(&self, after: Option<StreamKey>, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            let mut records = Vec::new();
            for entry in streams.range((lower, Bound::Unbounded))?.take(limit) {
                let (key, value) = entry?;
                records.push(decode_record(key.value(), value.value())?);
            }
            Ok(records)
        })
    }

    /// Where the file's bytes go, table by table (benchmarks and capacity planning).
    pub fn table_sizes(&self) -> Result<Vec<TableSize>, StoreError> {
        fn size<K: redb::Key + 'static, V: redb::Value + 'static>(
            txn: &ReadTransaction,
            table: TableDefinition<K, V>,
        ) -> Result<TableSize, StoreError> {
            let opened = txn.open_table(table)?;
            let stats = opened.stats()?;
            Ok(TableSize {
                name: table.name().to_string(),
                entries: opened.len()?,
                stored_bytes: stats.stored_bytes(),
                metadata_bytes: stats.metadata_bytes(),
                fragmented_bytes: stats.fragmented_bytes(),
            })
        }
        self.read(|txn| {
            Ok(vec![
                size(txn, STREAMS)?,
                size(txn, PLAYLISTS)?,
                size(txn, DUE)?,
                size(txn, BY_STREAMER)?,
                size(txn, BY_STREAM_ID)?,
                size(txn, LIVE)?,
                size(txn, BY_GAME)?,
                size(txn, BY_LANGUAGE)?,
                size(txn, BY_STATUS)?,
                size(txn, BY_VIEWS)?,
                size(txn, LOGINS)?,
                size(txn, NAMES)?,
                size(txn, QUALITIES_DUE)?,
                size(txn, SEGMENTS)?,
                size(txn, SEGMENTS_DUE)?,
                size(txn, ORIGINAL_AUDIO)?,
                size(txn, ORIGINAL_AUDIO_DUE)?,
                size(txn, EVENTS)?,
                size(txn, EVENTS_BY_STREAM)?,
            ])
        })
    }

    /// Stores a small named blob for the daemon (replacing any previous value).
    pub fn put_state(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|txn, _| {
            txn.open_table(STATE)?.insert(name, value)?;
            Ok(())
        })
    }

    pub fn get_state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(STATE)?
                .get(name)?
                .map(|value| value.value().to_vec()))
        })
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let slot = self.shared.db.read().unwrap_or_else(PoisonError::into_inner);
        let db = slot.as_ref().ok_or_else(|| self.closed())?;
        f(db)
    }

    /// What an operation on a handle without an open file answers.
    fn closed(&self) -> StoreError {
        StoreError::Closed {
            path: self.shared.path.clone(),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_db(|db| f(&db.begin_read()?))
    }

    /// Runs `f` in a write transaction and commits it; an error from `f` aborts it. `f` lists
    /// the broadcasts whose records, playlists or queue entries it changed (WriteTables does),
    /// so that a compaction running meanwhile can bring its copy up to date.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Vec<StreamKey>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transact(f)
    }

    /// [`Store::write`] for any error a [`StoreError`] converts into (what `update` needs).
    fn transact<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Vec<StreamKey>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact_if(|txn, touched| f(txn, touched).map(|out| (out, true)))
    }

    /// [`Store::transact`] where `f` also says whether to commit: a transaction it leaves
    /// uncommitted is aborted, costs no sync and leaves the generation alone.
    fn transact_if<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Vec<StreamKey>) -> Result<(T, bool), E>,
    ) -> Result<T, E> {
        let mut writes = self.shared.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut touched = Vec::new();
        let result = {
            let slot = self.shared.db.read().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(db) => in_write_transaction(db, |txn| f(txn, &mut touched)),
                None => Err(self.closed().into()),
            }
        };
        if let Ok((_, true)) = &result {
            self.shared
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        // Recorded after the commit: a compaction that takes the journal and then reads the
        // store sees either this write or its keys in the next journal. Recorded after a failed
        // commit too, which redb may still have made durable; a key copied again is harmless.
        if let Some(journal) = writes.journal.as_mut() {
            journal.extend(touched);
        }
        result.map(|(out, _)| out)
    }

    /// Changes with every committed write. Read it before a query: if it is the same
    /// afterwards, nothing committed since could have changed the query's answer.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Runs `f` in a new write transaction of `db` and commits it when `f` says so; an error from
/// `f`, or `false`, aborts it.
fn in_write_transaction<T, E: From<StoreError>>(
    db: &Database,
    f: impl FnOnce(&WriteTransaction) -> Result<(T, bool), E>,
) -> Result<(T, bool), E> {
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    txn.set_quick_repair(true);
    let (out, commit) = f(&txn)?;
    if commit {
        txn.commit().map_err(StoreError::from)?;
    } else {
        txn.abort().map_err(StoreError::from)?;
    }
    Ok((out, commit))
}

/// Opens the file (creating it and its parent directories), then checks and sets up the schema.
fn open_database(path: &Path, cache_bytes: u64) -> Result<Database, OpenError> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let cache = usize::try_from(cache_bytes).unwrap_or(usize::MAX);
    let db = Builder::new()
        .set_cache_size(cache)
        .create(path)
        .map_err(|error| match error {
            DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen {
                path: path.to_path_buf(),
            },
            source => OpenError::Database {
                path: path.to_path_buf(),
                source,
            },
        })?;
    init_schema(&db, path)?;
    Ok(db)
}
