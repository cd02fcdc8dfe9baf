//! Compaction: the file is rewritten, table by table in key order, into a fresh file that
//! then replaces it. A B-tree filled by the daemon keeps pages half full wherever entries
//! arrive in the middle of a table (each game's, language's and streamer's newest broadcast,
//! any viewer count) and frees pages it cannot give back to the file system; a copy written in
//! key order fills every page. Records are re-encoded on the way (an older encoding becomes the
//! current one). The original is untouched until the copy is complete, counted, synced and
//! renamed over it, so a crash at any point leaves one whole database (and at worst a stale
//! `.compacting` copy or `.precompact` link, removed by the next open or compaction).
//!
//! [`compact_file`] works on a closed file (`vodprobe compact`); [`Store::compact_online`] on
//! the file in use (`serve`'s schedule), catching up with the writes made during the copy.

use super::encoding::{decode_record, encode_record};
use super::tables::{
    BY_GAME, BY_LANGUAGE, BY_STATUS, BY_STREAM_ID, BY_STREAMER, BY_VIEWS, DUE, EVENTS, EVENTS_BY_STREAM,
    LIVE, LOGINS, META, NAMES, ORIGINAL_AUDIO, ORIGINAL_AUDIO_DUE, PLAYLISTS, QUALITIES_DUE, SEGMENTS,
    SEGMENTS_DUE, STATE, STREAMS, WriteTables, original_audio, segment_status,
};
use super::{CompactError, Handle, Store, StoreError, StreamKey, open_database};
use redb::{
    Builder, Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, TableHandle, Value,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

/// Entries per write transaction of the copy (bounds the memory a transaction holds).
const COPY_BATCH: u64 = 50_000;

/// What a compaction did.
#[derive(Clone, Debug, PartialEq)]
pub struct Compacted {
    /// Bytes on disk (allocated blocks, as `du` counts them) before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Records whose encoding changed on the way.
    pub records_recoded: u64,
    /// Each table's name and entries (the same before and after).
    pub tables: Vec<(String, u64)>,
    /// Broadcasts written during an online compaction and copied again.
    pub caught_up: u64,
    /// How long an online compaction held writers back (the final catch-up and the swap).
    pub writes_paused: std::time::Duration,
}

/// Progress of a compaction: the table being copied, entries copied of it, and its total.
pub type CompactProgress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// The fresh file a compaction writes before it replaces `path`.
pub fn compacting_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    path.with_file_name(name)
}

/// Rewrites the database at `path` compactly. The file must not be open elsewhere (a running
/// `serve` holds it: [`CompactError::Open`] of [`super::OpenError::AlreadyOpen`]). Needs free
/// disk space for a second copy.
pub fn compact_file(
    path: &Path,
    cache_bytes: u64,
    progress: CompactProgress<'_>,
) -> Result<Compacted, CompactError> {
    if !path.exists() {
        return Err(CompactError::Missing {
            path: path.to_path_buf(),
        });
    }
    // Opening applies any pending schema migration first and takes the file's lock, held until
    // the copy has replaced the file, so no writer can slip in between.
    let source = open_database(path, cache_bytes)?;
    let bytes_before = disk_bytes(&std::fs::metadata(path).map_err(io_error("read", path))?);
    let temp = compacting_path(path);
    remove_if_present(&temp)?;
    let result = copy_all(&source, &temp, cache_bytes, progress);
    let (records_recoded, tables) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    sync_file(&temp)?;
    std::fs::rename(&temp, path).map_err(io_error("replace the database with", &temp))?;
    sync_dir(path)?;
    // The old file is unlinked now; closing it only releases its lock.
    drop(source);
    let bytes_after = disk_bytes(&std::fs::metadata(path).map_err(io_error("read", path))?);
    Ok(Compacted {
        bytes_before,
        bytes_after,
        records_recoded,
        tables,
        caught_up: 0,
        writes_paused: std::time::Duration::ZERO,
    })
}

/// Allocated bytes where the platform tells, else the length.
pub(super) fn disk_bytes(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::blocks(meta) * 512;
    #[cfg(not(unix))]
    return meta.len();
}

/// Copies every table into a new file at `temp`, checks the counts, and closes it.
fn copy_all(
    source: &Database,
    temp: &Path,
    cache_bytes: u64,
    progress: CompactProgress<'_>,
) -> Result<(u64, Vec<(String, u64)>), CompactError> {
    let dest = create_copy(temp, cache_bytes)?;
    let txn = source.begin_read()?;
    let mut tables = Vec::new();
    let recoded = copy_tables(
        &txn,
        &dest,
        &mut |table, done, total| {
            progress(table, done, total);
            true
        },
        &mut tables,
    )?;
    close_copy(dest, temp)?;
    Ok((recoded, tables))
}

/// Progress that can stop the copy: `false` stops it with [`CompactError::Stopped`].
type CopySteer<'a> = &'a mut dyn FnMut(&str, u64, u64) -> bool;

fn create_copy(temp: &Path, cache_bytes: u64) -> Result<Database, CompactError> {
    Builder::new()
        .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
        .create(temp)
        .map_err(|source| CompactError::Create {
            path: temp.to_path_buf(),
            source,
        })
}

/// Copies every table of the snapshot `txn` into `dest`, checking each table's count. Returns
/// how many records were re-encoded.
fn copy_tables(
    txn: &ReadTransaction,
    dest: &Database,
    progress: CopySteer<'_>,
    tables: &mut Vec<(String, u64)>,
) -> Result<u64, CompactError> {
    let recoded = copy_records(txn, dest, progress, tables)?;
    copy_table(txn, dest, PLAYLISTS, progress, tables)?;
    copy_table(txn, dest, META, progress, tables)?;
    copy_table(txn, dest, DUE, progress, tables)?;
    copy_table(txn, dest, BY_STREAMER, progress, tables)?;
    copy_table(txn, dest, BY_STREAM_ID, progress, tables)?;
    copy_table(txn, dest, LIVE, progress, tables)?;
    copy_table(txn, dest, STATE, progress, tables)?;
    copy_table(txn, dest, BY_GAME, progress, tables)?;
    copy_table(txn, dest, BY_LANGUAGE, progress, tables)?;
    copy_table(txn, dest, BY_STATUS, progress, tables)?;
    copy_table(txn, dest, BY_VIEWS, progress, tables)?;
    copy_table(txn, dest, LOGINS, progress, tables)?;
    copy_table(txn, dest, NAMES, progress, tables)?;
    copy_table(txn, dest, QUALITIES_DUE, progress, tables)?;
    copy_table(txn, dest, SEGMENTS, progress, tables)?;
    copy_table(txn, dest, SEGMENTS_DUE, progress, tables)?;
    copy_table(txn, dest, ORIGINAL_AUDIO, progress, tables)?;
    copy_table(txn, dest, ORIGINAL_AUDIO_DUE, progress, tables)?;
    copy_table(txn, dest, EVENTS, progress, tables)?;
    copy_table(txn, dest, EVENTS_BY_STREAM, progress, tables)?;
    // A table this binary does not know (a newer binary's) would be left behind: refuse
    // rather than lose it.
    let unknown: Vec<String> = txn
        .list_tables()?
        .map(|table| table.name().to_string())
        .filter(|name| !tables.iter().any(|(copied, _)| copied == name))
        .collect();
    if !unknown.is_empty() || txn.list_multimap_tables()?.next().is_some() {
        return Err(CompactError::UnknownTables { tables: unknown });
    }
    Ok(recoded)
}

/// Returns the unused pages at the end of the copy and closes it.
fn close_copy(mut dest: Database, temp: &Path) -> Result<(), CompactError> {
    shrink(&mut dest, temp)?;
    dest.close().map_err(|source| CompactError::CloseCopy {
        path: temp.to_path_buf(),
        source,
    })
}

/// The copy wrote pages in order; redb's own compaction gives back what little its allocator
/// left free at the end of the file.
fn shrink(dest: &mut Database, temp: &Path) -> Result<(), CompactError> {
    while dest.compact().map_err(|source| CompactError::Shrink {
        path: temp.to_path_buf(),
        source,
    })? {}
    Ok(())
}

/// Copies one table in key order, `COPY_BATCH` entries per transaction, then checks that the
/// copy holds as many entries as the original.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    dest: &Database,
    table: TableDefinition<K, V>,
    progress: CopySteer<'_>,
    tables: &mut Vec<(String, u64)>,
) -> Result<(), CompactError> {
    copy_with(txn, dest, table, progress, tables, |to, key, value| {
        to.insert(key, value)?;
        Ok(())
    })
}

/// Copies `streams_v1`, re-encoding each record with the current encoding; a record that
/// cannot be decoded is copied as it is (a later write replaces it, as in the live store).
/// Returns how many records were re-encoded.
fn copy_records(
    txn: &ReadTransaction,
    dest: &Database,
    progress: CopySteer<'_>,
    tables: &mut Vec<(String, u64)>,
) -> Result<u64, CompactError> {
    let mut recoded = 0u64;
    copy_with(txn, dest, STREAMS, progress, tables, |to, key, old| {
        let new = decode_record(key, old)
            .and_then(|record| encode_record(&record))
            .ok();
        match new.filter(|new| new.as_slice() != old) {
            Some(new) => {
                recoded += 1;
                to.insert(key, new.as_slice())?;
            }
            None => {
                to.insert(key, old)?;
            }
        }
        Ok(())
    })?;
    Ok(recoded)
}

/// The copy loop: `put` writes each entry of `table`, in key order, into the copy.
fn copy_with<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    dest: &Database,
    table: TableDefinition<K, V>,
    progress: CopySteer<'_>,
    tables: &mut Vec<(String, u64)>,
    mut put: impl FnMut(&mut Table<'_, K, V>, K::SelfType<'_>, V::SelfType<'_>) -> Result<(), StoreError>,
) -> Result<(), CompactError> {
    let from = txn.open_table(table)?;
    let total = from.len()?;
    let mut copied = 0u64;
    let mut entries = from.iter()?;
    loop {
        let mut write = dest.begin_write()?;
        write
            .set_durability(redb::Durability::None)
            .map_err(CompactError::Durability)?;
        let mut done = true;
        {
            let mut to = write.open_table(table)?;
            for entry in entries.by_ref() {
                let (key, value) = entry?;
                put(&mut to, key.value(), value.value())?;
                copied += 1;
                if copied % COPY_BATCH == 0 {
                    done = false;
                    break;
                }
            }
        }
        write.commit()?;
        if !progress(table.name(), copied, total) {
            return Err(CompactError::Stopped);
        }
        if done {
            break;
        }
    }
    finish_table(dest, table, total, tables)
}

/// Makes the table's copy durable and checks its count.
fn finish_table<K: Key + 'static, V: Value + 'static>(
    dest: &Database,
    table: TableDefinition<K, V>,
    total: u64,
    tables: &mut Vec<(String, u64)>,
) -> Result<(), CompactError> {
    let mut write = dest.begin_write()?;
    write
        .set_durability(redb::Durability::Immediate)
        .map_err(CompactError::Durability)?;
    let copied = write.open_table(table)?.len()?;
    write.commit()?;
    if copied != total {
        return Err(CompactError::Mismatch {
            table: table.name().to_string(),
            expected: total,
            copied,
        });
    }
    tables.push((table.name().to_string(), total));
    Ok(())
}

/// Broadcasts brought up to date per write transaction of a catch-up.
const CATCH_UP_BATCH: usize = 5_000;
/// Catch-up rounds while writes continue; the last, under the write lock, is usually tiny.
const CATCH_UP_ROUNDS: usize = 4;
/// A journal this short is taken under the write lock at once.
const SMALL_JOURNAL: usize = 2_000;
/// Page cache of the copy an online compaction writes.
const ONLINE_COPY_CACHE_BYTES: u64 = 4 << 20;
/// Free space a compaction leaves for everything else on the disk.
const FREE_SPACE_RESERVE: u64 = 32 << 20;

/// How full the file is: what its tables hold against what it occupies on disk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Occupancy {
    /// Bytes on disk (allocated blocks).
    pub disk_bytes: u64,
    /// Bytes the tables' entries and their page headers and branch pages need.
    pub live_bytes: u64,
}

impl Occupancy {
    /// The share of the file's bytes that a compaction would give back (0 to 1).
    pub fn waste(&self) -> f64 {
        if self.disk_bytes == 0 {
            return 0.0;
        }
        1.0 - (self.live_bytes as f64 / self.disk_bytes as f64).min(1.0)
    }
}

/// Resets the running flag and stops journalling however a compaction ends.
struct Running<'a>(&'a Handle);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal = None;
        self.0.compacting.store(false, Ordering::Release);
    }
}

impl Store {
    /// What the file occupies and what a compaction would keep of it.
    pub fn occupancy(&self) -> Result<Occupancy, StoreError> {
        let live_bytes = self
            .table_sizes()?
            .iter()
            .map(|table| table.stored_bytes + table.metadata_bytes)
            .sum();
        Ok(Occupancy {
            disk_bytes: self.file_size(),
            live_bytes,
        })
    }

    /// Rewrites the file compactly while it stays in use. Reads and writes continue during
    /// the copy: the copy is made from a snapshot, then the broadcasts written meanwhile (a
    /// journal of their keys) are copied again from newer snapshots until few remain. Only
    /// the last of those rounds, the table counts' check and the swap of the files hold up
    /// writers. The original is kept until the copy is complete, counted, synced and open; a
    /// failure at any step leaves it in use and unchanged. `progress` is told each table's
    /// progress and stops the compaction by answering `false`.
    ///
    /// Refused ([`CompactError::is_refusal`]) while another compaction runs or when the disk
    /// lacks room for the copy.
    pub fn compact_online(
        &self,
        progress: &mut dyn FnMut(&str, u64, u64) -> bool,
    ) -> Result<Compacted, CompactError> {
        let shared = &*self.shared;
        if shared.compacting.swap(true, Ordering::AcqRel) {
            return Err(CompactError::Busy);
        }
        let _running = Running(shared);
        let path = shared.path.as_path();
        let temp = compacting_path(path);
        let backup = backup_path(path);
        for stale in [&temp, &backup] {
            remove_if_present(stale)?;
        }
        let before = self.occupancy()?;
        if let Some(free) = available_bytes(path) {
            // The copy needs about what the tables hold (it fills its pages).
            let needed = before.live_bytes + before.live_bytes / 8 + FREE_SPACE_RESERVE;
            if free < needed {
                return Err(CompactError::NoSpace {
                    path: path.to_path_buf(),
                    needed,
                    available: free,
                });
            }
        }
        shared
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal = Some(BTreeSet::new());
        let result = self.copy_and_swap(&temp, &backup, progress);
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        let swapped = result?;
        Ok(Compacted {
            bytes_before: before.disk_bytes,
            bytes_after: self.file_size(),
            records_recoded: swapped.recoded,
            tables: swapped.tables,
            caught_up: swapped.caught_up,
            writes_paused: swapped.paused,
        })
    }

    fn copy_and_swap(
        &self,
        temp: &Path,
        backup: &Path,
        progress: CopySteer<'_>,
    ) -> Result<Swapped, CompactError> {
        let shared = &*self.shared;
        // The copy is written in key order and read back only for the catch-up: a small cache
        // keeps serve's memory near its usual footprint meanwhile.
        let mut db = create_copy(temp, shared.cache_bytes.min(ONLINE_COPY_CACHE_BYTES))?;
        let snapshot = self.with_db(|db| Ok(db.begin_read()?))?;
        let mut tables = Vec::new();
        let recoded = copy_tables(&snapshot, &db, progress, &mut tables)?;
        drop(snapshot);
        shrink(&mut db, temp)?;
        let mut caught_up = 0;
        for _ in 0..CATCH_UP_ROUNDS {
            // Waits only for a write in flight to be journalled; writers wait only for the take.
            let keys = shared
                .writes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take_journal();
            let snapshot = self.with_db(|db| Ok(db.begin_read()?))?;
            catch_up(&snapshot, &db, &keys)?;
            caught_up += keys.len() as u64;
            if keys.len() <= SMALL_JOURNAL {
                break;
            }
        }
        // Writers wait from here until the new file is in use.
        let mut writes = shared.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let paused = std::time::Instant::now();
        let keys = writes.take_journal();
        caught_up += keys.len() as u64;
        let snapshot = self.with_db(|db| Ok(db.begin_read()?))?;
        catch_up(&snapshot, &db, &keys)?;
        replace_table(&snapshot, &db, STATE)?;
        replace_table(&snapshot, &db, META)?;
        let tables = check_counts(&snapshot, &db, &tables)?;
        drop(snapshot);
        db.close().map_err(|source| CompactError::CloseCopy {
            path: temp.to_path_buf(),
            source,
        })?;
        sync_file(temp)?;
        // Readers finish first; the old file stays reachable under `backup` until the new one
        // is open, so a failed open can put it back.
        let mut slot = shared.db.write().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            // Closed (or a reopen failed) meanwhile: do not bring it back.
            return Err(CompactError::Closed);
        }
        let path = shared.path.as_path();
        // File systems without hard links (FAT) swap without the way back.
        let kept = std::fs::hard_link(path, backup).is_ok();
        if let Err(error) = std::fs::rename(temp, path) {
            let _ = std::fs::remove_file(backup);
            return Err(io_error("replace the database with", temp)(error));
        }
        // The rename is done whatever the directory's sync says; the slot must follow it.
        let _ = sync_dir(path);
        match open_database(path, shared.cache_bytes) {
            Ok(new) => {
                if let Some(old) = slot.replace(new) {
                    // The old file is unlinked; closing it releases its lock.
                    let _ = old.close();
                }
                drop(slot);
                let _ = std::fs::remove_file(backup);
                shared.generation.fetch_add(1, Ordering::Release);
                Ok(Swapped {
                    recoded,
                    tables,
                    caught_up,
                    paused: paused.elapsed(),
                })
            }
            Err(error) if kept && std::fs::rename(backup, path).is_ok() => {
                // The original (still open in the slot) is back under its name.
                let _ = sync_dir(path);
                Err(CompactError::CopyNotOpened { source: error })
            }
            Err(error) => {
                // Writes must not go on into the unlinked original: operations fail until a
                // reopen of the (complete) copy succeeds.
                if let Some(old) = slot.take() {
                    let _ = old.close();
                }
                Err(CompactError::SwappedNotOpened { source: error })
            }
        }
    }
}

/// What [`Store::copy_and_swap`] did.
struct Swapped {
    recoded: u64,
    tables: Vec<(String, u64)>,
    caught_up: u64,
    paused: std::time::Duration,
}

/// Removes the copy and the link a compaction that died may have left beside `path` (call
/// only while holding the database open).
pub(super) fn remove_leftovers(path: &Path) {
    let _ = std::fs::remove_file(compacting_path(path));
    let _ = std::fs::remove_file(backup_path(path));
}

/// Where the original is linked while a compaction swaps the files.
pub(super) fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".precompact");
    path.with_file_name(name)
}

/// A file operation's failure (`what` is done to `path`), for `map_err`.
fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CompactError {
    let path = path.to_path_buf();
    move |source| CompactError::Io { what, path, source }
}

fn remove_if_present(path: &Path) -> Result<(), CompactError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("remove the stale", path)(error)),
    }
}

fn sync_file(path: &Path) -> Result<(), CompactError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io_error("sync", path))
}

fn sync_dir(path: &Path) -> Result<(), CompactError> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("sync", dir)),
        None => Ok(()),
    }
}

/// Free bytes for an unprivileged writer on the file system holding `path` (`None` where the
/// platform does not tell).
fn available_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let stats = rustix::fs::statvfs(dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Makes the copy's entries for each broadcast in `keys` what they are in `source`: its
/// record with every index entry, its playlist, its quality-queue entry and its segment check,
/// or none of them.
fn catch_up(source: &ReadTransaction, dest: &Database, keys: &BTreeSet<StreamKey>) -> Result<(), StoreError> {
    let streams = source.open_table(STREAMS)?;
    let playlists = source.open_table(PLAYLISTS)?;
    let qualities = source.open_table(QUALITIES_DUE)?;
    let segments = source.open_table(SEGMENTS)?;
    let audio = source.open_table(ORIGINAL_AUDIO)?;
    let events = source.open_table(EVENTS)?;
    let events_by_stream = source.open_table(EVENTS_BY_STREAM)?;
    let keys: Vec<StreamKey> = keys.iter().copied().collect();
    for chunk in keys.chunks(CATCH_UP_BATCH) {
        let write = dest.begin_write()?;
        {
            let mut touched = Vec::new();
            let mut to = WriteTables::open(&write, &mut touched)?;
            to.record_events = false;
            for &key in chunk {
                let Some(value) = streams.get(key)? else {
                    to.delete_record(key)?;
                    continue;
                };
                match decode_record(key, value.value()) {
                    Ok(record) => to.put_record(&record)?,
                    Err(_) => {
                        // Kept as it is, as the copy keeps it; its index entries go.
                        to.streams.insert(key, value.value())?;
                        to.purge_index_entries(key)?;
                    }
                }
                match playlists.get(key)? {
                    Some(playlist) => to.playlists.insert(key, playlist.value())?,
                    None => to.playlists.remove(key)?,
                };
                match qualities.get(key)? {
                    Some(viewers) => to.qualities_due.insert(key, viewers.value())?,
                    None => to.qualities_due.remove(key)?,
                };
                // A deleted record took its check with it above.
                if let Some(value) = segments.get(key)? {
                    to.put_segment_status(key, &segment_status(value.value()))?;
                }
                if let Some(value) = audio.get(key)? {
                    to.put_original_audio(key, &original_audio(value.value()))?;
                }
                // Events are only ever added or removed with their broadcast: its set is the
                // source's.
                let (start, id) = key;
                let range = (start, id, 0)..=(start, id, u64::MAX);
                for entry in to.events_by_stream.extract_from_if(range.clone(), |_, _| true)? {
                    to.events.remove(entry?.0.value().2)?;
                }
                for entry in events_by_stream.range(range)? {
                    let seq = entry?.0.value().2;
                    to.events_by_stream.insert((start, id, seq), ())?;
                    if let Some(value) = events.get(seq)? {
                        to.events.insert(seq, value.value())?;
                    }
                }
            }
        }
        write.commit()?;
    }
    Ok(())
}

/// Replaces the copy's `table` with the source's (small tables only).
fn replace_table<K: Key + 'static, V: Value + 'static>(
    source: &ReadTransaction,
    dest: &Database,
    table: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let from = source.open_table(table)?;
    let write = dest.begin_write()?;
    {
        let mut to = write.open_table(table)?;
        to.retain(|_, _| false)?;
        for entry in from.iter()? {
            let (key, value) = entry?;
            to.insert(key.value(), value.value())?;
        }
    }
    write.commit()?;
    Ok(())
}

/// Checks that every table of the copy holds as many entries as the source's; returns the
/// counts.
fn check_counts(
    source: &ReadTransaction,
    dest: &Database,
    copied: &[(String, u64)],
) -> Result<Vec<(String, u64)>, CompactError> {
    fn count<K: Key + 'static, V: Value + 'static>(
        source: &ReadTransaction,
        dest: &ReadTransaction,
        table: TableDefinition<K, V>,
    ) -> Result<(String, u64), CompactError> {
        let (want, have) = (source.open_table(table)?.len()?, dest.open_table(table)?.len()?);
        if want != have {
            return Err(CompactError::Diverged {
                table: table.name().to_string(),
                expected: want,
                copied: have,
            });
        }
        Ok((table.name().to_string(), want))
    }
    let dest = dest.begin_read()?;
    let counts = vec![
        count(source, &dest, STREAMS)?,
        count(source, &dest, PLAYLISTS)?,
        count(source, &dest, META)?,
        count(source, &dest, DUE)?,
        count(source, &dest, BY_STREAMER)?,
        count(source, &dest, BY_STREAM_ID)?,
        count(source, &dest, LIVE)?,
        count(source, &dest, STATE)?,
        count(source, &dest, BY_GAME)?,
        count(source, &dest, BY_LANGUAGE)?,
        count(source, &dest, BY_STATUS)?,
        count(source, &dest, BY_VIEWS)?,
        count(source, &dest, LOGINS)?,
        count(source, &dest, NAMES)?,
        count(source, &dest, QUALITIES_DUE)?,
        count(source, &dest, SEGMENTS)?,
        count(source, &dest, SEGMENTS_DUE)?,
        count(source, &dest, ORIGINAL_AUDIO)?,
        count(source, &dest, ORIGINAL_AUDIO_DUE)?,
        count(source, &dest, EVENTS)?,
        count(source, &dest, EVENTS_BY_STREAM)?,
    ];
    debug_assert_eq!(counts.len(), copied.len());
    Ok(counts)
}
