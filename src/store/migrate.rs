//! Schema set-up and upgrades: a fresh file gets every table and the current version; a
//! schema-1 file gets the query indexes built on open (synchronously, in batches); older
//! playlist and record encodings are converted in the background ([`Store::pack_playlists`]),
//! in resumable batches, while reads go on.

use super::encoding::{
    PLAYLIST_PACKED, PLAYLIST_ZSTD, RECORD_PACKED, RECORD_PACKED_SPELLED, RECORD_POSTCARD, decode_playlist,
    decode_record, encode_playlist, encode_record,
};
use super::tables::{
    BY_GAME, BY_LANGUAGE, BY_STATUS, BY_VIEWS, LOGINS, META, NAMES, PLAYLISTS, STATE, STREAMS, WriteTables,
};
use super::{OpenError, SCHEMA_VERSION, SCHEMA_VERSION_NAME, Store, StoreError};
use crate::record::StreamKey;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::ops::Bound;
use std::path::Path;

/// `state_v1` entry: the last record key the conversion of tag-1 and tag-2 records to tag 3
/// has passed. (Names without `_3` were the tag-1 → tag-2 pass of earlier binaries; a file
/// they finished runs this pass once more for its tag-2 records.)
pub(super) const RECORD_PACKING_CURSOR: &str = "store.record_packing_cursor_3";
/// `meta_v1` entry: 1 once every tag-1 and tag-2 record has been offered tag 3.
pub(super) const RECORDS_PACKED: &str = "records_packed_3";

/// `state_v1` entry: the last playlist key the tag-1 → tag-2 conversion has passed.
pub(super) const PACKING_CURSOR: &str = "store.packing_cursor";
/// `meta_v1` entry: 1 once every tag-1 playlist has been offered the structural encoding.
pub(super) const PACKING_DONE: &str = "playlists_packed";

/// Refuses a newer schema without writing, then creates every table and, in a fresh file,
/// writes the schema version; an older file is migrated first.
pub(super) fn init_schema(db: &Database, path: &Path) -> Result<(), OpenError> {
    let failed = |source: StoreError| OpenError::Schema {
        path: path.to_path_buf(),
        source,
    };
    let found = schema_version(db).map_err(failed)?;
    if let Some(found) = found.filter(|found| *found > SCHEMA_VERSION) {
        return Err(OpenError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    set_up(db, found).map_err(failed)
}

/// The file's schema version; `None` for a fresh file.
fn schema_version(db: &Database) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(meta) => Ok(meta.get(SCHEMA_VERSION_NAME)?.map(|value| value.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Migrates a file of schema `found` (at most this binary's), creates every table and writes
/// the current version.
fn set_up(db: &Database, found: Option<u64>) -> Result<(), StoreError> {
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
        // WriteTables opens meta_v1 itself (the events' sequence number).
        drop(meta);
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

impl Store {
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
