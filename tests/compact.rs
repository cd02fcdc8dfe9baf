//! `vodprobe compact`: rewrites the database in place, refuses while `serve` holds it.

use crate::harness::Env;
use vodprobe::record::{Status, StreamRecord};
use vodprobe::store::Store;

fn records(count: u64) -> Vec<StreamRecord> {
    (0..count)
        .map(|i| StreamRecord {
            start_unix: 1_700_000_000 + i as i64 * 90,
            stream_id: 40_000_000_000 + (i * 7919) % 1_000,
            streamer_id: 10 + i % 13,
            login: format!("streamer{}", i % 13),
            title: format!("broadcast {i}"),
            game_id: ["509658", "21779"][i as usize % 2].to_string(),
            game_name: ["Just Chatting", "League of Legends"][i as usize % 2].to_string(),
            language: ["en", "de", "es"][i as usize % 3].to_string(),
            is_mature: false,
            max_viewers: (i * 104_729 % 5_000) as u32,
            first_seen: 1_700_000_000 + i as i64 * 90,
            last_seen: 1_700_000_000 + i as i64 * 90 + 3_600,
            ended_at: None,
            status: Status::NotFound,
            public: None,
            probe: Default::default(),
            archive: None,
        })
        .collect()
}

#[test]
fn compact_rewrites_the_database_and_refuses_while_it_is_open() {
    let env = Env::healthy(1);
    let run = env.run(&["compact"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no database"), "{run:?}");

    let path = env.path("data/vodprobe.redb");
    let written = records(400);
    let store = Store::open(&path, 4 << 20).expect("open");
    for record in &written {
        // One transaction each, as the daemon writes: a fragmented file.
        store.put_streams(std::slice::from_ref(record)).expect("put");
    }
    let run = env.run(&["compact"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("stop `vodprobe serve` first"), "{run:?}");
    store.close().expect("close");

    let on_disk = |path: &std::path::Path| {
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path).expect("file")) * 512
    };
    let before = on_disk(&path);
    let run = env.run(&["compact"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("compacted") && run.stdout.contains("400 records"),
        "{run:?}"
    );
    let after = on_disk(&path);
    assert!(after < before, "{before} -> {after} bytes");
    let store = Store::open(&path, 4 << 20).expect("reopen");
    assert_eq!(store.scan(None, 1_000).expect("scan"), {
        let mut sorted = written.clone();
        sorted.sort_by_key(StreamRecord::key);
        sorted
    });
}
