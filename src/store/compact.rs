//! Offline compaction: the file is rewritten, table by table in key order, into a fresh file
//! that then replaces it. A B-tree filled by the daemon keeps pages half full wherever entries
//! arrive in the middle of a table (each game's, language's and streamer's newest broadcast,
//! any viewer count) and frees pages it cannot give back to the file system; a copy written in
//! key order fills every page. Records are re-encoded on the way (an older encoding becomes the
//! current one). The original is untouched until the copy is complete, counted, synced and
//! renamed over it, so a crash at any point leaves one whole database (and at worst a stale
//! `.compacting` file, removed by the next run).

use super::{
    BY_GAME, BY_LANGUAGE, BY_STATUS, BY_STREAM_ID, BY_STREAMER, BY_VIEWS, DUE, LIVE, LOGINS, META, NAMES,
    PLAYLISTS, QUALITIES_DUE, STATE, STREAMS, StoreError, decode_record, encode_record, open_database,
};
use redb::{
    Builder, Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, TableHandle, Value,
};
use std::path::{Path, PathBuf};

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
/// `serve` holds it: [`StoreError::AlreadyOpen`]). Needs free disk space for a second copy.
pub fn compact_file(
    path: &Path,
    cache_bytes: u64,
    progress: CompactProgress<'_>,
) -> Result<Compacted, StoreError> {
    let io = |what: &str, target: &Path, error: std::io::Error| {
        StoreError::Io(format!("compaction: cannot {what} {}: {error}", target.display()))
    };
    if !path.exists() {
        return Err(StoreError::Io(format!(
            "compaction: there is no database at {}",
            path.display()
        )));
    }
    // Opening applies any pending schema migration first and takes the file's lock, held until
    // the copy has replaced the file, so no writer can slip in between.
    let source = open_database(path, cache_bytes)?;
    let bytes_before = disk_bytes(&std::fs::metadata(path).map_err(|e| io("read", path, e))?);
    let temp = compacting_path(path);
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io("remove the stale", &temp, error)),
    }
    let result = copy_all(&source, &temp, cache_bytes, progress);
    let (records_recoded, tables) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    std::fs::File::open(&temp)
        .and_then(|file| file.sync_all())
        .map_err(|e| io("sync", &temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| io("replace the database with", &temp, e))?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io("sync the directory", dir, e))?;
    }
    // The old file is unlinked now; closing it only releases its lock.
    drop(source);
    let bytes_after = disk_bytes(&std::fs::metadata(path).map_err(|e| io("read", path, e))?);
    Ok(Compacted {
        bytes_before,
        bytes_after,
        records_recoded,
        tables,
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
) -> Result<(u64, Vec<(String, u64)>), StoreError> {
    let mut dest = Builder::new()
        .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
        .create(temp)
        .map_err(|error| StoreError::Io(format!("compaction: cannot create {}: {error}", temp.display())))?;
    let txn = source.begin_read()?;
    let mut tables = Vec::new();
    let recoded = copy_records(&txn, &dest, progress, &mut tables)?;
    copy_table(&txn, &dest, PLAYLISTS, progress, &mut tables)?;
    copy_table(&txn, &dest, META, progress, &mut tables)?;
    copy_table(&txn, &dest, DUE, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_STREAMER, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_STREAM_ID, progress, &mut tables)?;
    copy_table(&txn, &dest, LIVE, progress, &mut tables)?;
    copy_table(&txn, &dest, STATE, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_GAME, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_LANGUAGE, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_STATUS, progress, &mut tables)?;
    copy_table(&txn, &dest, BY_VIEWS, progress, &mut tables)?;
    copy_table(&txn, &dest, LOGINS, progress, &mut tables)?;
    copy_table(&txn, &dest, NAMES, progress, &mut tables)?;
    copy_table(&txn, &dest, QUALITIES_DUE, progress, &mut tables)?;
    // A table this binary does not know (a newer binary's) would be left behind: refuse
    // rather than lose it.
    let unknown: Vec<String> = txn
        .list_tables()?
        .map(|table| table.name().to_string())
        .filter(|name| !tables.iter().any(|(copied, _)| copied == name))
        .collect();
    if !unknown.is_empty() || txn.list_multimap_tables()?.next().is_some() {
        return Err(StoreError::Io(format!(
            "compaction refused: the file holds tables this binary does not know ({}); nothing was changed",
            unknown.join(", ")
        )));
    }
    // The copy wrote pages in order; redb's own compaction returns what little its allocator
    // left free at the end of the file.
    while dest
        .compact()
        .map_err(|error| StoreError::Io(format!("compaction of {}: {error}", temp.display())))?
    {}
    dest.close()
        .map_err(|error| StoreError::Io(format!("compaction: closing {}: {error}", temp.display())))?;
    Ok((recoded, tables))
}

/// Copies one table in key order, `COPY_BATCH` entries per transaction, then checks that the
/// copy holds as many entries as the original.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    dest: &Database,
    table: TableDefinition<K, V>,
    progress: CompactProgress<'_>,
    tables: &mut Vec<(String, u64)>,
) -> Result<(), StoreError> {
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
    progress: CompactProgress<'_>,
    tables: &mut Vec<(String, u64)>,
) -> Result<u64, StoreError> {
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
    progress: CompactProgress<'_>,
    tables: &mut Vec<(String, u64)>,
    mut put: impl FnMut(&mut Table<'_, K, V>, K::SelfType<'_>, V::SelfType<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let from = txn.open_table(table)?;
    let total = from.len()?;
    let mut copied = 0u64;
    let mut entries = from.iter()?;
    loop {
        let mut write = dest.begin_write()?;
        write
            .set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Io(e.to_string()))?;
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
        progress(table.name(), copied, total);
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
) -> Result<(), StoreError> {
    let mut write = dest.begin_write()?;
    write
        .set_durability(redb::Durability::Immediate)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let copied = write.open_table(table)?.len()?;
    write.commit()?;
    if copied != total {
        return Err(StoreError::Io(format!(
            "compaction: {} has {copied} entries in the copy but {total} in the original; nothing was changed",
            table.name()
        )));
    }
    tables.push((table.name().to_string(), total));
    Ok(())
}
