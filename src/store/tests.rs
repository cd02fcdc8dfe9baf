//! Unit tests of the store against real redb files in temporary directories, and the helpers
//! the model and crash tests share: a record builder and a checker that rebuilds every index
//! from `streams_v1` and compares it with what is stored.

mod model;

use super::encoding::*;
use super::migrate::*;
use super::tables::*;
use super::*;
use crate::packed::record::Layout;
use crate::playlist::Container;
use crate::record::{ArchiveInfo, ProbeState, Status};
use std::collections::{BTreeMap, BTreeSet};

pub(super) const TEST_CACHE_BYTES: u64 = 4 * 1024 * 1024;

pub(super) fn open_in(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("vodprobe.redb"), TEST_CACHE_BYTES).expect("open store")
}

pub(super) fn record(start_unix: i64, stream_id: u64, streamer_id: u64) -> StreamRecord {
    StreamRecord {
        start_unix,
        stream_id,
        streamer_id,
        login: format!("streamer{streamer_id}"),
        title: format!("broadcast {stream_id} at {start_unix}"),
        game_id: "509658".to_string(),
        game_name: "Just Chatting".to_string(),
        language: "en".to_string(),
        is_mature: false,
        max_viewers: 42,
        first_seen: start_unix + 30,
        last_seen: start_unix + 600,
        ended_at: None,
        status: Status::Pending,
        public: None,
        probe: ProbeState::default(),
        archive: None,
    }
}

pub(super) fn archive_info(domain: &str) -> ArchiveInfo {
    ArchiveInfo {
        domain: domain.to_string(),
        domains: vec![domain.to_string()],
        timestamp_form: "unix".to_string(),
        ts: "1700000000".to_string(),
        url: format!("{domain}/abc/chunked/index-dvr.m3u8"),
        duration_seconds: 3600.5,
        segments: 360,
        muted_segments: 2,
        container: Container::Ts,
        qualities: vec!["chunked".to_string(), "720p60".to_string()],
        fetched_at: 1_700_010_000,
        ended: true,
        rebuilt: false,
    }
}

fn due_record(start_unix: i64, stream_id: u64, next_due: i64) -> StreamRecord {
    let mut record = record(start_unix, stream_id, 1);
    record.probe.next_due = Some(next_due);
    record
}

fn keys(records: &[StreamRecord]) -> Vec<StreamKey> {
    records.iter().map(StreamRecord::key).collect()
}

/// Rebuilds every index from `streams_v1` and asserts the stored indexes equal it exactly, and
/// that every playlist belongs to a stored record.
pub(super) fn assert_indexes_consistent(store: &Store) {
    store
        .read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            let (mut due, mut by_streamer, mut by_stream_id, mut live) =
                (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
            let mut stored_keys = BTreeSet::new();
            for entry in streams.iter()? {
                let (key, value) = entry?;
                let record = decode_record(key.value(), value.value())?;
                let (start, id) = record.key();
                stored_keys.insert(record.key());
                if let Some(next_due) = record.probe.next_due {
                    due.insert((next_due, start, id));
                }
                by_streamer.insert((record.streamer_id, start, id));
                by_stream_id.insert((id, start));
                if record.status == Status::Live {
                    live.insert((record.key(), record.last_seen));
                }
            }
            let stored_due = collect_keys(&txn.open_table(DUE)?)?;
            assert_eq!(stored_due, due, "due_v1 disagrees with streams_v1");
            let stored_by_streamer = collect_keys(&txn.open_table(BY_STREAMER)?)?;
            assert_eq!(
                stored_by_streamer, by_streamer,
                "by_streamer_v1 disagrees with streams_v1"
            );
            let stored_by_stream_id = collect_keys(&txn.open_table(BY_STREAM_ID)?)?;
            assert_eq!(
                stored_by_stream_id, by_stream_id,
                "by_stream_id_v1 disagrees with streams_v1"
            );
            let mut stored_live = BTreeSet::new();
            for entry in txn.open_table(LIVE)?.iter()? {
                let (key, last_seen) = entry?;
                stored_live.insert((key.value(), last_seen.value()));
            }
            assert_eq!(stored_live, live, "live_v1 disagrees with streams_v1");
            assert_query_indexes(txn, &streams)?;
            let playlists = collect_keys(&txn.open_table(PLAYLISTS)?)?;
            assert!(
                playlists.is_subset(&stored_keys),
                "a playlist outlived its record"
            );
            // The quality queue holds only found, archived records, with their viewers.
            for entry in txn.open_table(QUALITIES_DUE)?.iter()? {
                let (key, viewers) = entry?;
                let record =
                    get_record(&streams, key.value())?.expect("a queued quality check outlived its record");
                assert_eq!(
                    record.status,
                    Status::Found,
                    "queued for a quality check but not found"
                );
                let _viewers_at_capture = viewers.value();
            }
            // Segment checks belong to stored records, and the queue of checks due is a
            // function of them.
            let mut due_checks = BTreeSet::new();
            for entry in txn.open_table(SEGMENTS)?.iter()? {
                let (key, value) = entry?;
                let (start, id) = key.value();
                assert!(
                    stored_keys.contains(&(start, id)),
                    "a segment check outlived its record"
                );
                if let Some(due) = value.value().3 {
                    due_checks.insert((due, start, id));
                }
            }
            assert_eq!(
                collect_keys(&txn.open_table(SEGMENTS_DUE)?)?,
                due_checks,
                "segments_due_v1 disagrees with segments_v1"
            );
            Ok(())
        })
        .expect("read every table");
}

/// The schema-2 indexes (game, language, status, views, names) against `streams_v1`.
fn assert_query_indexes(
    txn: &ReadTransaction,
    streams: &impl ReadableTable<(i64, u64), &'static [u8]>,
) -> Result<(), StoreError> {
    type Text = BTreeSet<(String, i64, u64)>;
    let (mut game, mut language, mut status, mut views): (Text, Text, BTreeSet<_>, BTreeSet<_>) =
        Default::default();
    let mut names: BTreeMap<(String, u64), u32> = BTreeMap::new();
    for entry in streams.iter()? {
        let (key, value) = entry?;
        let record = decode_record(key.value(), value.value())?;
        let (start, id) = record.key();
        game.insert((record.game_id.clone(), start, id));
        language.insert((record.language.clone(), start, id));
        status.insert((status_code(record.status), start, id));
        views.insert((record.max_viewers, start, id));
        *names
            .entry((record.login.to_ascii_lowercase(), record.streamer_id))
            .or_default() += 1;
    }
    let text_index = |table: TableDefinition<(&str, i64, u64), ()>| -> Result<Text, StoreError> {
        let mut out = BTreeSet::new();
        for entry in txn.open_table(table)?.iter()? {
            let entry = entry?;
            let (text, start, id) = entry.0.value();
            out.insert((text.to_string(), start, id));
        }
        Ok(out)
    };
    assert_eq!(text_index(BY_GAME)?, game, "by_game_v1 disagrees with streams_v1");
    assert_eq!(text_index(BY_LANGUAGE)?, language, "by_language_v1 disagrees");
    assert_eq!(
        collect_keys(&txn.open_table(BY_STATUS)?)?,
        status,
        "by_status_v1 disagrees"
    );
    assert_eq!(
        collect_keys(&txn.open_table(BY_VIEWS)?)?,
        views,
        "by_views_v1 disagrees"
    );
    let mut logins = BTreeMap::new();
    for entry in txn.open_table(LOGINS)?.iter()? {
        let (key, count) = entry?;
        let (login, id) = key.value();
        logins.insert((login.to_string(), id), count.value());
    }
    assert_eq!(logins, names, "logins_v1 disagrees with streams_v1");
    let mut by_id = BTreeMap::new();
    for entry in txn.open_table(NAMES)?.iter()? {
        let (key, count) = entry?;
        let (id, login) = key.value();
        by_id.insert((login.to_string(), id), count.value());
    }
    assert_eq!(by_id, names, "names_v1 disagrees with streams_v1");
    Ok(())
}

fn collect_keys<K, V>(table: &impl ReadableTable<K, V>) -> Result<BTreeSet<K::SelfType<'static>>, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K: redb::Key<SelfType<'a> = K>,
    K: Ord,
{
    let mut out = BTreeSet::new();
    for entry in table.iter()? {
        out.insert(entry?.0.value());
    }
    Ok(out)
}

pub(super) fn put_raw(
    store: &Store,
    table: TableDefinition<(i64, u64), &[u8]>,
    key: StreamKey,
    value: &[u8],
) {
    store
        .write(|txn, _| {
            txn.open_table(table)?.insert(key, value)?;
            Ok(())
        })
        .expect("raw write");
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn records_and_playlists_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let mut archived = record(1_700_000_000, 40_000_000_001, 7);
    archived.status = Status::Found;
    archived.public = Some(true);
    archived.ended_at = Some(1_700_003_600);
    archived.archive = Some(archive_info("https://d1m7jfoe9zdc1j.cloudfront.net"));
    archived.probe.learned = Some(crate::record::Learned {
        domain: "https://d1m7jfoe9zdc1j.cloudfront.net".to_string(),
        form: "unix".to_string(),
        ts: "1700000000".to_string(),
    });
    let plain = record(1_700_000_100, 40_000_000_002, 8);
    store.put_streams(std::slice::from_ref(&plain)).expect("put");
    let text: String = (0..2000).map(|i| format!("#EXTINF:10.000,\n{i}.ts\n")).collect();
    store.put_archived(&archived, &text).expect("put archived");

    assert_eq!(store.get_stream(plain.key()).expect("get"), Some(plain.clone()));
    assert_eq!(
        store.get_stream(archived.key()).expect("get"),
        Some(archived.clone())
    );
    assert_eq!(store.get_stream((1, 1)).expect("get missing"), None);
    let many = store
        .get_streams(&[archived.key(), (5, 5), plain.key()])
        .expect("get many");
    assert_eq!(many, vec![Some(archived.clone()), None, Some(plain.clone())]);
    assert_eq!(
        store.playlist(archived.key()).expect("playlist"),
        Some(text.clone())
    );
    assert_eq!(store.playlist(plain.key()).expect("no playlist"), None);
    assert_eq!(store.count_streams().expect("count"), 2);

    // Stored in the structural encoding (tag 2), much smaller than the text.
    let raw = store
        .read(|txn| {
            Ok(txn
                .open_table(PLAYLISTS)?
                .get(archived.key())?
                .map(|v| v.value().to_vec()))
        })
        .expect("raw read")
        .expect("raw playlist");
    assert_eq!(raw[0], PLAYLIST_PACKED);
    assert!(
        raw.len() * 5 < text.len(),
        "{} compressed vs {} text",
        raw.len(),
        text.len()
    );
    assert!(store.file_size() > 0);
    assert_indexes_consistent(&store);
}

#[test]
fn updates_replace_old_index_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let mut live = record(1000, 77, 1);
    live.status = Status::Live;
    live.probe.next_due = Some(1500);
    store.put_streams(std::slice::from_ref(&live)).expect("put");
    assert_eq!(keys(&store.live().expect("live")), vec![(1000, 77)]);
    assert_eq!(keys(&store.due(1500, 10).expect("due")), vec![(1000, 77)]);

    let mut ended = live.clone();
    ended.status = Status::Pending;
    ended.streamer_id = 2;
    ended.last_seen = 1900;
    ended.probe.next_due = Some(2000);
    store.put_streams(std::slice::from_ref(&ended)).expect("update");
    assert!(store.live().expect("live").is_empty());
    assert!(
        store.due(1999, 10).expect("due").is_empty(),
        "the old due entry is gone"
    );
    assert_eq!(store.due(2000, 10).expect("due"), vec![ended.clone()]);
    assert_eq!(store.queue_len().expect("queue"), 1);
    assert_eq!(store.latest_of_streamer(1, None).expect("latest"), None);
    assert_eq!(
        store.latest_of_streamer(2, None).expect("latest"),
        Some(ended.clone())
    );
    assert_indexes_consistent(&store);

    let mut found = ended.clone();
    found.status = Status::Found;
    found.probe.next_due = None;
    // Two writes of one key in one batch: the last wins, and the indexes follow it.
    store
        .put_streams(&[ended.clone(), found.clone()])
        .expect("update twice");
    assert_eq!(store.queue_len().expect("queue"), 0);
    assert_eq!(store.next_due_time().expect("next due"), None);
    assert_eq!(store.get_stream(found.key()).expect("get"), Some(found));
    assert_indexes_consistent(&store);
}

#[test]
fn restarts_sharing_a_stream_id_are_separate_broadcasts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let later = record(2000, 55, 3);
    let earlier = record(1000, 55, 3);
    let other = record(1500, 56, 3);
    store
        .put_streams(&[later.clone(), other, earlier.clone()])
        .expect("put");
    assert_eq!(store.by_stream_id(55).expect("by id"), vec![earlier, later]);
    assert!(store.by_stream_id(54).expect("by id").is_empty());
    assert_eq!(store.count_streams().expect("count"), 3);
}

#[test]
fn latest_of_streamer_and_streamer_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let (a, b, c) = (record(100, 1, 5), record(200, 2, 5), record(300, 3, 5));
    let same_start = record(300, 4, 5);
    store
        .put_streams(&[
            b.clone(),
            record(250, 9, 6),
            a.clone(),
            c.clone(),
            same_start.clone(),
        ])
        .expect("put");
    assert_eq!(
        store.latest_of_streamer(5, None).expect("latest"),
        Some(same_start.clone())
    );
    assert_eq!(
        store.latest_of_streamer(5, Some(300)).expect("before"),
        Some(b.clone())
    );
    assert_eq!(
        store.latest_of_streamer(5, Some(201)).expect("before"),
        Some(b.clone())
    );
    assert_eq!(store.latest_of_streamer(5, Some(100)).expect("before"), None);
    assert_eq!(store.latest_of_streamer(7, None).expect("unknown"), None);
    assert_eq!(
        keys(&store.streamer_records(5, 3).expect("records")),
        vec![(300, 4), (300, 3), (200, 2)]
    );
    assert_eq!(store.streamer_records(5, 10).expect("records").len(), 4);
    assert_eq!(
        keys(&store.streamer_records(6, 10).expect("records")),
        vec![(250, 9)]
    );
}

#[test]
fn live_set_follows_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let mut records: Vec<StreamRecord> = (0..5).map(|i| record(1000 + i, 10 + i as u64, 1)).collect();
    for live in &mut records[1..4] {
        live.status = Status::Live;
        live.last_seen = live.start_unix + 60;
    }
    store.put_streams(&records).expect("put");
    assert_eq!(store.live().expect("live"), records[1..4].to_vec());
    let seen = store.live_last_seen().expect("last seen");
    assert_eq!(
        seen,
        vec![((1001, 11), 1061), ((1002, 12), 1062), ((1003, 13), 1063)]
    );
    records[2].status = Status::Pending;
    store.put_streams(&records[2..3]).expect("end one");
    assert_eq!(keys(&store.live().expect("live")), vec![(1001, 11), (1003, 13)]);
    assert_indexes_consistent(&store);
}

#[test]
fn due_is_ordered_by_due_time_and_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let records = vec![
        due_record(100, 1, 50),
        due_record(200, 2, 10),
        due_record(300, 3, 30),
        due_record(50, 4, 30),
        due_record(400, 5, 90),
        record(500, 6, 1),
    ];
    store.put_streams(&records).expect("put");
    assert_eq!(store.queue_len().expect("len"), 5);
    assert_eq!(store.next_due_time().expect("next"), Some(10));
    assert_eq!(
        keys(&store.due(50, 10).expect("due")),
        vec![(200, 2), (50, 4), (300, 3), (100, 1)]
    );
    assert_eq!(keys(&store.due(50, 2).expect("due")), vec![(200, 2), (50, 4)]);
    assert!(store.due(9, 10).expect("due").is_empty());
    assert_eq!(store.due(1000, 10).expect("due").len(), 5);
    assert!(store.due(1000, 0).expect("due").is_empty());
}

#[test]
fn prune_with_own_cutoffs_keeps_longer_and_drops_shorter_retentions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    // Streamers 1 (kept longer), 2 (kept shorter) and 3 (the common retention), starts 1000..1009.
    let mut records = Vec::new();
    for i in 0..10 {
        for streamer in 1..=3u64 {
            let mut r = record(1000 + i, streamer * 100 + i as u64, 1);
            r.streamer_id = streamer;
            records.push(r);
        }
    }
    store.put_streams(&records).expect("put");
    let own = std::collections::HashMap::from([(1, 1002), (2, 1008)]);
    // Common cutoff 1005, batches of 2 so the walk resumes past kept records.
    let deleted = store.prune_with(1005, &own, 2).expect("prune");
    let left = store.scan(None, 100).expect("scan");
    let starts = |streamer: u64| -> Vec<i64> {
        left.iter()
            .filter(|r| r.streamer_id == streamer)
            .map(|r| r.start_unix)
            .collect()
    };
    assert_eq!(starts(1), (1002..1010).collect::<Vec<_>>());
    assert_eq!(starts(2), vec![1008, 1009]);
    assert_eq!(starts(3), (1005..1010).collect::<Vec<_>>());
    assert_eq!(deleted, 2 + 8 + 5);
    assert_indexes_consistent(&store);
}

#[test]
fn prune_removes_records_playlists_and_index_entries_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    for i in 0..10 {
        let mut archived = due_record(1000 + i, 100 + i as u64, 5 + i);
        archived.status = if i % 2 == 0 { Status::Live } else { Status::Found };
        archived.archive = Some(archive_info("https://example.net"));
        store
            .put_archived(&archived, &format!("#EXTM3U\n{i}"))
            .expect("archive");
    }
    assert_eq!(store.prune(1007, 2).expect("prune"), 7);
    assert_eq!(
        keys(&store.scan(None, 100).expect("scan")),
        vec![(1007, 107), (1008, 108), (1009, 109)]
    );
    assert_eq!(store.playlist((1003, 103)).expect("pruned playlist"), None);
    assert_eq!(
        store.playlist((1008, 108)).expect("kept playlist"),
        Some("#EXTM3U\n8".to_string())
    );
    assert_eq!(store.queue_len().expect("queue"), 3);
    assert_eq!(store.next_due_time().expect("next"), Some(12));
    assert!(store.by_stream_id(103).expect("by id").is_empty());
    assert_eq!(keys(&store.live().expect("live")), vec![(1008, 108)]);
    assert_indexes_consistent(&store);
    assert_eq!(store.prune(1007, 2).expect("prune again"), 0);
    assert_eq!(store.prune(i64::MAX, 0).expect("prune all, batch 0 means 1"), 3);
    assert_eq!(store.count_streams().expect("count"), 0);
    assert_indexes_consistent(&store);
}

#[test]
fn scan_pages_in_key_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let records: Vec<StreamRecord> = (0..7).rev().map(|i| record(i / 2, i as u64, 1)).collect();
    store.put_streams(&records).expect("put");
    let first = store.scan(None, 3).expect("scan");
    assert_eq!(keys(&first), vec![(0, 0), (0, 1), (1, 2)]);
    let second = store.scan(Some((1, 2)), 3).expect("scan");
    assert_eq!(keys(&second), vec![(1, 3), (2, 4), (2, 5)]);
    assert_eq!(keys(&store.scan(Some((2, 5)), 3).expect("scan")), vec![(3, 6)]);
}

#[test]
fn state_blobs_are_stored_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    assert_eq!(store.get_state("budget").expect("get"), None);
    store.put_state("budget", &[1, 2, 3]).expect("put");
    store.put_state("domains", b"").expect("put empty");
    store.put_state("budget", &[4]).expect("replace");
    assert_eq!(store.get_state("budget").expect("get"), Some(vec![4]));
    assert_eq!(store.get_state("domains").expect("get"), Some(Vec::new()));
}

#[test]
fn schema_version_is_written_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let read_version = |store: &Store| {
        store.read(|txn| Ok(txn.open_table(META)?.get(SCHEMA_VERSION_NAME)?.map(|v| v.value())))
    };
    assert_eq!(read_version(&store).expect("version"), Some(SCHEMA_VERSION));
    store
        .write(|txn, _| {
            txn.open_table(META)?
                .insert(SCHEMA_VERSION_NAME, SCHEMA_VERSION + 1)?;
            Ok(())
        })
        .expect("write a newer version");
    drop(store);
    let error = Store::open(&dir.path().join("vodprobe.redb"), TEST_CACHE_BYTES).expect_err("newer");
    assert!(
        matches!(
            error,
            OpenError::NewerSchema { found, supported }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("newer vodprobe") && message.contains("data_dir"),
        "{message}"
    );
}

#[test]
fn corrupt_values_are_reported_with_their_key_and_can_be_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let mut good = record(500, 9, 4);
    good.probe.next_due = Some(700);
    store.put_streams(std::slice::from_ref(&good)).expect("put");
    put_raw(&store, STREAMS, good.key(), &[9, 1, 2, 3]);
    let error = store.get_stream(good.key()).expect_err("unknown tag");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(
        message.contains("(500, 9)") && message.contains("tag 9"),
        "{message}"
    );
    assert!(matches!(store.scan(None, 10), Err(StoreError::Corrupt { .. })));
    assert!(matches!(store.due(1000, 10), Err(StoreError::Corrupt { .. })));

    // Overwriting the undecodable record drops its stale index entries (found by scanning).
    let mut replacement = good.clone();
    replacement.streamer_id = 8;
    replacement.probe.next_due = Some(900);
    store
        .put_streams(std::slice::from_ref(&replacement))
        .expect("replace corrupt record");
    assert_eq!(store.due(1000, 10).expect("due"), vec![replacement.clone()]);
    assert_indexes_consistent(&store);

    put_raw(&store, STREAMS, good.key(), &[]);
    assert!(matches!(
        store.get_stream(good.key()),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.prune(1000, 10).expect("prune corrupt record"), 1);
    assert_eq!(store.queue_len().expect("queue"), 0);
    assert_indexes_consistent(&store);

    put_raw(&store, PLAYLISTS, (1, 1), &[9, 0]);
    let error = store.playlist((1, 1)).expect_err("unknown playlist tag");
    assert!(error.to_string().contains("(1, 1)"), "{error}");
}

#[test]
fn closing_and_reopening_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("dir").join("vodprobe.redb");
    let store = Store::open(&path, TEST_CACHE_BYTES).expect("open creates parents");
    assert_eq!(store.path(), path.as_path());
    let mut archived = due_record(100, 1, 150);
    archived.archive = Some(archive_info("https://example.net"));
    store.put_archived(&archived, "#EXTM3U\n").expect("archive");
    store.put_state("budget", b"slot").expect("state");
    store.close().expect("close");

    let store = Store::open(&path, TEST_CACHE_BYTES).expect("reopen after close");
    assert_eq!(
        store.get_stream(archived.key()).expect("get"),
        Some(archived.clone())
    );
    assert_eq!(
        store.playlist(archived.key()).expect("playlist"),
        Some("#EXTM3U\n".to_string())
    );
    assert_eq!(store.due(150, 10).expect("due"), vec![archived.clone()]);
    assert_eq!(store.get_state("budget").expect("state"), Some(b"slot".to_vec()));

    // The handle reopen returns and the old one share the new file handle.
    let reopened = store.reopen().expect("reopen");
    assert_eq!(
        store.get_stream(archived.key()).expect("old handle"),
        Some(archived.clone())
    );
    reopened
        .put_state("after", b"reopen")
        .expect("write through the new handle");
    drop(store);

    // A failed reopen leaves the handle answering Io (so the daemon retries) until one succeeds.
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside).expect("move the file aside");
    std::fs::write(&path, vec![7u8; 8192]).expect("junk in its place");
    let error = reopened.reopen().expect_err("junk is not a database");
    assert!(matches!(error, OpenError::Database { .. }), "{error:?}");
    assert!(matches!(
        reopened.count_streams(),
        Err(error @ StoreError::Closed { .. }) if error.needs_reopen()
    ));
    std::fs::rename(&aside, &path).expect("move the file back");
    let again = reopened.reopen().expect("reopen once the file is back");
    assert_eq!(again.count_streams().expect("count"), 1);
    assert_eq!(
        reopened.get_state("after").expect("state"),
        Some(b"reopen".to_vec())
    );
    assert_indexes_consistent(&again);
}

#[test]
fn a_second_open_of_one_file_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let error = Store::open(store.path(), TEST_CACHE_BYTES).expect_err("second open");
    assert!(matches!(error, OpenError::AlreadyOpen { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("another vodprobe is running on this data_dir"),
        "{message}"
    );
    drop(store);
    open_in(&dir);
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vodprobe.redb");
    std::fs::write(&path, vec![7u8; 8192]).expect("write junk");
    let error = Store::open(&path, TEST_CACHE_BYTES).expect_err("junk");
    assert!(matches!(error, OpenError::Database { .. }), "{error:?}");
    assert!(error.to_string().contains("vodprobe.redb"), "{error}");
}

#[test]
fn errors_tell_when_to_reopen_and_when_a_compaction_was_refused() {
    use redb::StorageError as S;
    let io = || S::Io(std::io::Error::other("no space left on device"));
    let path = || PathBuf::from("vodprobe.redb");
    let check = |error: StoreError, reopen: bool| {
        assert_eq!(error.needs_reopen(), reopen, "{error:?}");
        assert!(!error.to_string().is_empty());
    };
    check(io().into(), true);
    check(S::PreviousIo.into(), true);
    check(S::DatabaseClosed.into(), true);
    check(redb::TransactionError::Storage(io()).into(), true);
    check(redb::TableError::Storage(S::PreviousIo).into(), true);
    check(redb::CommitError::Storage(io()).into(), true);
    check(StoreError::Closed { path: path() }, true);
    check(S::ValueTooLarge(1 << 40).into(), false);
    check(redb::CommitError::TransactionPoisoned.into(), false);
    check(
        redb::TableError::TableDoesNotExist("streams_v1".into()).into(),
        false,
    );
    check(
        StoreError::Encode {
            what: "stream (1, 2)".into(),
            message: "no".into(),
        },
        false,
    );
    // redb's own corruption report is the store's.
    let corrupt: StoreError = redb::CommitError::Storage(S::Corrupted("bad page".into())).into();
    assert!(
        matches!(&corrupt, StoreError::Corrupt { what } if what == "bad page"),
        "{corrupt:?}"
    );
    check(corrupt, false);

    let refused = [
        CompactError::Busy,
        CompactError::Stopped,
        CompactError::Closed,
        CompactError::NoSpace {
            path: path(),
            needed: 64 << 20,
            available: 1 << 20,
        },
        CompactError::Diverged {
            table: "due_v1".into(),
            expected: 2,
            copied: 1,
        },
    ];
    for error in refused {
        assert!(error.is_refusal(), "{error:?}");
    }
    let failed = [
        CompactError::Missing { path: path() },
        CompactError::Io {
            what: "sync",
            path: path(),
            source: std::io::Error::other("EIO"),
        },
        CompactError::Mismatch {
            table: "due_v1".into(),
            expected: 2,
            copied: 1,
        },
        CompactError::UnknownTables {
            tables: vec!["future_v1".into()],
        },
        CompactError::Store(io().into()),
        CompactError::Open(OpenError::AlreadyOpen { path: path() }),
    ];
    for error in failed {
        assert!(!error.is_refusal(), "{error:?}");
    }
    let no_space = CompactError::NoSpace {
        path: path(),
        needed: 64 << 20,
        available: 1 << 20,
    };
    assert_eq!(
        no_space.to_string(),
        "it needs about 64 MiB free beside vodprobe.redb and 1 MiB are; free some space"
    );
}

#[test]
fn many_archives_go_in_one_transaction_with_their_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let items: Vec<(StreamRecord, String)> = (0..300u64)
        .map(|i| {
            let mut r = record(1_700_000_000 + i as i64 * 60, 40_000_000_000 + i, 7 + i % 5);
            r.status = Status::Found;
            r.archive = Some(archive_info("https://vod-secure.twitch.tv"));
            (r, format!("#EXTM3U\n#EXTINF:10.000,\n{i}.ts\n#EXT-X-ENDLIST\n"))
        })
        .collect();
    store.put_archived_many(&items).expect("put many");
    assert_eq!(store.count_streams().expect("count"), 300);
    for (r, text) in [&items[0], &items[299]] {
        assert_eq!(store.get_stream(r.key()).expect("get").as_ref(), Some(r));
        assert_eq!(
            store.playlist(r.key()).expect("playlist").as_deref(),
            Some(text.as_str())
        );
    }
    assert_eq!(store.streamer_records(9, 1000).expect("by streamer").len(), 60);
    assert_indexes_consistent(&store);
}

#[test]
fn first_captures_queue_a_quality_check_most_viewed_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let found = |start: i64, id: u64, viewers: u32| {
        let mut r = record(start, id, 7);
        r.status = Status::Found;
        r.max_viewers = viewers;
        r.archive = Some(archive_info("https://vod-secure.twitch.tv"));
        r
    };
    let (quiet, busy) = (found(1_700_000_000, 1, 10), found(1_700_000_100, 2, 900));
    store.put_archived(&quiet, "#EXTM3U\n").expect("archive");
    store.put_archived(&busy, "#EXTM3U\n").expect("archive");
    // The hour probe re-captures: no second entry.
    store.put_archived(&busy, "#EXTM3U\n").expect("re-archive");
    assert_eq!(
        store.quality_queue(10).expect("queue"),
        vec![busy.key(), quiet.key()]
    );
    assert_indexes_consistent(&store);

    let qualities = vec!["chunked".to_string(), "720p60".to_string()];
    store.set_qualities(busy.key(), &qualities).expect("set");
    let stored = store.get_stream(busy.key()).expect("get").expect("record");
    assert_eq!(stored.archive.expect("archive").qualities, qualities);
    assert_eq!(store.quality_queue(10).expect("queue"), vec![quiet.key()]);
    // A re-capture after the check does not queue it again.
    store
        .put_archived(&stored_again(&store, busy.key()), "#EXTM3U\n")
        .expect("re-archive");
    assert_eq!(store.quality_queue_len().expect("len"), 1);
    // Pruning the record takes its queue entry with it.
    store.apply(&[], &[quiet.key()]).expect("delete");
    assert_eq!(store.quality_queue_len().expect("len"), 0);
    assert_indexes_consistent(&store);
}

#[test]
fn a_copy_taken_while_live_and_completed_at_the_end_is_checked_like_a_capture() {
    use crate::segments::SegmentStatus;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    // Captured while live (its playlist already ended): not checked yet, a live copy may grow.
    let mut live = record(1_700_000_000, 1, 7);
    live.status = Status::Live;
    live.archive = Some(archive_info("https://vod-secure.twitch.tv"));
    let captured = live.archive.as_ref().expect("archive").fetched_at;
    store.put_archived(&live, "#EXTM3U\n").expect("archive");
    assert_eq!(store.segment_status(live.key()).expect("read"), None);
    assert_eq!(store.quality_queue(10).expect("queue"), vec![]);
    // The crawl ends it as found without another capture: both checks are queued, once.
    let mut completed = live.clone();
    completed.status = Status::Found;
    store.put_streams(std::slice::from_ref(&completed)).expect("put");
    assert_eq!(
        store.segment_status(live.key()).expect("read"),
        Some(SegmentStatus::unchecked(captured))
    );
    assert_eq!(store.quality_queue(10).expect("queue"), vec![live.key()]);
    store
        .put_streams(std::slice::from_ref(&completed))
        .expect("put again");
    assert_eq!(store.quality_queue_len().expect("len"), 1);
    assert_indexes_consistent(&store);
}

#[test]
fn a_first_capture_waits_for_its_segment_check_across_a_reopen() {
    use crate::segments::{SegmentState, SegmentStatus};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut found = record(1_700_000_000, 1, 7);
    found.status = Status::Found;
    found.archive = Some(archive_info("https://vod-secure.twitch.tv"));
    let captured = found.archive.as_ref().expect("archive").fetched_at;
    let pending = record(1_700_000_100, 2, 7);
    {
        let store = open_in(&dir);
        store.put_archived(&found, "#EXTM3U\n").expect("archive");
        store.put_streams(std::slice::from_ref(&pending)).expect("put");
        assert_eq!(
            store.segment_status(found.key()).expect("read"),
            Some(SegmentStatus::unchecked(captured))
        );
        assert_eq!(store.segment_status(pending.key()).expect("read"), None);
        assert_eq!(store.segment_checks_due(captured - 1, 10).expect("due"), vec![]);
        assert_indexes_consistent(&store);
    }
    // A restart still finds it due.
    let store = open_in(&dir);
    assert_eq!(
        store.segment_checks_due(captured, 10).expect("due"),
        vec![found.key()]
    );
    // Put off (no budget, a failing domain), then concluded.
    let later = SegmentStatus {
        due: Some(captured + 300),
        ..SegmentStatus::unchecked(captured)
    };
    let wrote = store
        .update(|tx| tx.set_segment_status(found.key(), &later))
        .expect("postpone");
    assert!(wrote);
    assert_eq!(store.segment_checks_due(captured + 299, 10).expect("due"), vec![]);
    assert_indexes_consistent(&store);
    let gone = later.concluded(SegmentState::Gone, found.start_unix, captured + 300);
    store
        .update(|tx| tx.set_segment_status(found.key(), &gone))
        .expect("conclude");
    assert_eq!(store.segment_checks_due(i64::MAX, 10).expect("due"), vec![]);
    assert_eq!(store.segment_checks_waiting().expect("waiting"), 0);
    // A re-capture (the hour's second probe) keeps the result.
    store.put_archived(&found, "#EXTM3U\n").expect("re-archive");
    assert_eq!(
        store
            .segment_statuses(&[found.key(), pending.key()])
            .expect("read"),
        vec![Some(gone), None]
    );
    drop(store);
    let store = open_in(&dir);
    assert_eq!(store.segment_status(found.key()).expect("read"), Some(gone));
    // A broadcast not stored gets no check; pruning takes the check with it.
    let missing = store
        .update(|tx| tx.set_segment_status((1, 1), &gone))
        .expect("absent");
    assert!(!missing);
    store.apply(&[], &[found.key()]).expect("delete");
    assert_eq!(store.segment_status(found.key()).expect("read"), None);
    assert_indexes_consistent(&store);
}

fn stored_again(store: &Store, key: StreamKey) -> StreamRecord {
    store.get_stream(key).expect("get").expect("record")
}

#[test]
fn the_quality_queue_drops_the_least_viewed_beyond_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    store.set_quality_queue_bound(50);
    let items: Vec<StreamRecord> = (0..55)
        .map(|i| {
            let mut r = record(1_700_000_000 + i as i64, i + 1, 7);
            r.status = Status::Found;
            r.max_viewers = (i % 40) as u32 + 10;
            r.archive = Some(archive_info("https://vod-secure.twitch.tv"));
            r
        })
        .collect();
    for r in &items {
        store.put_archived(r, "#EXTM3U\n").expect("archive");
    }
    assert_eq!(store.quality_queue_len().expect("len"), 50);
    // The five dropped were the least viewed (10 viewers: i = 0, 40; 11: i = 1, 41; 12: i = 2).
    let kept = store.quality_queue(100).expect("queue");
    for i in [0u64, 40, 1, 41, 2] {
        assert!(
            !kept.contains(&items[i as usize].key()),
            "{i} should have been dropped"
        );
    }
    assert_eq!(
        store.get_stream(kept[0]).expect("get").expect("r").max_viewers,
        49
    );
}

/// A Twitch-shaped playlist of `segments` ten-second segments.
fn twitch_playlist(segments: usize) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:EVENT\n");
    for i in 0..segments {
        text.push_str(&format!("#EXTINF:10.000,\n{i}.ts\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

fn stored_tag(store: &Store, key: StreamKey) -> u8 {
    store
        .read(|txn| Ok(txn.open_table(PLAYLISTS)?.get(key)?.map(|v| v.value()[0])))
        .expect("read")
        .expect("stored")
}

#[test]
fn twitch_playlists_are_stored_packed_and_others_as_zstd_exactly() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let twitch = twitch_playlist(1440);
    let mut odd = String::new();
    for i in 0..400 {
        odd.push_str(&format!(
            "#EXTINF:10.000,title {i}\nhttps://elsewhere.test/{i:05}.ts\n"
        ));
    }
    for (id, text) in [(1, &twitch), (2, &odd)] {
        let mut record = record(100, id, 1);
        record.status = Status::Found;
        record.archive = Some(archive_info("https://d.test/"));
        store.put_archived(&record, text).expect("put");
        assert_eq!(
            store.playlist((100, id)).expect("read").as_deref(),
            Some(text.as_str())
        );
    }
    assert_eq!(stored_tag(&store, (100, 1)), PLAYLIST_PACKED);
    assert_eq!(
        stored_tag(&store, (100, 2)),
        PLAYLIST_ZSTD,
        "zstd is smaller for irregular text"
    );
}

#[test]
fn zstd_playlists_of_an_older_file_are_packed_in_resumable_steps() {
    let dir = tempfile::tempdir().expect("dir");
    let texts: Vec<String> = (0..25).map(|i| twitch_playlist(10 + i)).collect();
    {
        let store = open_in(&dir);
        // As schema 2 wrote them: zstd values, no `playlists_packed` mark, version 2.
        for (i, text) in texts.iter().enumerate() {
            let mut record = record(100 + i as i64, i as u64, 1);
            record.status = Status::Found;
            store.put_archived(&record, text).expect("put");
        }
        store
            .write(|txn, _| {
                let mut playlists = txn.open_table(PLAYLISTS)?;
                for (i, text) in texts.iter().enumerate() {
                    let key = (100 + i as i64, i as u64);
                    playlists.insert(key, encode_zstd(key, text)?.as_slice())?;
                }
                let mut meta = txn.open_table(META)?;
                meta.remove(PACKING_DONE)?;
                meta.insert(SCHEMA_VERSION_NAME, 2)?;
                Ok(())
            })
            .expect("downgrade");
    }
    let store = open_in(&dir);
    let version = store
        .read(|txn| Ok(txn.open_table(META)?.get(SCHEMA_VERSION_NAME)?.map(|v| v.value())))
        .expect("version");
    assert_eq!(version, Some(SCHEMA_VERSION));
    // Readable before conversion.
    assert_eq!(
        store.playlist((100, 0)).expect("read").as_deref(),
        Some(texts[0].as_str())
    );
    let first = store.pack_playlists(10).expect("step");
    assert_eq!((first.examined, first.converted, first.done), (10, 10, false));
    assert!(first.bytes_after < first.bytes_before);
    drop(store);
    // A restart resumes after the cursor.
    let store = open_in(&dir);
    let second = store.pack_playlists(10).expect("step");
    assert_eq!((second.examined, second.converted, second.done), (10, 10, false));
    let third = store.pack_playlists(10).expect("step");
    assert_eq!(third.converted, 5);
    // Then the records (already compact here: nothing to convert).
    let mut steps = 0;
    while !store.pack_playlists(10).expect("step").done {
        steps += 1;
        assert!(steps < 10, "the record pass never finished");
    }
    for (i, text) in texts.iter().enumerate() {
        let key = (100 + i as i64, i as u64);
        assert_eq!(stored_tag(&store, key), PLAYLIST_PACKED);
        assert_eq!(store.playlist(key).expect("read").as_deref(), Some(text.as_str()));
    }
    // A fresh file has nothing to convert.
    let fresh = tempfile::tempdir().expect("dir");
    assert!(open_in(&fresh).pack_playlists(10).expect("step").done);
}

#[test]
fn postcard_and_spelled_records_of_an_older_file_are_packed_and_read_the_same() {
    let dir = tempfile::tempdir().expect("dir");
    let mut records = Vec::new();
    for i in 0..12u64 {
        let mut record = record(1_700_000_000 + i as i64, 40_000 + i, 7);
        if i % 2 == 0 {
            record.status = Status::Found;
            let mut archive = archive_info("https://vod-secure.twitch.tv/");
            archive.ts = record.start_unix.to_string();
            archive.url = format!(
                "https://vod-secure.twitch.tv/0123456789abcdef0123_{}_{}_{}/chunked/index-dvr.m3u8",
                record.login, record.stream_id, archive.ts
            );
            record.archive = Some(archive);
        }
        records.push(record);
    }
    {
        let store = open_in(&dir);
        store.put_streams(&records).expect("put");
        store
            .write(|txn, _| {
                let mut streams = txn.open_table(STREAMS)?;
                for (i, record) in records.iter().enumerate() {
                    let old = if i % 3 == 0 {
                        let mut old = vec![RECORD_PACKED_SPELLED];
                        old.extend_from_slice(&crate::packed::record::pack_in(record, Layout::Spelled));
                        old
                    } else {
                        let mut old = vec![RECORD_POSTCARD];
                        old.extend_from_slice(&postcard::to_allocvec(record).expect("postcard"));
                        old
                    };
                    streams.insert(record.key(), old.as_slice())?;
                }
                txn.open_table(META)?.remove(RECORDS_PACKED)?;
                Ok(())
            })
            .expect("downgrade");
        assert_eq!(
            store.scan(None, 100).expect("scan"),
            records,
            "postcard records read"
        );
    }
    let store = open_in(&dir);
    let mut converted = 0;
    loop {
        let step = store.pack_playlists(5).expect("step");
        converted += step.converted;
        if step.done {
            break;
        }
        assert!(step.bytes_after < step.bytes_before || step.converted == 0);
    }
    assert_eq!(converted, 12);
    assert_eq!(
        store.scan(None, 100).expect("scan"),
        records,
        "compact records read the same"
    );
    let tag = store
        .read(|txn| {
            Ok(txn
                .open_table(STREAMS)?
                .get(records[0].key())?
                .map(|v| v.value().to_vec()))
        })
        .expect("read")
        .expect("stored");
    assert_eq!(tag[0], RECORD_PACKED);
    assert!(tag.len() < 120, "{} bytes", tag.len());
    assert_indexes_consistent(&store);
}

#[test]
fn a_record_the_compact_encoding_cannot_hold_exactly_is_kept_as_postcard() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let mut odd = record(100, 1, 1);
    let mut archive = archive_info("https://elsewhere.test/");
    archive.duration_seconds = f64::NAN;
    odd.archive = Some(archive);
    store.put_streams(std::slice::from_ref(&odd)).expect("put");
    let stored = store
        .read(|txn| Ok(txn.open_table(STREAMS)?.get(odd.key())?.map(|v| v.value()[0])))
        .expect("read");
    assert_eq!(stored, Some(RECORD_POSTCARD));
    let back = store.get_stream(odd.key()).expect("read").expect("stored");
    assert!(back.archive.expect("archive").duration_seconds.is_nan());
}

/// A store filled the way the daemon fills one (many small transactions, entries arriving in
/// the middle of every index, a prune): fragmented, with an older record encoding mixed in.
fn fragmented_store(dir: &tempfile::TempDir) -> (Vec<StreamRecord>, Vec<(StreamKey, String)>) {
    let store = open_in(dir);
    let mut rng = vodprobe_sim::Rng::new(17);
    let games = [
        ("509658", "Just Chatting"),
        ("21779", "League of Legends"),
        ("33214", "Fortnite"),
    ];
    for i in 0..1_500u64 {
        let start = 1_700_000_000 + (i as i64) * 60;
        let mut record = record(start, 900_000 + i, 1 + rng.below(40) as u64);
        let game = games[rng.below(games.len())];
        record.game_id = game.0.to_string();
        record.game_name = game.1.to_string();
        record.language = ["en", "de", "fr"][rng.below(3)].to_string();
        record.max_viewers = rng.range(1, 50_000) as u32;
        if i % 3 == 0 {
            record.probe.next_due = Some(start + 4_000);
            store.put_streams(&[record]).expect("put");
        } else {
            record.status = Status::Found;
            let mut archive = archive_info("https://vod-secure.twitch.tv/");
            archive.ts = start.to_string();
            let dir = vodprobe_sim::vod_dir(&record.login, record.stream_id, &archive.ts);
            archive.url = format!("https://vod-secure.twitch.tv/{dir}/chunked/index-dvr.m3u8");
            record.archive = Some(archive);
            store
                .put_archived(&record, &twitch_playlist(10 + (i as usize % 50)))
                .expect("archive");
        }
    }
    assert_eq!(store.prune(1_700_000_000 + 300 * 60, 100).expect("prune"), 300);
    // Records of older binaries: postcard and the spelled-out compact layout, which
    // compaction re-encodes.
    for (i, record) in store.scan(None, 25).expect("scan").into_iter().enumerate() {
        let bytes = if i < 20 {
            let mut bytes = vec![RECORD_POSTCARD];
            bytes.extend_from_slice(&postcard::to_allocvec(&record).expect("postcard"));
            bytes
        } else {
            let mut bytes = vec![RECORD_PACKED_SPELLED];
            bytes.extend_from_slice(&crate::packed::record::pack_in(&record, Layout::Spelled));
            bytes
        };
        put_raw(&store, STREAMS, record.key(), &bytes);
    }
    store.put_state("domain_book", b"{\"kept\":true}").expect("state");
    let records = store.scan(None, 10_000).expect("scan");
    let playlists = records
        .iter()
        .filter_map(|r| store.playlist(r.key()).expect("playlist").map(|p| (r.key(), p)))
        .collect();
    store.close().expect("close");
    (records, playlists)
}

/// Each table's name and number of entries.
fn entry_counts(store: &Store) -> Vec<(String, u64)> {
    store
        .table_sizes()
        .expect("sizes")
        .into_iter()
        .map(|t| (t.name, t.entries))
        .collect()
}

#[test]
fn compaction_keeps_every_entry_and_shrinks_a_fragmented_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (records, playlists) = fragmented_store(&dir);
    let path = dir.path().join("vodprobe.redb");
    let (counts_before, due_before) = {
        let store = open_in(&dir);
        let counts = entry_counts(&store);
        let due = keys(&store.due(i64::MAX, 10_000).expect("due"));
        store.close().expect("close");
        (counts, due)
    };
    let mut reports = 0;
    let done = compact_file(&path, TEST_CACHE_BYTES, &mut |_, copied, total| {
        assert!(copied <= total);
        reports += 1;
    })
    .expect("compact");
    assert!(reports >= 15, "progress per table");
    let on_disk = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).expect("file")) * 512;
    assert_eq!(done.bytes_after, on_disk);
    assert!(
        done.bytes_after < done.bytes_before,
        "{} -> {} bytes",
        done.bytes_before,
        done.bytes_after
    );
    assert_eq!(done.records_recoded, 25, "the postcard and spelled-out records");
    assert!(!compacting_path(&path).exists());

    let store = open_in(&dir);
    assert_eq!(store.scan(None, 10_000).expect("scan"), records);
    for (key, text) in &playlists {
        assert_eq!(store.playlist(*key).expect("playlist").as_ref(), Some(text));
    }
    assert_eq!(entry_counts(&store), counts_before);
    assert_eq!(keys(&store.due(i64::MAX, 10_000).expect("due")), due_before);
    assert_eq!(
        store.get_state("domain_book").expect("state").as_deref(),
        Some(&b"{\"kept\":true}"[..])
    );
    let tags = store
        .read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            let mut tags = BTreeSet::new();
            for entry in streams.iter()? {
                tags.insert(entry?.1.value()[0]);
            }
            Ok(tags)
        })
        .expect("tags");
    assert_eq!(tags, BTreeSet::from([RECORD_PACKED]));
    assert_indexes_consistent(&store);
    // The compacted file is an ordinary database: it takes writes and compacts again.
    store
        .put_streams(&[record(1_800_000_000, 1, 1)])
        .expect("write after");
    store.close().expect("close");
    compact_file(&path, TEST_CACHE_BYTES, &mut |_, _, _| {}).expect("again");
    assert_eq!(
        open_in(&dir).count_streams().expect("count"),
        records.len() as u64 + 1
    );
}

#[test]
fn compaction_refuses_an_open_file_and_unknown_tables_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("vodprobe.redb");
    let store = open_in(&dir);
    store.put_streams(&[record(1_700_000_000, 5, 5)]).expect("put");
    let before = std::fs::read(&path).expect("read");
    let error = compact_file(&path, TEST_CACHE_BYTES, &mut |_, _, _| {}).expect_err("open elsewhere");
    assert!(
        matches!(error, CompactError::Open(OpenError::AlreadyOpen { .. })),
        "{error}"
    );
    assert!(!compacting_path(&path).exists());
    // A table a newer binary added would be lost by a copy that does not know it.
    store
        .write(|txn, _| {
            let table: TableDefinition<u64, u64> = TableDefinition::new("future_v1");
            txn.open_table(table)?.insert(1, 2)?;
            Ok(())
        })
        .expect("future table");
    store.close().expect("close");
    let before_refusal = std::fs::read(&path).expect("read");
    assert_ne!(before, before_refusal);
    // A stale copy from a run that died is replaced, not trusted.
    std::fs::write(compacting_path(&path), b"half a copy").expect("stale");
    let error = compact_file(&path, TEST_CACHE_BYTES, &mut |_, _, _| {}).expect_err("unknown table");
    assert!(error.to_string().contains("future_v1"), "{error}");
    assert!(!compacting_path(&path).exists());
    let store = open_in(&dir);
    assert_eq!(store.count_streams().expect("count"), 1);
    store.close().expect("close");
    let error = compact_file(
        &dir.path().join("missing.redb"),
        TEST_CACHE_BYTES,
        &mut |_, _, _| {},
    )
    .expect_err("no file");
    assert!(error.to_string().contains("no database"), "{error}");
}

/// Writes that the store sees while a compaction copies it, with the state they leave.
struct Churn {
    records: BTreeMap<StreamKey, StreamRecord>,
    playlists: BTreeMap<StreamKey, String>,
    step: u64,
}

impl Churn {
    fn new(records: Vec<StreamRecord>, playlists: Vec<(StreamKey, String)>) -> Churn {
        Churn {
            records: records.into_iter().map(|r| (r.key(), r)).collect(),
            playlists: playlists.into_iter().collect(),
            step: 0,
        }
    }

    /// One round of every kind of write: a new live stream, a record changed in every
    /// indexed field, an archive, a deletion, a quality check and a state blob.
    fn write(&mut self, store: &Store, lane: u64) {
        self.step += 1;
        let n = self.step * 8 + lane;
        let fresh = record(1_900_000_000 + n as i64, 5_000_000 + n, n);
        store.put_streams(std::slice::from_ref(&fresh)).expect("new");
        self.records.insert(fresh.key(), fresh);
        let keys: Vec<StreamKey> = self.records.keys().copied().collect();
        let pick = |salt: u64| keys[((n * 7919 + salt) % keys.len() as u64) as usize];
        let mut changed = self.records[&pick(1)].clone();
        changed.max_viewers += 1;
        changed.game_id = format!("g{n}");
        changed.language = "ja".to_string();
        changed.login = format!("renamed{n}");
        changed.probe.next_due = Some(2_000_000_000 + n as i64);
        store.put_streams(std::slice::from_ref(&changed)).expect("change");
        self.records.insert(changed.key(), changed);
        let mut archived = self.records[&pick(2)].clone();
        archived.status = Status::Found;
        archived.probe.next_due = None;
        archived.archive = Some(archive_info("https://vod-secure.twitch.tv/"));
        let text = twitch_playlist(3 + (n as usize % 20));
        store.put_archived(&archived, &text).expect("archive");
        self.records.insert(archived.key(), archived.clone());
        self.playlists.insert(archived.key(), text);
        store
            .set_qualities(archived.key(), &[format!("{n}p")])
            .expect("qualities");
        if let Some(archive) = self
            .records
            .get_mut(&archived.key())
            .and_then(|r| r.archive.as_mut())
        {
            archive.qualities = vec![format!("{n}p")];
        }
        let gone = pick(3);
        store.apply(&[], &[gone]).expect("delete");
        self.records.remove(&gone);
        self.playlists.remove(&gone);
        store
            .put_state(&format!("lane{lane}"), &n.to_le_bytes())
            .expect("state");
    }

    fn assert_holds(&self, store: &Store) {
        let stored = store.scan(None, usize::MAX).expect("scan");
        assert_eq!(stored.len(), self.records.len());
        for (stored, expected) in stored.iter().zip(self.records.values()) {
            assert_eq!(stored, expected);
        }
        for (key, text) in &self.playlists {
            assert_eq!(
                store.playlist(*key).expect("playlist").as_ref(),
                Some(text),
                "{key:?}"
            );
        }
        assert_indexes_consistent(store);
    }
}

#[test]
fn online_compaction_keeps_the_writes_made_while_it_copies() {
    let dir = tempfile::tempdir().expect("dir");
    let (records, playlists) = fragmented_store(&dir);
    let path = dir.path().join("vodprobe.redb");
    // Leftovers of a compaction that died are removed, not trusted.
    std::fs::write(compacting_path(&path), b"half a copy").expect("stale");
    let store = open_in(&dir);
    let before = store.occupancy().expect("occupancy");
    assert!(before.waste() > 0.2, "{before:?}");
    let mut churn = Churn::new(records, playlists);
    let mut calls = 0;
    let done = store
        .compact_online(&mut |_, copied, total| {
            assert!(copied <= total);
            calls += 1;
            // Writes between the copy's steps land after its snapshot; the catch-up keeps them.
            churn.write(&store, 0);
            // One compaction at a time.
            let again = store.compact_online(&mut |_, _, _| true).expect_err("second");
            assert!(
                matches!(again, CompactError::Busy) && again.is_refusal(),
                "{again}"
            );
            true
        })
        .expect("compact");
    assert!(calls >= 15, "progress per table");
    assert!(done.bytes_after < done.bytes_before, "{done:?}");
    assert_eq!(done.records_recoded, 25, "the postcard and spelled-out records");
    assert!(!compacting_path(&path).exists());
    assert!(!compact::backup_path(&path).exists());
    let after = store.occupancy().expect("occupancy");
    assert!(after.disk_bytes < before.disk_bytes, "{before:?} -> {after:?}");
    churn.assert_holds(&store);
    assert!(store.get_state("lane0").expect("state").is_some());
    assert_eq!(
        store.get_state("domain_book").expect("state").as_deref(),
        Some(&b"{\"kept\":true}"[..])
    );
    // The handle now writes to the new file, and the file reopens with everything.
    churn.write(&store, 1);
    churn.assert_holds(&store);
    store.close().expect("close");
    churn.assert_holds(&open_in(&dir));
}

#[test]
fn online_compaction_races_writers_on_other_threads() {
    let dir = tempfile::tempdir().expect("dir");
    let (records, playlists) = fragmented_store(&dir);
    let store = open_in(&dir);
    let churn = std::sync::Mutex::new(Churn::new(records, playlists));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for lane in 2..4 {
            let (store, churn, stop) = (&store, &churn, &stop);
            scope.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // The model changes with the store, one round at a time.
                    churn.lock().expect("churn").write(store, lane);
                }
            });
        }
        for _ in 0..3 {
            store.compact_online(&mut |_, _, _| true).expect("compact");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let churn = churn.into_inner().expect("churn");
    assert!(churn.step > 0);
    churn.assert_holds(&store);
}

#[test]
fn a_stopped_online_compaction_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (records, playlists) = fragmented_store(&dir);
    let path = dir.path().join("vodprobe.redb");
    let store = open_in(&dir);
    let before = store.file_size();
    let mut churn = Churn::new(records, playlists);
    let mut calls = 0;
    let error = store
        .compact_online(&mut |_, _, _| {
            calls += 1;
            churn.write(&store, 0);
            calls < 3
        })
        .expect_err("stopped");
    assert!(
        matches!(error, CompactError::Stopped) && error.is_refusal(),
        "{error}"
    );
    assert!(!compacting_path(&path).exists());
    assert!(store.file_size() >= before);
    churn.write(&store, 1);
    churn.assert_holds(&store);
    // The journal stopped with it, and another compaction can run.
    assert!(store.shared.writes.lock().expect("writes").journal.is_none());
    store.compact_online(&mut |_, _, _| true).expect("compact");
    churn.assert_holds(&store);
}
