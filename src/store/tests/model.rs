//! The store checked against a model, in the spirit of redb's own fuzzer and crash tests, at
//! small scale:
//!
//! * the model test applies a deterministic pseudo-random sequence of writes, prunes and
//!   reopens both to a `Store` and to a plain `BTreeMap`, and compares every query after every
//!   step;
//! * the crash test runs a writer in a child process (this test binary, re-run with an
//!   environment variable), kills it with SIGKILL at an arbitrary moment and checks that every
//!   batch it reported as committed is whole, that at most one unreported batch landed, and
//!   that the indexes still agree with the records.

use super::{TEST_CACHE_BYTES, archive_info, assert_indexes_consistent, record};
use crate::record::Status;
use crate::store::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, dependency-free, good enough to pick operations.
struct Xorshift64Star(u64);

impl Xorshift64Star {
    fn new(seed: u64) -> Xorshift64Star {
        Xorshift64Star(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low) as u64) as i64
    }
}

const STATUSES: [Status; 4] = [Status::Live, Status::Pending, Status::Found, Status::NotFound];

/// A record from a small key space (8 starts × 4 ids, so ids are shared across starts and
/// writes collide) with random indexed fields.
fn random_record(rng: &mut Xorshift64Star) -> StreamRecord {
    let mut record = record(1000 + 100 * rng.range(0, 8), 1 + rng.below(4), 1 + rng.below(3));
    record.status = STATUSES[rng.below(4) as usize];
    record.last_seen = rng.range(0, 10_000);
    record.max_viewers = rng.below(1000) as u32;
    record.probe.next_due = if rng.below(4) == 0 {
        None
    } else {
        Some(rng.range(0, 100))
    };
    record.probe.misses = rng.below(5) as u32;
    record
}

#[derive(Default)]
struct Model {
    records: BTreeMap<StreamKey, StreamRecord>,
    playlists: BTreeMap<StreamKey, String>,
}

impl Model {
    fn due(&self, now: i64, limit: usize) -> Vec<StreamRecord> {
        let mut due: Vec<&StreamRecord> = self
            .records
            .values()
            .filter(|r| r.probe.next_due.is_some_and(|t| t <= now))
            .collect();
        due.sort_by_key(|r| (r.probe.next_due, r.key()));
        due.into_iter().take(limit).cloned().collect()
    }

    fn matching(&self, keep: impl Fn(&StreamRecord) -> bool) -> Vec<StreamRecord> {
        self.records.values().filter(|r| keep(r)).cloned().collect()
    }
}

fn check_against_model(store: &Store, model: &Model, rng: &mut Xorshift64Star, context: &str, step: usize) {
    let all: Vec<StreamRecord> = model.records.values().cloned().collect();
    assert_eq!(
        store.scan(None, usize::MAX).expect("scan"),
        all,
        "{context}: scan"
    );
    assert_eq!(
        store.count_streams().expect("count"),
        all.len() as u64,
        "{context}: count"
    );
    if let Some(after) = all.get(rng.below(all.len() as u64 + 1) as usize) {
        let page: Vec<StreamRecord> = model
            .records
            .range((Bound::Excluded(after.key()), Bound::Unbounded))
            .map(|(_, r)| r.clone())
            .take(3)
            .collect();
        assert_eq!(
            store.scan(Some(after.key()), 3).expect("scan page"),
            page,
            "{context}: page"
        );
    }
    let now = rng.range(-5, 105);
    let limit = 1 + rng.below(12) as usize;
    assert_eq!(
        store.due(now, limit).expect("due"),
        model.due(now, limit),
        "{context}: due({now}, {limit})"
    );
    let queued = model.matching(|r| r.probe.next_due.is_some());
    assert_eq!(
        store.queue_len().expect("queue"),
        queued.len() as u64,
        "{context}: queue_len"
    );
    let next = queued.iter().filter_map(|r| r.probe.next_due).min();
    assert_eq!(
        store.next_due_time().expect("next due"),
        next,
        "{context}: next_due_time"
    );
    let id = 1 + rng.below(4);
    let expected = model.matching(|r| r.stream_id == id);
    assert_eq!(
        store.by_stream_id(id).expect("by id"),
        expected,
        "{context}: by_stream_id({id})"
    );
    assert_eq!(
        store.live().expect("live"),
        model.matching(|r| r.status == Status::Live),
        "{context}: live"
    );
    let streamer = 1 + rng.below(3);
    let before = if rng.below(2) == 0 {
        None
    } else {
        Some(1000 + 100 * rng.range(0, 9))
    };
    let expected = model
        .records
        .values()
        .rfind(|r| r.streamer_id == streamer && before.is_none_or(|b| r.start_unix < b))
        .cloned();
    let latest = store.latest_of_streamer(streamer, before).expect("latest");
    assert_eq!(
        latest, expected,
        "{context}: latest_of_streamer({streamer}, {before:?})"
    );
    let key = (1000 + 100 * rng.range(0, 8), 1 + rng.below(4));
    assert_eq!(
        store.playlist(key).expect("playlist"),
        model.playlists.get(&key).cloned(),
        "{context}"
    );
    assert_eq!(
        store.get_stream(key).expect("get"),
        model.records.get(&key).cloned(),
        "{context}"
    );
    // The queries above go through every index; the full rebuild also catches stale entries
    // no query happened to touch.
    if step % 8 == 7 {
        assert_indexes_consistent(store);
    }
}

fn run_model(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vodprobe.redb");
    let mut store = Store::open(&path, TEST_CACHE_BYTES).expect("open");
    let mut model = Model::default();
    let mut rng = Xorshift64Star::new(seed);
    for step in 0..steps {
        match rng.below(100) {
            0..=44 => {
                let batch: Vec<StreamRecord> =
                    (0..1 + rng.below(4)).map(|_| random_record(&mut rng)).collect();
                store.put_streams(&batch).expect("put_streams");
                model.records.extend(batch.into_iter().map(|r| (r.key(), r)));
            }
            45..=54 => {
                let write: Vec<StreamRecord> = (0..rng.below(3)).map(|_| random_record(&mut rng)).collect();
                let delete: Vec<StreamKey> = (0..1 + rng.below(3))
                    .map(|_| random_record(&mut rng).key())
                    .collect();
                store.apply(&write, &delete).expect("apply");
                for key in &delete {
                    model.records.remove(key);
                    model.playlists.remove(key);
                }
                model.records.extend(write.into_iter().map(|r| (r.key(), r)));
            }
            55..=74 => {
                let mut archived = random_record(&mut rng);
                archived.archive = Some(archive_info("https://example.net"));
                let text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n{}\n", rng.next());
                store.put_archived(&archived, &text).expect("put_archived");
                model.playlists.insert(archived.key(), text);
                model.records.insert(archived.key(), archived);
            }
            75..=84 => {
                let cutoff = 1000 + 100 * rng.range(-1, 4);
                let batch = rng.below(4) as usize;
                let expected = model.records.range(..(cutoff, 0)).count() as u64;
                assert_eq!(
                    store.prune(cutoff, batch).expect("prune"),
                    expected,
                    "seed {seed} step {step}"
                );
                model.records.retain(|key, _| key.0 >= cutoff);
                model.playlists.retain(|key, _| key.0 >= cutoff);
            }
            85..=87 => store = store.reopen().expect("reopen"),
            88..=90 => {
                store.close().expect("close");
                store = Store::open(&path, TEST_CACHE_BYTES).expect("open again");
            }
            _ => {
                let name = format!("state{}", rng.below(3));
                let value = rng.next().to_le_bytes();
                store.put_state(&name, &value).expect("put_state");
                assert_eq!(store.get_state(&name).expect("get_state"), Some(value.to_vec()));
            }
        }
        check_against_model(
            &store,
            &model,
            &mut rng,
            &format!("seed {seed} step {step}"),
            step,
        );
    }
    assert_indexes_consistent(&store);
}

#[test]
fn store_agrees_with_a_btreemap_model() {
    for seed in [1, 2, 3, 0xDEAD_BEEF] {
        run_model(seed, 375);
    }
}

const CRASH_WRITER_ENV: &str = "VODPROBE_STORE_CRASH_WRITER";
const CRASH_BATCH_RECORDS: u64 = 6;
const CRASH_WRITER_TIME_LIMIT: Duration = Duration::from_secs(30);

/// The records batch `n` writes: its own records fresh, and its predecessor's rewritten.
fn crash_batch(n: u64) -> Vec<StreamRecord> {
    let fresh = (0..CRASH_BATCH_RECORDS).map(|i| crash_record(n, i, false));
    let rewritten = (0..CRASH_BATCH_RECORDS)
        .filter(|_| n > 1)
        .map(|i| crash_record(n - 1, i, true));
    fresh.chain(rewritten).collect()
}

fn crash_record(n: u64, i: u64, rewritten: bool) -> StreamRecord {
    let mut r = record(n as i64 * 100 + i as i64, n * 10 + i, n % 5);
    if rewritten {
        r.status = Status::Found;
        r.probe.next_due = None;
        r.archive = Some(archive_info("https://example.net"));
    } else {
        r.status = if i % 2 == 0 { Status::Live } else { Status::Pending };
        r.probe.next_due = Some(n as i64 * 7 + i as i64);
    }
    r
}

/// The child: commits batch after batch and prints each number once its commit returned.
fn run_crash_writer(path: &Path) {
    let store = Store::open(path, TEST_CACHE_BYTES).expect("writer opens");
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    for n in 1.. {
        store.put_streams(&crash_batch(n)).expect("writer commits");
        let line = format!("\ncommitted {n}\n");
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .expect("report");
        if started.elapsed() > CRASH_WRITER_TIME_LIMIT {
            break;
        }
    }
}

fn committed_batch(line: &str) -> Option<u64> {
    line.trim().strip_prefix("committed ")?.parse().ok()
}

#[test]
fn crash_consistency() {
    if let Ok(path) = std::env::var(CRASH_WRITER_ENV) {
        run_crash_writer(Path::new(&path));
        return;
    }
    let test_name = module_path!()
        .split_once("::")
        .expect("crate::module")
        .1
        .to_string()
        + "::crash_consistency";
    let mut rng = Xorshift64Star::new(7);
    for round in 0..10 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vodprobe.redb");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([test_name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let kill_after = 1 + rng.below(40);
        let mut reported = 0;
        for line in lines.by_ref() {
            if let Some(n) = committed_batch(&line.expect("read writer output")) {
                reported = n;
                if n >= kill_after {
                    break;
                }
            }
        }
        // A debug-build commit takes several milliseconds: land anywhere inside the next one.
        std::thread::sleep(Duration::from_micros(rng.below(12_000)));
        child.kill().expect("kill writer");
        for line in lines {
            if let Some(n) = line.ok().as_deref().and_then(committed_batch) {
                reported = n;
            }
        }
        let status = child.wait().expect("reap writer");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert!(
            reported >= kill_after,
            "round {round}: writer stopped early ({status}): {stderr}"
        );
        check_after_crash(&path, reported, round);
    }
}

/// Every reported batch is whole; the one after it landed whole or not at all, and no later one.
fn check_after_crash(path: &Path, reported: u64, round: usize) {
    let store = Store::open(path, TEST_CACHE_BYTES).expect("the file opens cleanly after a kill");
    let present = |n: u64| {
        store
            .get_stream(crash_record(n, 0, false).key())
            .expect("get")
            .is_some()
    };
    let last = if present(reported + 1) {
        reported + 1
    } else {
        reported
    };
    for n in 1..=last {
        let keys: Vec<StreamKey> = (0..CRASH_BATCH_RECORDS)
            .map(|i| crash_record(n, i, false).key())
            .collect();
        let stored = store.get_streams(&keys).expect("get batch");
        for (i, stored) in (0..).zip(stored) {
            let expected = crash_record(n, i, n < last);
            assert_eq!(
                stored,
                Some(expected),
                "round {round}: batch {n} of {last} (reported {reported})"
            );
        }
    }
    let expected_count = last * CRASH_BATCH_RECORDS;
    assert_eq!(
        store.count_streams().expect("count"),
        expected_count,
        "round {round}: later batches"
    );
    assert_eq!(
        store.queue_len().expect("queue"),
        CRASH_BATCH_RECORDS,
        "round {round}: queue"
    );
    assert_eq!(
        store.live().expect("live").len() as u64,
        CRASH_BATCH_RECORDS / 2,
        "round {round}: live"
    );
    assert_indexes_consistent(&store);
    store
        .put_streams(&crash_batch(last + 1))
        .expect("the file takes writes after a kill");
    assert_indexes_consistent(&store);
}
