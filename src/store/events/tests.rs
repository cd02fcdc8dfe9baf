use super::*;
use crate::record::{Status, StreamRecord};
use crate::segments::{SegmentState, SegmentStatus};
use crate::store::tests::{archive_info, open_in, record};

fn kinds(page: &EventPage) -> Vec<(u64, &'static str)> {
    page.events
        .iter()
        .map(|(seq, event)| (*seq, event.kind.as_str()))
        .collect()
}

fn all(store: &Store) -> EventPage {
    let filter = EventFilter {
        ascending: true,
        ..EventFilter::default()
    };
    store.events(&filter, 1_000).expect("events")
}

#[test]
fn events_are_written_once_in_order_survive_a_reopen_and_go_with_their_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_in(&dir);
    let mut live = record(1_000, 1, 10);
    live.status = Status::Live;
    store.put_streams(&[live.clone()]).expect("live");
    // Seen again: no new event.
    live.last_seen += 60;
    store.put_streams(&[live.clone()]).expect("seen again");
    let mut ended = live.clone();
    ended.status = Status::Pending;
    ended.ended_at = Some(2_000);
    store.put_streams(&[ended.clone()]).expect("ended");
    let mut found = ended.clone();
    found.status = Status::Found;
    found.archive = Some(archive_info("http://a.test/"));
    store.put_archived(&found, "#EXTM3U\n").expect("captured");
    store.put_archived(&found, "#EXTM3U\n").expect("captured again");
    let partial = SegmentStatus::unchecked(3_000).concluded(SegmentState::Partial, found.start_unix, 3_100);
    let gone = SegmentStatus::unchecked(3_000).concluded(SegmentState::Gone, found.start_unix, 3_200);
    store
        .update(|update| {
            update.set_segment_status(found.key(), &partial)?;
            update.set_segment_status(found.key(), &gone)?;
            update.set_segment_status(found.key(), &gone)
        })
        .expect("segments");
    // The streamer's next broadcast under a new login.
    let mut renamed = record(5_000, 2, 10);
    renamed.login = "newname".into();
    store.put_streams(&[renamed]).expect("renamed");
    let expected = vec![
        (1, "live"),
        (2, "ended"),
        (3, "captured"),
        (4, "segments_partial"),
        (5, "segments_gone"),
        (6, "renamed"),
    ];
    assert_eq!(kinds(&all(&store)), expected);
    assert_eq!(all(&store).events[5].1.detail, "streamer10 → newname");
    drop(store);
    let store = open_in(&dir);
    assert_eq!(kinds(&all(&store)), expected);
    // Pruned with the record; numbers are never reused.
    assert_eq!(store.prune(2_000, 10).expect("prune"), 1);
    assert_eq!(kinds(&all(&store)), [(6, "renamed")]);
    let mut third = record(9_000, 3, 11);
    third.status = Status::Live;
    store.put_streams(&[third]).expect("third");
    assert_eq!(kinds(&all(&store)), [(6, "renamed"), (7, "live")]);
    let written = store.events_written().expect("written");
    assert!(written.contains(&(EventKind::Live, 2)) && written.contains(&(EventKind::Deleted, 0)));
}

#[test]
fn pages_follow_cursors_both_ways_and_filters_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_in(&dir);
    for n in 0..5u64 {
        let mut live = record(1_000 + n as i64, n, 10 + n % 2);
        live.status = Status::Live;
        store.put_streams(&[live]).expect("live");
    }
    let mut seen = Vec::new();
    let mut filter = EventFilter::default();
    loop {
        let page = store.events(&filter, 2).expect("page");
        seen.extend(page.events.iter().map(|(seq, _)| *seq));
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
    let filter = EventFilter {
        streamers: Some(vec![11]),
        ascending: true,
        after: Some(1),
        ..EventFilter::default()
    };
    let page = store.events(&filter, 10).expect("filtered");
    assert_eq!(kinds(&page), [(2, "live"), (4, "live")]);
    let none = EventFilter {
        kinds: vec![EventKind::Deleted],
        ..EventFilter::default()
    };
    assert!(store.events(&none, 10).expect("kinds").events.is_empty());
    assert_eq!(store.count_events().expect("count"), 5);
}

#[test]
fn online_compaction_keeps_every_event_and_those_written_while_it_copies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_in(&dir);
    let live = |n: u64| {
        let mut record = record(1_000 + n as i64, n, 100 + n);
        record.status = Status::Live;
        record
    };
    let before: Vec<StreamRecord> = (0..20).map(live).collect();
    store.put_streams(&before).expect("live");
    let mut written = 20;
    store
        .compact_online(&mut |_, _, _| {
            // Each step: one more broadcast goes live and an earlier one ends.
            let mut ended = live(written - 20);
            ended.status = Status::Pending;
            ended.ended_at = Some(5_000);
            store.put_streams(&[live(written), ended]).expect("during");
            written += 1;
            true
        })
        .expect("compact");
    let page = all(&store);
    let seqs: Vec<u64> = page.events.iter().map(|(seq, _)| *seq).collect();
    let steps = written - 20;
    assert_eq!(seqs, (1..=20 + 2 * steps).collect::<Vec<_>>());
    store.close().expect("close");
    let reopened = open_in(&dir);
    assert_eq!(all(&reopened), page);
    // Numbering goes on after the copy.
    reopened.put_streams(&[live(999)]).expect("after");
    assert_eq!(
        all(&reopened).events.last().map(|(seq, _)| *seq),
        Some(21 + 2 * steps)
    );
}

#[test]
fn a_capture_no_longer_public_makes_its_event_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_in(&dir);
    let mut found = record(1_000, 1, 10);
    found.status = Status::Found;
    found.public = Some(true);
    found.archive = Some(archive_info("http://a.test/"));
    let mut unknown = record(2_000, 2, 10);
    unknown.status = Status::Found;
    unknown.archive = Some(archive_info("http://a.test/"));
    store
        .put_streams(&[found.clone(), unknown.clone()])
        .expect("captures");
    let before = all(&store).events.len();
    let changed = store
        .update(|update| {
            Ok::<_, StoreError>([
                update.set_not_public(found.key(), EventKind::Deleted, "gone", 3_000)?,
                update.set_not_public(found.key(), EventKind::Deleted, "gone", 3_001)?,
                // Never seen public: nothing to say.
                update.set_not_public(unknown.key(), EventKind::SubOnly, "", 3_000)?,
                update.set_not_public((9, 9), EventKind::SubOnly, "", 3_000)?,
            ])
        })
        .expect("update");
    assert_eq!(changed, [true, false, false, false]);
    let page = all(&store);
    let added: Vec<_> = page.events[before..]
        .iter()
        .map(|(_, event)| event.clone())
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(
        (added[0].kind, added[0].at, added[0].detail.as_str()),
        (EventKind::Deleted, 3_000, "gone")
    );
    let stored = store.get_stream(found.key()).expect("read").expect("kept");
    assert_eq!(stored.public, Some(false));
}
