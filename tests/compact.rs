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

#[test]
fn serve_compacts_on_schedule_while_it_captures_and_answers() {
    use crate::api::get;
    use crate::reload::metric;
    use crate::serve::{FAST, World, now, stream};
    use std::time::{Duration, Instant};
    use vodprobe_sim::{Broadcast, DomainSpec};
    // A compaction every second whatever the waste, while broadcasts come and go.
    let mut world = World::configured(
        (0..3).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        "kind = \"gql\"",
        "health = \"0 0 * * * *\"\ncompact = \"* * * * * *\"",
        "requests_per_second = 200\ncompact_waste = 0.0",
    );
    let start = now() - 600;
    let waves: Vec<Vec<u64>> = (0..4)
        .map(|w| (0..10).map(|i| 7_000 + w * 10 + i).collect())
        .collect();
    let live = |ids: &[u64]| {
        ids.iter()
            .map(|&id| stream(id, id, &format!("c{id}"), start, 50))
            .collect::<Vec<_>>()
    };
    for &id in waves.iter().flatten() {
        world
            .cdn
            .add_broadcast(Broadcast::new(&format!("c{id}"), id, &start.to_string(), vec![1]));
    }
    world
        .listing
        .set_streams(live(&waves.iter().flatten().copied().collect::<Vec<_>>()));
    world.start(&[]);
    let base = world.api_url();
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let done = |base: &str| metric(base, "vodprobe_compactions_total{result=\"done\"}");
    // Each wave ends in turn; the API is asked throughout.
    let mut answered = 0;
    for ended in 1..=waves.len() {
        let still: Vec<u64> = waves[ended..].iter().flatten().copied().collect();
        world.listing.set_streams(live(&still));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = get(&format!("{base}/api/v1/vods?status=found&limit=100"));
            assert_eq!(page.status, 200, "{}", page.text());
            answered += 1;
            let found = page.json()["items"].as_array().map_or(0, Vec::len);
            if found >= ended * 10 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "wave {ended}: {found} found: {}",
                world.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    world.wait_until("three compactions", 20, |_| done(&base) >= 3.0);
    assert!(world.log().contains("database compacted"), "{}", world.log());
    world.stop();
    assert!(answered > 0);
    let records = world.records();
    assert_eq!(records.len(), 40, "{records:?}");
    for record in &records {
        assert_eq!(record.status, Status::Found, "{record:?}");
        assert!(
            world
                .playlist(record)
                .is_some_and(|text| text.starts_with("#EXTM3U"))
        );
    }
    let data = world.database().parent().expect("dir").to_path_buf();
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .expect("data dir")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name != "vodprobe.redb")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
