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
//!
//! Times (`start_unix`, `next_due`) are `i64` unix seconds; ids are `u64`.
//!
//! * `meta_v1` holds `schema_version` (currently [`SCHEMA_VERSION`]). A fresh file gets it
//!   written; a file with a larger number was written by a newer binary and is refused with
//!   [`StoreError::NewerSchema`] before anything is written. This table's name and types never
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
//!   [`StoreError::AlreadyOpen`]. After an I/O error (disk full) redb refuses further writes on
//!   the handle; [`Store::reopen`] closes it and opens the file again, losing nothing committed.
//! * The cache size is always set explicitly (redb's default is 1 GiB, too much for a Pi).
//!
//! Every method blocks; the daemon calls them from `spawn_blocking`. Write transactions are
//! short and redb runs one at a time.

use crate::packed::record::Layout;
use crate::record::{Status, StreamKey, StreamRecord};
use redb::{
    Builder, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, TableHandle, WriteTransaction,
};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

pub use compact::{CompactProgress, Compacted, Occupancy, compact_file, compacting_path};
pub use query::{Counts, NamePosition, Page, Position, Sort, StreamerMatch, VodFilter};

mod compact;
mod shim;
pub use shim::{OpenError, Update};
#[cfg(test)]
mod model_tests;
mod query;
#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod tests;

/// The schema this binary writes and the newest it can read.
pub const SCHEMA_VERSION: u64 = 3;
const SCHEMA_VERSION_NAME: &str = "schema_version";

/// `streams_v1` tag: postcard of `StreamRecord`.
const RECORD_POSTCARD: u8 = 1;
/// `streams_v1` tag: `crate::packed::record` with game and language spelled out (read only).
const RECORD_PACKED_SPELLED: u8 = 2;
/// `streams_v1` tag: `crate::packed::record` (key fields left out, known categories and
/// languages as codes).
const RECORD_PACKED: u8 = 3;
/// `state_v1` entry: the last record key the conversion of tag-1 and tag-2 records to tag 3
/// has passed. (Names without `_3` were the tag-1 → tag-2 pass of earlier binaries; a file
/// they finished runs this pass once more for its tag-2 records.)
const RECORD_PACKING_CURSOR: &str = "store.record_packing_cursor_3";
/// `meta_v1` entry: 1 once every tag-1 and tag-2 record has been offered tag 3.
const RECORDS_PACKED: &str = "records_packed_3";
/// `playlists_v1` tag: zstd of the UTF-8 playlist text.
const PLAYLIST_ZSTD: u8 = 1;
/// `playlists_v1` tag: the structural encoding of `crate::packed`.
const PLAYLIST_PACKED: u8 = 2;
const PLAYLIST_ZSTD_LEVEL: i32 = 3;
/// A packed playlist this small is kept without trying zstd (Twitch's pack to ~30 bytes).
const PACKED_GOOD_ENOUGH: usize = 256;
/// `state_v1` entry: the last playlist key the tag-1 → tag-2 conversion has passed.
const PACKING_CURSOR: &str = "store.packing_cursor";
/// `meta_v1` entry: 1 once every tag-1 playlist has been offered the structural encoding.
const PACKING_DONE: &str = "playlists_packed";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
const STREAMS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("streams_v1");
const PLAYLISTS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("playlists_v1");
const DUE: TableDefinition<(i64, i64, u64), ()> = TableDefinition::new("due_v1");
const BY_STREAMER: TableDefinition<(u64, i64, u64), ()> = TableDefinition::new("by_streamer_v1");
const BY_STREAM_ID: TableDefinition<(u64, i64), ()> = TableDefinition::new("by_stream_id_v1");
const LIVE: TableDefinition<(i64, u64), i64> = TableDefinition::new("live_v1");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state_v1");
const BY_GAME: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("by_game_v1");
const BY_LANGUAGE: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("by_language_v1");
const BY_STATUS: TableDefinition<(u8, i64, u64), ()> = TableDefinition::new("by_status_v1");
const BY_VIEWS: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("by_views_v1");
/// `(lowercase login, streamer_id)` → how many stored records carry that pair.
const LOGINS: TableDefinition<(&str, u64), u32> = TableDefinition::new("logins_v1");
/// `(streamer_id, lowercase login)` → the same count: a streamer's names, old and new.
const NAMES: TableDefinition<(u64, &str), u32> = TableDefinition::new("names_v1");
/// Stored playlists are at most `limits.max_playlist_bytes` (8 MiB by default); this bound
/// only keeps a corrupt size field from allocating without limit.
const MAX_PLAYLIST_TEXT: u64 = 256 << 20;
const QUALITIES_DUE: TableDefinition<(i64, u64), u32> = TableDefinition::new("qualities_due_v1");
/// Captures waiting for a quality check beyond this drop the least viewed: the checks use only
/// spare budget, and a backlog of old broadcasts is worth less than keeping up with new ones.
pub const MAX_QUALITY_QUEUE: u64 = 10_000;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "the database {} is locked: another vodprobe is running on this data_dir \
         (stop it, or point data_dir elsewhere)",
        path.display()
    )]
    AlreadyOpen { path: PathBuf },
    #[error(
        "this database was written by a newer vodprobe (schema version {found}, this binary \
         supports up to {supported}); upgrade, or point data_dir elsewhere"
    )]
    NewerSchema { found: u64, supported: u64 },
    #[error("the database is corrupt: {what}")]
    Corrupt { what: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    /// Storage, transaction and commit failures (disk full, I/O errors); the message is redb's.
    #[error("database I/O failed: {0}")]
    Io(String),
    /// A compaction of the file in use did not happen or stopped; the file is unchanged.
    #[error("compaction did not run: {0}")]
    Compaction(String),
}

impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> Self {
        match error {
            redb::StorageError::Corrupted(what) => StoreError::Corrupt { what },
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(error: redb::TransactionError) -> Self {
        match error {
            redb::TransactionError::Storage(storage) => storage.into(),
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(error: redb::CommitError) -> Self {
        match error {
            redb::CommitError::Storage(storage) => storage.into(),
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(error: redb::TableError) -> Self {
        use redb::TableError as E;
        match error {
            E::Storage(storage) => storage.into(),
            // The file disagrees with this binary about a table it created itself.
            E::TableTypeMismatch { .. }
            | E::TableIsMultimap(_)
            | E::TableIsNotMultimap(_)
            | E::TypeDefinitionChanged { .. }
            | E::TableDoesNotExist(_) => StoreError::Corrupt {
                what: error.to_string(),
            },
            other => StoreError::Io(other.to_string()),
        }
    }
}

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

/// What one [`Store::pack_playlists`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PackingStep {
    pub examined: u64,
    pub converted: u64,
    /// Stored sizes of the converted playlists before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Every playlist has been offered the structural encoding.
    pub done: bool,
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
    /// Held by every write transaction, and by a compaction while it swaps files.
    writes: std::sync::Mutex<()>,
    /// While a compaction copies the file: the broadcasts written since it began.
    journal: std::sync::Mutex<Option<std::collections::BTreeSet<StreamKey>>>,
    /// A compaction is running (one at a time).
    compacting: std::sync::atomic::AtomicBool,
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
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = open_database(path, cache_bytes)?;
        // Holding the file, this process owns what a compaction that died left beside it.
        compact::remove_leftovers(path);
        let handle = Handle {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            cache_bytes,
            quality_queue_bound: std::sync::atomic::AtomicU64::new(MAX_QUALITY_QUEUE),
            generation: std::sync::atomic::AtomicU64::new(0),
            writes: std::sync::Mutex::new(()),
            journal: std::sync::Mutex::new(None),
            compacting: std::sync::atomic::AtomicBool::new(false),
        };
        Ok(Store {
            shared: Arc::new(handle),
        })
    }

    /// Closes the file handle (after the operations in flight on it) and opens the file again.
    /// Used after an I/O error such as a full disk, when redb refuses further writes on the
    /// old file handle; nothing committed is lost. The returned `Store` and this one share the
    /// new file handle. If the open fails, every operation answers [`StoreError::Io`] until a
    /// later `reopen` succeeds.
    pub fn reopen(&self) -> Result<Store, StoreError> {
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
    /// closes it too, ignoring such a failure). Handles sharing it answer [`StoreError::Io`].
    pub fn close(self) -> Result<(), StoreError> {
        let db = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match db {
            Some(db) => db.close().map_err(|error| StoreError::Io(error.to_string())),
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
        self.write(|txn, touched| {
            let mut tables = WriteTables::open(txn, touched)?;
            records.iter().try_for_each(|record| tables.put_record(record))
        })
    }

    /// Deletes the records under `delete` (with their playlists and index entries), then writes
    /// `write` (insert or replace), all in ONE transaction: a key in both ends up written.
    /// Deleting a key that is not stored is not an error.
    pub fn apply(&self, write: &[StreamRecord], delete: &[StreamKey]) -> Result<(), StoreError> {
        if write.is_empty() && delete.is_empty() {
            return Ok(());
        }
        self.write(|txn, touched| {
            let mut tables = WriteTables::open(txn, touched)?;
            delete.iter().try_for_each(|key| tables.delete_record(*key))?;
            write.iter().try_for_each(|record| tables.put_record(record))
        })
    }

    /// Archives a playlist: writes the record (with its archive info) and the compressed text in
    /// one transaction.
    /// A broadcast archived as found for the first time also joins the quality-check queue.
    pub fn put_archived(&self, record: &StreamRecord, playlist_text: &str) -> Result<(), StoreError> {
        let key = record.key();
        let payload = encode_playlist(key, playlist_text)?;
        self.write(|txn, touched| {
            let mut tables = WriteTables::open(txn, touched)?;
            let was_found = match tables.streams.get(key)? {
                Some(old) => decode_record(key, old.value()).is_ok_and(|old| old.status == Status::Found),
                None => false,
            };
            tables.put_record(record)?;
            tables.playlists.insert(key, payload.as_slice())?;
            if record.status == Status::Found && !was_found {
                let bound = self
                    .shared
                    .quality_queue_bound
                    .load(std::sync::atomic::Ordering::Relaxed);
                tables.queue_quality_check(key, record.max_viewers, bound)?;
            }
            Ok(())
        })
    }

    /// Up to `limit` broadcasts waiting for a quality check, most viewed first.
    pub fn quality_queue(&self, limit: usize) -> Result<Vec<StreamKey>, StoreError> {
        let mut waiting = self.read(|txn| {
            let queue = txn.open_table(QUALITIES_DUE)?;
            let mut waiting = Vec::new();
            for entry in queue.iter()? {
                let (key, viewers) = entry?;
                waiting.push((viewers.value(), key.value()));
            }
            Ok(waiting)
        })?;
        waiting.sort_by_key(|&(viewers, key)| (std::cmp::Reverse(viewers), key));
        Ok(waiting.into_iter().take(limit).map(|(_, key)| key).collect())
    }

    #[cfg(test)]
    fn set_quality_queue_bound(&self, bound: u64) {
        self.shared
            .quality_queue_bound
            .store(bound, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn quality_queue_len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(QUALITIES_DUE)?.len()?))
    }

    /// Records the qualities a check found and takes the broadcast off the quality queue, in
    /// one transaction. A broadcast no longer found (or gone) just leaves the queue.
    pub fn set_qualities(&self, key: StreamKey, qualities: &[String]) -> Result<(), StoreError> {
        self.write(|txn, touched| {
            let mut tables = WriteTables::open(txn, touched)?;
            tables.touched.push(key);
            tables.qualities_due.remove(key)?;
            let record = match tables.streams.get(key)? {
                Some(value) => Some(decode_record(key, value.value())?),
                None => None,
            };
            if let Some(mut record) = record
                && record.status == Status::Found
                && let Some(archive) = record.archive.as_mut()
            {
                archive.qualities = qualities.to_vec();
                tables.put_record(&record)?;
            }
            Ok(())
        })
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
        let upper = match before_start {
            Some(before) => Bound::Excluded((streamer_id, before, 0)),
            None => Bound::Included((streamer_id, i64::MAX, u64::MAX)),
        };
        self.read(|txn| {
            let index = txn.open_table(BY_STREAMER)?;
            let lower = Bound::Included((streamer_id, i64::MIN, 0));
            match index.range((lower, upper))?.next_back() {
                Some(entry) => {
                    let (_, start, id) = entry?.0.value();
                    let streams = txn.open_table(STREAMS)?;
                    indexed_record(&streams, BY_STREAMER.name(), (start, id)).map(Some)
                }
                None => Ok(None),
            }
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
        self.read(|txn| {
            let index = txn.open_table(LIVE)?;
            let streams = txn.open_table(STREAMS)?;
            let mut records = Vec::new();
            for entry in index.iter()? {
                let key = entry?.0.value();
                records.push(indexed_record(&streams, LIVE.name(), key)?);
            }
            Ok(records)
        })
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
            let queue = txn.open_table(DUE)?;
            let streams = txn.open_table(STREAMS)?;
            let mut records = Vec::new();
            for entry in queue.range(..=(now, i64::MAX, u64::MAX))?.take(limit) {
                let (_, start, id) = entry?.0.value();
                records.push(indexed_record(&streams, DUE.name(), (start, id))?);
            }
            Ok(records)
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

    /// Stores a small named blob for the daemon (replacing any previous value).
    /// Converts up to `batch` playlists stored as zstd (tag 1) to the structural encoding where
    /// it is smaller, then records in the same way (postcard or the spelled-out compact layout
    /// to the current compact encoding), in
    /// transactions that also record how far they got, so the conversion resumes where it
    /// stopped after a restart. Call until `done`.
    pub fn pack_playlists(&self, batch: usize) -> Result<PackingStep, StoreError> {
        let playlists = self.pack_table(PLAYLISTS, PACKING_CURSOR, PACKING_DONE, batch, |key, old| {
            if old.first() != Some(&PLAYLIST_ZSTD) {
                return Ok(None);
            }
            // An undecodable value stays as it is: reading it reports the damage.
            let Ok(text) = decode_playlist(key, old) else {
                return Ok(None);
            };
            let new = encode_playlist(key, &text)?;
            Ok((new.first() == Some(&PLAYLIST_PACKED)).then_some(new))
        })?;
        if !playlists.done {
            return Ok(playlists);
        }
        let mut records = self.pack_table(
            STREAMS,
            RECORD_PACKING_CURSOR,
            RECORDS_PACKED,
            batch,
            |key, old| {
                if ![RECORD_POSTCARD, RECORD_PACKED_SPELLED].contains(&old[..].first().copied().unwrap_or(0))
                {
                    return Ok(None);
                }
                let Ok(record) = decode_record(key, old) else {
                    return Ok(None);
                };
                let new = encode_record(&record)?;
                Ok((new.first() == Some(&RECORD_PACKED)).then_some(new))
            },
        )?;
        records.examined += playlists.examined;
        records.converted += playlists.converted;
        records.bytes_before += playlists.bytes_before;
        records.bytes_after += playlists.bytes_after;
        Ok(records)
    }

    fn pack_table(
        &self,
        table: TableDefinition<(i64, u64), &[u8]>,
        cursor_name: &str,
        done_name: &str,
        batch: usize,
        convert: impl Fn(StreamKey, &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<PackingStep, StoreError> {
        self.write(|txn, touched| {
            let mut step = PackingStep::default();
            let mut meta = txn.open_table(META)?;
            if meta.get(done_name)?.is_some() {
                step.done = true;
                return Ok(step);
            }
            let mut state = txn.open_table(STATE)?;
            let cursor = state
                .get(cursor_name)?
                .and_then(|value| postcard::from_bytes::<StreamKey>(value.value()).ok());
            let mut values = txn.open_table(table)?;
            let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let mut found = Vec::new();
            let mut last = cursor;
            for entry in values.range((lower, Bound::Unbounded))?.take(batch.max(1)) {
                let (key, value) = entry?;
                step.examined += 1;
                last = Some(key.value());
                if let Some(new) = convert(key.value(), value.value())? {
                    found.push((key.value(), value.value().len(), new));
                }
            }
            for (key, old_len, new) in found {
                values.insert(key, new.as_slice())?;
                touched.push(key);
                step.converted += 1;
                step.bytes_before += old_len as u64;
                step.bytes_after += new.len() as u64;
            }
            if step.examined < batch.max(1) as u64 {
                meta.insert(done_name, 1)?;
                state.remove(cursor_name)?;
                step.done = true;
            } else if let Some(last) = last {
                let cursor = postcard::to_allocvec(&last).map_err(|error| StoreError::Encode {
                    what: "a conversion cursor".to_string(),
                    message: error.to_string(),
                })?;
                state.insert(cursor_name, cursor.as_slice())?;
            }
            Ok(step)
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
            ])
        })
    }

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
        let db = slot.as_ref().ok_or_else(|| {
            StoreError::Io(format!(
                "the database {} is closed (closed, or a reopen failed); reopen it",
                self.shared.path.display()
            ))
        })?;
        f(db)
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
        let _gate = self.shared.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut touched = Vec::new();
        let result = self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_quick_repair(true);
            let out = f(&txn, &mut touched)?;
            txn.commit()?;
            Ok(out)
        });
        if result.is_ok() {
            self.shared
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        // Recorded after the commit: a compaction that takes the journal and then reads the
        // store sees either this write or its keys in the next journal. Recorded after a failed
        // commit too, which redb may still have made durable; a key copied again is harmless.
        if let Some(journal) = self
            .shared
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            journal.extend(touched);
        }
        result
    }

    /// Changes with every committed write. Read it before a query: if it is the same
    /// afterwards, nothing committed since could have changed the query's answer.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Opens the file (creating it and its parent directories), then checks and sets up the schema.
fn open_database(path: &Path, cache_bytes: u64) -> Result<Database, StoreError> {
    let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| open_error(Box::new(error)))?;
    }
    let cache = usize::try_from(cache_bytes).unwrap_or(usize::MAX);
    let db = Builder::new()
        .set_cache_size(cache)
        .create(path)
        .map_err(|error| match error {
            DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: path.to_path_buf(),
            },
            other => open_error(Box::new(other)),
        })?;
    init_schema(&db)?;
    Ok(db)
}

/// Refuses a newer schema without writing, then creates every table and, in a fresh file,
/// writes the schema version; an older file is migrated first.
fn init_schema(db: &Database) -> Result<(), StoreError> {
    let found = {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(meta) => meta.get(SCHEMA_VERSION_NAME)?.map(|value| value.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(other) => return Err(other.into()),
        }
    };
    if let Some(found) = found.filter(|found| *found > SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == Some(1) {
        migrate_1_to_2(db)?;
    }
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    {
        let mut meta = txn.open_table(META)?;
        if found.is_none() {
            // A fresh file has no zstd playlists or postcard records to convert.
            meta.insert(PACKING_DONE, 1)?;
            meta.insert(RECORDS_PACKED, 1)?;
        }
        // Schema 3 (playlist tag 2) needs no synchronous step: older playlists are converted
        // in the background (`pack_playlists`) and read meanwhile as they are.
        let current = meta.get(SCHEMA_VERSION_NAME)?.map(|v| v.value());
        if current != Some(SCHEMA_VERSION) {
            meta.insert(SCHEMA_VERSION_NAME, SCHEMA_VERSION)?;
        }
        WriteTables::open(&txn, &mut Vec::new())?;
        txn.open_table(STATE)?;
    }
    txn.commit()?;
    Ok(())
}

/// Records per transaction when an index is built over existing records.
const MIGRATION_BATCH: usize = 5_000;

/// Schema 2 adds the query indexes (game, language, status, views, names). They are built
/// from `streams_v1` in batches; the version is written only after the last batch. A run cut
/// short starts again from empty tables, so counts are never applied twice.
fn migrate_1_to_2(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    txn.delete_table(BY_GAME)?;
    txn.delete_table(BY_LANGUAGE)?;
    txn.delete_table(BY_STATUS)?;
    txn.delete_table(BY_VIEWS)?;
    txn.delete_table(LOGINS)?;
    txn.delete_table(NAMES)?;
    txn.commit()?;
    let mut after: Option<StreamKey> = None;
    loop {
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
        let examined = {
            let mut touched = Vec::new();
            let mut tables = WriteTables::open(&txn, &mut touched)?;
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut batch = Vec::with_capacity(MIGRATION_BATCH);
            let mut examined = 0;
            for entry in tables
                .streams
                .range((lower, Bound::Unbounded))?
                .take(MIGRATION_BATCH)
            {
                let (key, value) = entry?;
                // An undecodable record gets no entries, as if it had been purged.
                if let Ok(record) = decode_record(key.value(), value.value()) {
                    batch.push(record);
                }
                after = Some(key.value());
                examined += 1;
            }
            batch
                .iter()
                .try_for_each(|record| tables.insert_query_entries(record))?;
            examined
        };
        if examined == 0 {
            txn.open_table(META)?.insert(SCHEMA_VERSION_NAME, 2)?;
            txn.commit()?;
            return Ok(());
        }
        txn.commit()?;
    }
}

/// The record tables of one write transaction, opened together so a record and its index
/// entries always change together.
struct WriteTables<'txn> {
    /// The broadcasts this transaction changed.
    touched: &'txn mut Vec<StreamKey>,
    streams: Table<'txn, (i64, u64), &'static [u8]>,
    playlists: Table<'txn, (i64, u64), &'static [u8]>,
    due: Table<'txn, (i64, i64, u64), ()>,
    by_streamer: Table<'txn, (u64, i64, u64), ()>,
    by_stream_id: Table<'txn, (u64, i64), ()>,
    live: Table<'txn, (i64, u64), i64>,
    by_game: Table<'txn, (&'static str, i64, u64), ()>,
    by_language: Table<'txn, (&'static str, i64, u64), ()>,
    by_status: Table<'txn, (u8, i64, u64), ()>,
    by_views: Table<'txn, (u32, i64, u64), ()>,
    logins: Table<'txn, (&'static str, u64), u32>,
    names: Table<'txn, (u64, &'static str), u32>,
    qualities_due: Table<'txn, (i64, u64), u32>,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction, touched: &'txn mut Vec<StreamKey>) -> Result<Self, StoreError> {
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
        })
    }

    /// Inserts or replaces a record, replacing the old record's index entries with its own.
    fn put_record(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
        let key = record.key();
        self.touched.push(key);
        let encoded = encode_record(record)?;
        let old = self
            .streams
            .insert(key, encoded.as_slice())?
            .map(|old| decode_record(key, old.value()));
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
    fn queue_quality_check(&mut self, key: StreamKey, viewers: u32, bound: u64) -> Result<(), StoreError> {
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

    /// Deletes a record, its playlist and its index entries.
    fn delete_record(&mut self, key: StreamKey) -> Result<(), StoreError> {
        self.touched.push(key);
        self.playlists.remove(key)?;
        self.qualities_due.remove(key)?;
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
    fn purge_index_entries(&mut self, key: StreamKey) -> Result<(), StoreError> {
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
    fn insert_query_entries(&mut self, record: &StreamRecord) -> Result<(), StoreError> {
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
fn status_code(status: Status) -> u8 {
    match status {
        Status::Live => 0,
        Status::Pending => 1,
        Status::Found => 2,
        Status::NotFound => 3,
    }
}

fn get_record(
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
    key: StreamKey,
) -> Result<Option<StreamRecord>, StoreError> {
    match streams.get(key)? {
        Some(value) => decode_record(key, value.value()).map(Some),
        None => Ok(None),
    }
}

/// The record an index entry points at; a dangling entry is corruption.
fn indexed_record(
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

/// The compact encoding, trusted only once it decodes back to the same record; else postcard.
fn encode_record(record: &StreamRecord) -> Result<Vec<u8>, StoreError> {
    let mut packed = Vec::with_capacity(192);
    packed.push(RECORD_PACKED);
    packed.extend_from_slice(&crate::packed::record::pack_record(record));
    if crate::packed::record::unpack_record(record.key(), &packed[1..], Layout::Coded)
        .is_ok_and(|back| back == *record)
    {
        return Ok(packed);
    }
    let mut out = Vec::with_capacity(256);
    out.push(RECORD_POSTCARD);
    postcard::to_extend(record, out).map_err(|error| StoreError::Encode {
        what: format!("stream {:?}", record.key()),
        message: error.to_string(),
    })
}

fn decode_record(key: StreamKey, bytes: &[u8]) -> Result<StreamRecord, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: format!("stream {key:?} in {}: {problem}", STREAMS.name()),
    };
    match bytes.split_first() {
        Some((&RECORD_POSTCARD, payload)) => match postcard::take_from_bytes::<StreamRecord>(payload) {
            Ok((record, [])) if record.key() == key => Ok(record),
            Ok((record, [])) => Err(corrupt(format!("the record names itself {:?}", record.key()))),
            Ok((_, rest)) => Err(corrupt(format!("{} trailing bytes after the record", rest.len()))),
            Err(error) => Err(corrupt(format!("cannot decode postcard: {error}"))),
        },
        Some((&RECORD_PACKED, payload)) => crate::packed::record::unpack_record(key, payload, Layout::Coded)
            .map_err(|error| corrupt(error.to_string())),
        Some((&RECORD_PACKED_SPELLED, payload)) => {
            crate::packed::record::unpack_record(key, payload, Layout::Spelled)
                .map_err(|error| corrupt(error.to_string()))
        }
        Some((tag, _)) => Err(corrupt(format!("unknown encoding tag {tag}"))),
        None => Err(corrupt("empty value".to_string())),
    }
}

/// The smaller of the structural encoding and zstd. The structural one is trusted only after
/// it has been decoded back to the exact text, so nothing it cannot represent is lost.
fn encode_playlist(key: StreamKey, text: &str) -> Result<Vec<u8>, StoreError> {
    let mut packed = Vec::with_capacity(64);
    packed.push(PLAYLIST_PACKED);
    packed.extend_from_slice(&crate::packed::pack(text));
    let exact = || crate::packed::unpack(&packed[1..], text.len()).is_ok_and(|back| back == text);
    if packed.len() <= PACKED_GOOD_ENOUGH && exact() {
        return Ok(packed);
    }
    let zstd = encode_zstd(key, text)?;
    if packed.len() < zstd.len() && exact() {
        return Ok(packed);
    }
    Ok(zstd)
}

fn encode_zstd(key: StreamKey, text: &str) -> Result<Vec<u8>, StoreError> {
    let compressed =
        zstd::bulk::compress(text.as_bytes(), PLAYLIST_ZSTD_LEVEL).map_err(|error| StoreError::Encode {
            what: format!("playlist {key:?}"),
            message: error.to_string(),
        })?;
    let mut out = Vec::with_capacity(compressed.len() + 1);
    out.push(PLAYLIST_ZSTD);
    out.extend_from_slice(&compressed);
    Ok(out)
}

fn decode_playlist(key: StreamKey, bytes: &[u8]) -> Result<String, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: format!("playlist {key:?} in {}: {problem}", PLAYLISTS.name()),
    };
    match bytes.split_first() {
        Some((&PLAYLIST_ZSTD, payload)) => {
            // The frame records its size (bulk compression writes it): allocate exactly that,
            // not the streaming decoder's buffers, on the playlist route's hot path.
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .filter(|&size| size <= MAX_PLAYLIST_TEXT)
                .ok_or_else(|| corrupt("no valid zstd frame size".to_string()))?;
            let text = zstd::bulk::decompress(payload, size as usize)
                .map_err(|error| corrupt(format!("cannot decompress: {error}")))?;
            String::from_utf8(text).map_err(|error| corrupt(format!("not UTF-8: {error}")))
        }
        Some((&PLAYLIST_PACKED, payload)) => crate::packed::unpack(payload, MAX_PLAYLIST_TEXT as usize)
            .map_err(|error| corrupt(error.to_string())),
        Some((tag, _)) => Err(corrupt(format!("unknown encoding tag {tag}"))),
        None => Err(corrupt("empty value".to_string())),
    }
}
