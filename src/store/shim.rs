//! TEMPORARY: stands in for the store branch's `update`, `OpenError`, `CompactError`.
use super::{Store, StoreError};
use crate::record::{StreamKey, StreamRecord};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(StoreError),
}

impl StoreError {
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::Io(_))
    }
    pub fn is_refusal(&self) -> bool {
        matches!(self, StoreError::Compaction(_))
    }
}

static GATE: std::sync::Mutex<u8> = std::sync::Mutex::new(0);

pub struct Update<'a> {
    store: &'a Store,
}

impl Store {
    pub fn update<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Update<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let _g = GATE.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut Update { store: self })
    }
}

impl Update<'_> {
    pub fn get_stream(&mut self, key: StreamKey) -> Result<Option<StreamRecord>, StoreError> {
        self.store.get_stream(key)
    }
    pub fn get_streams(&mut self, keys: &[StreamKey]) -> Result<Vec<Option<StreamRecord>>, StoreError> {
        self.store.get_streams(keys)
    }
    pub fn latest_of_streamer(
        &mut self,
        id: u64,
        before: Option<i64>,
    ) -> Result<Option<StreamRecord>, StoreError> {
        self.store.latest_of_streamer(id, before)
    }
    pub fn live(&mut self) -> Result<Vec<StreamRecord>, StoreError> {
        self.store.live()
    }
    pub fn due(&mut self, now: i64, limit: usize) -> Result<Vec<StreamRecord>, StoreError> {
        self.store.due(now, limit)
    }
    pub fn put_streams(&mut self, r: &[StreamRecord]) -> Result<(), StoreError> {
        self.store.put_streams(r)
    }
    pub fn apply(&mut self, w: &[StreamRecord], d: &[StreamKey]) -> Result<(), StoreError> {
        self.store.apply(w, d)
    }
    pub fn put_archived(&mut self, r: &StreamRecord, t: &str) -> Result<(), StoreError> {
        self.store.put_archived(r, t)
    }
}
