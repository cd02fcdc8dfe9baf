//! The API's queries against a real redb file, checked against a plain filter-and-sort of every
//! record: each filter, both orders, paging to the end with small and large pages and a small
//! examination allowance (short pages), without loss or duplicates.

use super::*;
use crate::record::Status;
use crate::store::tables::META;
use crate::store::tests::{open_in, record};
use crate::store::*;

/// A small deterministic generator (no test dependency needed for spread-out fields).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

const GAMES: [(&str, &str); 4] = [
    ("509658", "Just Chatting"),
    ("21779", "League of Legends"),
    ("32982", "Grand Theft Auto V"),
    ("", ""),
];
const LANGUAGES: [&str; 3] = ["en", "de", "ja"];
const STATUSES: [Status; 4] = [Status::Live, Status::Pending, Status::Found, Status::NotFound];

fn corpus(count: u64) -> Vec<StreamRecord> {
    let mut rng = Lcg(7);
    (0..count)
        .map(|n| {
            // Some start times repeat (restarts share the second), some stream ids repeat.
            let start = 1_700_000_000 + rng.next(count * 20) as i64;
            let stream_id = 40_000_000_000 + rng.next(count * 2);
            let streamer = 1 + rng.next(40);
            let mut record = record(start, stream_id, streamer);
            let (game_id, game_name) = GAMES[rng.next(4) as usize];
            record.game_id = game_id.to_string();
            record.game_name = game_name.to_string();
            record.language = LANGUAGES[rng.next(3) as usize].to_string();
            record.status = STATUSES[rng.next(4) as usize];
            record.public = [None, Some(true), Some(false)][rng.next(3) as usize];
            record.max_viewers = rng.next(300) as u32;
            if n % 50 == 0 {
                // Renamed later: the older broadcasts keep the old name.
                record.login = format!("Old{streamer}");
            }
            record
        })
        .collect()
}

fn expected(all: &[StreamRecord], filter: &VodFilter, sort: Sort) -> Vec<StreamKey> {
    let mut matching: Vec<&StreamRecord> = all.iter().filter(|record| filter.matches(record)).collect();
    match sort {
        Sort::Recent => matching.sort_by_key(|record| std::cmp::Reverse(record.key())),
        Sort::Views => matching.sort_by_key(|record| std::cmp::Reverse((record.max_viewers, record.key()))),
    }
    matching.iter().map(|record| record.key()).collect()
}

fn page_through(
    store: &Store,
    filter: &VodFilter,
    sort: Sort,
    limit: usize,
    max_examined: usize,
) -> Vec<StreamKey> {
    let mut keys = Vec::new();
    let mut after = None;
    for _ in 0..100_000 {
        let page = store
            .vods(filter, sort, after, limit, max_examined)
            .expect("query");
        assert!(page.items.len() <= limit);
        keys.extend(page.items.iter().map(StreamRecord::key));
        match page.next {
            Some(next) => after = Some(next),
            None => return keys,
        }
    }
    panic!("paging never ended");
}

fn stored_corpus(dir: &tempfile::TempDir, count: u64) -> (Store, Vec<StreamRecord>) {
    let store = open_in(dir);
    let mut unique = std::collections::BTreeMap::new();
    for record in corpus(count) {
        unique.insert(record.key(), record);
    }
    let all: Vec<StreamRecord> = unique.into_values().collect();
    store.put_streams(&all).expect("put");
    (store, all)
}

#[test]
fn every_filter_and_order_pages_to_the_end_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, all) = stored_corpus(&dir, 3000);
    let mid = all[all.len() / 2].start_unix;
    let filters = vec![
        VodFilter::default(),
        VodFilter {
            streamer_ids: Some(vec![3]),
            ..VodFilter::default()
        },
        VodFilter {
            streamer_ids: Some(vec![3, 17, 40]),
            since: Some(mid - 5000),
            ..VodFilter::default()
        },
        VodFilter {
            streamer_ids: Some(Vec::new()),
            ..VodFilter::default()
        },
        VodFilter {
            game_id: Some("21779".into()),
            ..VodFilter::default()
        },
        VodFilter {
            game_id: Some(String::new()),
            language: Some("de".into()),
            ..VodFilter::default()
        },
        VodFilter {
            language: Some("ja".into()),
            until: Some(mid),
            ..VodFilter::default()
        },
        VodFilter {
            status: Some(Status::Found),
            public: Some(false),
            ..VodFilter::default()
        },
        VodFilter {
            status: Some(Status::NotFound),
            since: Some(mid),
            until: Some(mid + 9000),
            ..VodFilter::default()
        },
        VodFilter {
            public: Some(true),
            ..VodFilter::default()
        },
        VodFilter {
            game_id: Some("no such game".into()),
            ..VodFilter::default()
        },
    ];
    for filter in &filters {
        for sort in [Sort::Recent, Sort::Views] {
            let want = expected(&all, filter, sort);
            for (limit, max_examined) in [(50, 10_000), (7, 20), (500, 500)] {
                let got = page_through(&store, filter, sort, limit, max_examined);
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{filter:?} {sort:?} limit {limit} examined {max_examined}"
                );
                assert_eq!(
                    got, want,
                    "{filter:?} {sort:?} limit {limit} examined {max_examined}"
                );
            }
        }
    }
}

#[test]
fn records_arriving_while_paging_never_duplicate_or_skip_older_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, all) = stored_corpus(&dir, 1000);
    let newest = all.iter().map(|record| record.start_unix).max().expect("some");
    let mut seen = Vec::new();
    let mut after = None;
    let mut next_id = 90_000_000_000;
    loop {
        let page = store
            .vods(&VodFilter::default(), Sort::Recent, after, 40, 10_000)
            .expect("query");
        seen.extend(page.items.iter().map(StreamRecord::key));
        // New broadcasts start after everything listed so far: they belong before the cursor.
        next_id += 1;
        store
            .put_streams(&[record(newest + 100 + next_id as i64 % 1000, next_id, 5)])
            .expect("put");
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let want: Vec<StreamKey> = expected(&all, &VodFilter::default(), Sort::Recent)
        .into_iter()
        .filter(|key| key.0 <= newest)
        .collect();
    let got: Vec<StreamKey> = seen.into_iter().filter(|key| key.0 <= newest).collect();
    assert_eq!(got, want);
}

#[test]
fn streamers_are_found_by_prefix_then_substring_and_renames_resolve_to_the_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_in(&dir);
    let mut records = Vec::new();
    for (n, (login, streamer)) in [
        ("xQc", 71),
        ("xqcow_fan", 72),
        ("the_xqc_clips", 73),
        ("OldName", 74),
        ("NewName", 74),
        ("NewName", 74),
        ("unrelated", 75),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = record(1_700_000_000 + n as i64 * 100, 500 + n as u64, streamer);
        record.login = login.to_string();
        records.push(record);
    }
    store.put_streams(&records).expect("put");
    let page = store.search_streamers("XQC", None, 10, 1000).expect("search");
    let found: Vec<(&str, u64)> = page
        .items
        .iter()
        .map(|found| (found.matched_login.as_str(), found.streamer_id))
        .collect();
    assert_eq!(found, [("xqc", 71), ("xqcow_fan", 72), ("the_xqc_clips", 73)]);
    assert_eq!(page.next, None);
    // One at a time: the cursor crosses from prefix to substring matches.
    let mut after = None;
    let mut one_by_one = Vec::new();
    loop {
        let page = store.search_streamers("xqc", after, 1, 1000).expect("search");
        one_by_one.extend(page.items.into_iter().map(|found| found.streamer_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(one_by_one, [71, 72, 73]);
    // The old name finds the streamer under its current name.
    let old = store.search_streamers("oldna", None, 10, 1000).expect("search");
    assert_eq!(old.items.len(), 1);
    let renamed = &old.items[0];
    assert_eq!(renamed.login, "NewName");
    assert_eq!(renamed.logins, ["newname", "oldname"]);
    assert_eq!(renamed.broadcasts, 3);
    assert_eq!(store.streamer_ids_for_login("OLDNAME").expect("ids"), [74]);
    assert_eq!(
        store.streamer_ids_for_login("nobody").expect("ids"),
        Vec::<u64>::new()
    );
    // A small examination allowance gives short pages that still reach every match.
    let mut after = None;
    let mut all = Vec::new();
    loop {
        let page = store.search_streamers("e", after, 50, 1).expect("search");
        all.extend(page.items.into_iter().map(|found| found.matched_login));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(all, ["newname", "oldname", "the_xqc_clips", "unrelated"]);
}

#[test]
fn counts_cover_the_broadcasts_since_the_cutoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, all) = stored_corpus(&dir, 500);
    let cutoff = all[all.len() / 3].start_unix;
    let counts = store.counts_since(cutoff).expect("counts");
    let recent: Vec<&StreamRecord> = all.iter().filter(|record| record.start_unix >= cutoff).collect();
    assert_eq!(counts.total, recent.len() as u64);
    let german = recent.iter().filter(|record| record.language == "de").count() as u64;
    assert!(counts.languages.contains(&("de".to_string(), german)));
    let lol = recent.iter().filter(|record| record.game_id == "21779").count() as u64;
    assert!(
        counts
            .games
            .contains(&("21779".into(), "League of Legends".into(), lol))
    );
    assert!(
        counts.games.windows(2).all(|pair| pair[0].2 >= pair[1].2),
        "most first"
    );
}

#[test]
fn records_with_a_status_in_a_range_are_changed_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, all) = stored_corpus(&dir, 800);
    let (since, until) = (all[100].start_unix, all[700].start_unix);
    let want: Vec<StreamKey> = all
        .iter()
        .filter(|record| record.status == Status::NotFound && (since..until).contains(&record.start_unix))
        .map(StreamRecord::key)
        .collect();
    let changed = store
        .modify_by_status(Status::NotFound, since, until, 7, &mut |record| {
            record.status = Status::Pending;
            record.probe.next_due = Some(1);
        })
        .expect("modify");
    assert_eq!(changed, want.len() as u64);
    let due: Vec<StreamKey> = store
        .due(1, 10_000)
        .expect("due")
        .iter()
        .map(StreamRecord::key)
        .collect();
    assert_eq!(due, want);
    crate::store::tests::assert_indexes_consistent(&store);
}

#[test]
fn a_schema_1_file_gets_its_query_indexes_built_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, all) = stored_corpus(&dir, 12_000);
    // Make it look like schema 1: no query indexes, version 1.
    store
        .write(|txn, _| {
            txn.delete_table(BY_GAME)?;
            txn.delete_table(BY_LANGUAGE)?;
            txn.delete_table(BY_STATUS)?;
            txn.delete_table(BY_VIEWS)?;
            txn.delete_table(LOGINS)?;
            txn.delete_table(NAMES)?;
            txn.open_table(META)?.insert(SCHEMA_VERSION_NAME, 1)?;
            Ok(())
        })
        .expect("downgrade");
    drop(store);
    let store = open_in(&dir);
    crate::store::tests::assert_indexes_consistent(&store);
    let filter = VodFilter {
        language: Some("en".into()),
        ..VodFilter::default()
    };
    assert_eq!(
        page_through(&store, &filter, Sort::Views, 100, 10_000),
        expected(&all, &filter, Sort::Views)
    );
    let version = store
        .read(|txn| Ok(txn.open_table(META)?.get(SCHEMA_VERSION_NAME)?.map(|v| v.value())))
        .expect("version");
    assert_eq!(version, Some(SCHEMA_VERSION));
}
