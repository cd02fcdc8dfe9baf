//! Tests of [`Store::update`]: a read-modify-write sees its own writes and commits them as
//! one, an error writes nothing, read-modify-writes racing on threads lose no change, and a
//! compaction running meanwhile journals (and so keeps) what they write.

use super::*;
use crate::record::Status;
use crate::store::tables::STREAMS;
use crate::store::tests::{archive_info, assert_indexes_consistent, open_in, put_raw, record};
use crate::store::*;

fn archived(start_unix: i64, stream_id: u64, streamer_id: u64) -> StreamRecord {
    let mut record = record(start_unix, stream_id, streamer_id);
    record.status = Status::Found;
    record.archive = Some(archive_info("https://vod-secure.twitch.tv"));
    record
}

#[test]
fn a_read_modify_write_sees_its_own_writes_and_commits_them_together() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let mut old = record(1_000, 1, 7);
    old.status = Status::Live;
    store.put_streams(std::slice::from_ref(&old)).expect("put");
    let generation = store.generation();
    let mut fresh = record(2_000, 2, 7);
    fresh.status = Status::Live;
    fresh.probe.next_due = Some(2_500);
    let captured = store
        .update(|update| {
            update.put_streams(std::slice::from_ref(&fresh))?;
            assert_eq!(update.get_stream(fresh.key())?, Some(fresh.clone()));
            assert_eq!(
                update.get_streams(&[old.key(), (3, 3), fresh.key()])?,
                vec![Some(old.clone()), None, Some(fresh.clone())]
            );
            assert_eq!(update.latest_of_streamer(7, None)?, Some(fresh.clone()));
            assert_eq!(update.latest_of_streamer(7, Some(2_000))?, Some(old.clone()));
            assert_eq!(update.latest_of_streamer(8, None)?, None);
            assert_eq!(update.live()?, vec![old.clone(), fresh.clone()]);
            assert_eq!(update.due(2_499, 10)?, vec![]);
            assert_eq!(update.due(2_500, 10)?, vec![fresh.clone()]);
            assert_eq!(update.queue_len()?, 1);
            // The old broadcast goes, the new one is captured: the indexes follow at once.
            let mut captured = fresh.clone();
            captured.status = Status::Found;
            captured.probe.next_due = None;
            captured.archive = Some(archive_info("https://vod-secure.twitch.tv"));
            update.apply(&[], &[old.key()])?;
            update.put_archived(&captured, "#EXTM3U\n#EXT-X-ENDLIST\n")?;
            assert_eq!(update.get_stream(old.key())?, None);
            assert_eq!(update.live()?, vec![]);
            assert_eq!(update.queue_len()?, 0);
            assert_eq!(update.latest_of_streamer(7, None)?, Some(captured.clone()));
            update.set_qualities(captured.key(), &["720p60".to_string()])?;
            Ok::<_, StoreError>(update.get_stream(captured.key())?.expect("captured"))
        })
        .expect("update");
    assert_eq!(store.generation(), generation + 1, "one commit");
    assert_eq!(
        captured.archive.as_ref().map(|a| a.qualities.clone()),
        Some(vec!["720p60".to_string()])
    );
    assert_eq!(store.scan(None, 10).expect("scan"), vec![captured.clone()]);
    assert_eq!(
        store.playlist(captured.key()).expect("playlist").as_deref(),
        Some("#EXTM3U\n#EXT-X-ENDLIST\n")
    );
    // Queued by the capture, taken off by the quality check, in the same transaction.
    assert_eq!(store.quality_queue_len().expect("quality queue"), 0);
    assert_indexes_consistent(&store);
}

/// The error of a closure that gives up, or of the store under it.
#[derive(Debug)]
enum GaveUp {
    Refused,
    Store(StoreError),
}

impl From<StoreError> for GaveUp {
    fn from(error: StoreError) -> GaveUp {
        GaveUp::Store(error)
    }
}

#[test]
fn an_update_that_fails_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let mut due = record(1_000, 1, 1);
    due.probe.next_due = Some(1_500);
    let kept = archived(2_000, 2, 2);
    store.put_streams(std::slice::from_ref(&due)).expect("put");
    store.put_archived(&kept, "#EXTM3U\n").expect("archive");
    let quality_queue = store.quality_queue(10).expect("quality queue");
    // Writes of every kind, then `last` decides how the closure ends.
    let attempt = |last: &dyn Fn(&mut Update<'_>) -> Result<(), GaveUp>| {
        store.update(|update| {
            let mut changed = due.clone();
            changed.max_viewers += 1;
            changed.probe.next_due = Some(9_000);
            update.put_streams(std::slice::from_ref(&changed))?;
            update.apply(&[record(3_000, 3, 3)], &[kept.key()])?;
            update.put_archived(&archived(4_000, 4, 4), "#EXTM3U\n")?;
            update.set_qualities((4_000, 4), &["160p30".to_string()])?;
            assert_eq!(update.get_stream(due.key())?, Some(changed));
            assert!(update.get_stream(kept.key())?.is_none());
            last(update)
        })
    };
    let unchanged = || {
        assert_eq!(store.get_stream(due.key()).expect("get"), Some(due.clone()));
        assert_eq!(store.get_stream(kept.key()).expect("get"), Some(kept.clone()));
        for absent in [(3_000, 3), (4_000, 4)] {
            assert_eq!(store.get_stream(absent).expect("get"), None);
            assert_eq!(store.playlist(absent).expect("playlist"), None);
        }
        assert_eq!(store.due(i64::MAX, 10).expect("due"), vec![due.clone()]);
        assert_eq!(store.quality_queue(10).expect("quality queue"), quality_queue);
        assert_eq!(
            store.playlist(kept.key()).expect("playlist").as_deref(),
            Some("#EXTM3U\n")
        );
    };

    let generation = store.generation();
    let refused = attempt(&|_| Err(GaveUp::Refused));
    assert!(matches!(refused, Err(GaveUp::Refused)), "{refused:?}");
    assert_eq!(store.generation(), generation);
    unchanged();
    assert_eq!(
        store.scan(None, 10).expect("scan"),
        vec![due.clone(), kept.clone()]
    );
    assert_indexes_consistent(&store);

    // A store error inside the closure comes back as the caller's error, and writes nothing.
    put_raw(&store, STREAMS, (5_000, 5), &[9, 9]);
    let generation = store.generation();
    let failed = attempt(&|update| update.get_stream((5_000, 5)).map(drop).map_err(GaveUp::from));
    assert!(
        matches!(failed, Err(GaveUp::Store(StoreError::Corrupt { .. }))),
        "{failed:?}"
    );
    assert_eq!(store.generation(), generation);
    unchanged();
    store.apply(&[], &[(5_000, 5)]).expect("remove the bad record");
    assert_eq!(
        store.scan(None, 10).expect("scan"),
        vec![due.clone(), kept.clone()]
    );
    assert_indexes_consistent(&store);
}

#[test]
fn an_update_that_writes_nothing_commits_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let mut live = record(1_000, 1, 7);
    live.status = Status::Live;
    store.put_streams(std::slice::from_ref(&live)).expect("put");
    let generation = store.generation();
    // What the crawl does after a pass that ended nothing: read, then write empty lists.
    let seen = store
        .update(|update| {
            let live = update.live()?;
            update.apply(&[], &[])?;
            update.put_streams(&[])?;
            Ok::<_, StoreError>(live.len())
        })
        .expect("update");
    assert_eq!(seen, 1);
    assert_eq!(
        store.generation(),
        generation,
        "no commit, so kept answers stay valid"
    );
    store.apply(&[], &[]).expect("empty apply");
    store.put_streams(&[]).expect("empty put");
    assert_eq!(store.generation(), generation);
    assert_eq!(store.scan(None, 10).expect("scan"), vec![live]);
}

#[test]
fn read_modify_writes_on_two_threads_lose_no_change() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let mut counted = record(1_000, 1, 1);
    counted.max_viewers = 0;
    store.put_streams(std::slice::from_ref(&counted)).expect("put");
    let generation = store.generation();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..200 {
                    store
                        .update(|update| {
                            let mut record = update.get_stream(counted.key())?.expect("stored");
                            record.max_viewers += 1;
                            update.put_streams(&[record])
                        })
                        .expect("increment");
                }
            });
        }
    });
    let counted = store.get_stream(counted.key()).expect("get").expect("stored");
    assert_eq!(counted.max_viewers, 400);
    assert_eq!(store.generation(), generation + 400);
    assert_indexes_consistent(&store);
}

#[test]
fn a_compaction_journals_and_keeps_what_an_update_writes_while_it_copies() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let before: Vec<StreamRecord> = (0..50).map(|i| record(1_000 + i, 100 + i as u64, 1)).collect();
    store.put_streams(&before).expect("put");
    let written = record(5_000, 5, 5);
    let captured = archived(6_000, 6, 6);
    let gone = before[7].key();
    let mut updated = false;
    store
        .compact_online(&mut |_, _, _| {
            if !updated {
                updated = true;
                store
                    .update(|update| {
                        update.put_streams(std::slice::from_ref(&written))?;
                        update.put_archived(&captured, "#EXTM3U\n")?;
                        update.apply(&[], &[gone])
                    })
                    .expect("update while the copy runs");
                let writes = store.shared.writes.lock().expect("writes");
                let journal = writes.journal.as_ref().expect("journalling while the copy runs");
                for key in [written.key(), captured.key(), gone] {
                    assert!(journal.contains(&key), "{key:?} not in {journal:?}");
                }
            }
            true
        })
        .expect("compact");
    assert!(updated);
    assert!(store.shared.writes.lock().expect("writes").journal.is_none());
    // The copy in use now caught up with the update.
    assert_eq!(
        store.get_stream(written.key()).expect("get"),
        Some(written.clone())
    );
    assert_eq!(
        store.get_stream(captured.key()).expect("get"),
        Some(captured.clone())
    );
    assert_eq!(store.get_stream(gone).expect("get"), None);
    assert_eq!(
        store.playlist(captured.key()).expect("playlist").as_deref(),
        Some("#EXTM3U\n")
    );
    assert_eq!(
        store.quality_queue(10).expect("quality queue"),
        vec![captured.key()]
    );
    assert_eq!(store.count_streams().expect("count"), before.len() as u64 + 1);
    assert_indexes_consistent(&store);
}

#[test]
fn a_muted_capture_keeps_its_originals_listed_and_its_audio_watch_follows_the_record() {
    use crate::audio::OriginalAudio;
    use crate::segments::SegmentState;
    let dir = tempfile::tempdir().expect("dir");
    let store = open_in(&dir);
    let muted = archived(4_000, 4, 4);
    let key = muted.key();
    // Twitch's listing after a mute pass: the playlist is stored as captured, originals named.
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1-unmuted.ts\n";
    store
        .update(|tx| {
            tx.put_archived(&muted, text)?;
            tx.watch_original_audio(key, 5_000)
        })
        .expect("archive");
    assert_eq!(store.playlist(key).expect("read").as_deref(), Some(text));
    assert_eq!(
        store.original_audio(key).expect("read"),
        Some(OriginalAudio::watch(5_000))
    );
    assert_eq!(store.original_audio_due(4_999, 10).expect("due"), vec![]);
    assert_eq!(store.original_audio_due(5_000, 10).expect("due"), vec![key]);
    // Seen answering: due again later; a re-capture does not restart the watch.
    let seen = OriginalAudio::watch(5_000).concluded(SegmentState::Ok, 5_100, 600);
    assert!(
        store
            .update(|tx| tx.set_original_audio(key, &seen))
            .expect("store")
    );
    store
        .update(|tx| {
            tx.put_archived(&muted, text)?;
            tx.watch_original_audio(key, 9_000)
        })
        .expect("re-archive");
    assert_eq!(store.original_audio(key).expect("read"), Some(seen));
    assert_eq!(store.original_audio_due(5_699, 10).expect("due"), vec![]);
    assert_eq!(store.original_audio_due(5_700, 10).expect("due"), vec![key]);
    // Gone: nothing more is due.
    let gone = seen.concluded(SegmentState::Gone, 5_800, 600);
    assert!(
        store
            .update(|tx| tx.set_original_audio(key, &gone))
            .expect("store")
    );
    assert_eq!(store.original_audio_due(i64::MAX, 10).expect("due"), vec![]);
    assert_eq!(
        store.original_audios(&[key, (1, 1)]).expect("read"),
        vec![Some(gone), None]
    );
    // Not stored: nothing written; pruning takes the watch with it.
    assert!(
        !store
            .update(|tx| tx.set_original_audio((1, 1), &gone))
            .expect("absent")
    );
    store
        .update(|tx| tx.set_original_audio(key, &seen))
        .expect("store");
    store.apply(&[], &[key]).expect("delete");
    assert_eq!(store.original_audio(key).expect("read"), None);
    assert_eq!(store.original_audio_due(i64::MAX, 10).expect("due"), vec![]);
    assert_indexes_consistent(&store);
}
