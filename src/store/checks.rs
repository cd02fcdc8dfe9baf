//! The background checks' side of the store: the quality queue, the segment checks and the
//! survival watch (`segments_v1`, `segments_due_v1`), and the original-audio watch
//! (`original_audio_v1`, `original_audio_due_v1`). Their writes go through `Update`.

use super::tables::{
    ORIGINAL_AUDIO, ORIGINAL_AUDIO_DUE, QUALITIES_DUE, SEGMENTS, SEGMENTS_DUE, original_audio, segment_status,
};
use super::{Store, StoreError};
use crate::audio::OriginalAudio;
use crate::record::StreamKey;
use crate::segments::SegmentStatus;
use redb::{ReadableTable, ReadableTableMetadata};

impl Store {
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
    pub(super) fn set_quality_queue_bound(&self, bound: u64) {
        self.shared
            .quality_queue_bound
            .store(bound, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn quality_queue_len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(QUALITIES_DUE)?.len()?))
    }

    /// A capture's segment check; `None` for a broadcast never captured (or captured by a
    /// binary that did not check segments).
    pub fn segment_status(&self, key: StreamKey) -> Result<Option<SegmentStatus>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(SEGMENTS)?
                .get(key)?
                .map(|v| segment_status(v.value())))
        })
    }

    /// [`Store::segment_status`] of each of `keys`, aligned with them, in one read.
    pub fn segment_statuses(&self, keys: &[StreamKey]) -> Result<Vec<Option<SegmentStatus>>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(SEGMENTS)?;
            keys.iter()
                .map(|key| Ok(table.get(*key)?.map(|v| segment_status(v.value()))))
                .collect()
        })
    }

    /// The captures last heard alive (ok or partial) with no check due: those a binary from
    /// before the survival watch concluded once and left. Read at start-up to watch them too.
    pub fn unwatched_alive(&self) -> Result<Vec<(StreamKey, SegmentStatus)>, StoreError> {
        self.read(|txn| {
            let mut found = Vec::new();
            for entry in txn.open_table(SEGMENTS)?.iter()? {
                let (key, value) = entry?;
                let status = segment_status(value.value());
                if status.alive() && status.due.is_none() {
                    found.push((key.value(), status));
                }
            }
            Ok(found)
        })
    }

    /// Up to `limit` captures whose segment check is due at `now`, earliest due first.
    pub fn segment_checks_due(&self, now: i64, limit: usize) -> Result<Vec<StreamKey>, StoreError> {
        self.read(|txn| {
            let due = txn.open_table(SEGMENTS_DUE)?;
            let mut keys = Vec::new();
            for entry in due.range(..=(now, i64::MAX, u64::MAX))?.take(limit) {
                let (_, start, id) = entry?.0.value();
                keys.push((start, id));
            }
            Ok(keys)
        })
    }

    /// A capture's original-audio watch; `None` for one whose playlist never listed `-unmuted`
    /// segments.
    pub fn original_audio(&self, key: StreamKey) -> Result<Option<OriginalAudio>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(ORIGINAL_AUDIO)?
                .get(key)?
                .map(|v| original_audio(v.value())))
        })
    }

    /// [`Store::original_audio`] of each of `keys`, aligned with them, in one read.
    pub fn original_audios(&self, keys: &[StreamKey]) -> Result<Vec<Option<OriginalAudio>>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(ORIGINAL_AUDIO)?;
            keys.iter()
                .map(|key| Ok(table.get(*key)?.map(|v| original_audio(v.value()))))
                .collect()
        })
    }

    /// Up to `limit` captures whose original-audio check is due at `now`, earliest due first.
    pub fn original_audio_due(&self, now: i64, limit: usize) -> Result<Vec<StreamKey>, StoreError> {
        self.read(|txn| {
            let due = txn.open_table(ORIGINAL_AUDIO_DUE)?;
            let mut keys = Vec::new();
            for entry in due.range(..=(now, i64::MAX, u64::MAX))?.take(limit) {
                let (_, start, id) = entry?.0.value();
                keys.push((start, id));
            }
            Ok(keys)
        })
    }

    /// Segment checks waiting, due now or later.
    pub fn segment_checks_waiting(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(SEGMENTS_DUE)?.len()?))
    }

    /// Records the qualities a check found and takes the broadcast off the quality queue, in
    /// one transaction. A broadcast no longer found (or gone) just leaves the queue.
    pub fn set_qualities(&self, key: StreamKey, qualities: &[String]) -> Result<(), StoreError> {
        self.update(|update| update.set_qualities(key, qualities))
    }
}
