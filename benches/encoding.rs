//! Bytes per archived broadcast: `cargo bench --bench encoding` (a few minutes).
//!
//! Over a corpus of playlists shaped like real broadcasts (`common/corpus.rs`: lengths from 10
//! minutes to 12 hours, a fifth with a muted range) prints bytes per playlist for raw text,
//! gzip (level 6), zstd -3, zstd -3 with a dictionary trained on other playlists of the corpus,
//! and the structural encoding the store uses; encode and decode throughput; the same for the
//! records' metadata (postcard and the compact encoding, each with zstd and a trained
//! dictionary); then writes
//! 1,000,000 archived broadcasts with their metadata into a real store and prints its size on
//! disk, table by table.

#[path = "common/corpus.rs"]
mod corpus;

use corpus::{RECORDS, SEED, SegmentLines, broadcast, channels};
use std::io::Write as _;
use std::time::Instant;
use vodprobe::packed;
use vodprobe::record::StreamRecord;
use vodprobe::store::{Store, compact_file};
use vodprobe_sim::Rng;

const SAMPLE: usize = 20_000;
const TRAINING: usize = 2_000;
const DICTIONARY_BYTES: usize = 16 * 1024;
const STORE_BROADCASTS: u64 = 1_000_000;
const BATCH: usize = 5_000;

fn gzip(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip").len()
}

struct Sizes {
    name: &'static str,
    bytes: Vec<usize>,
}

impl Sizes {
    fn new(name: &'static str) -> Sizes {
        Sizes {
            name,
            bytes: Vec::new(),
        }
    }

    fn print(&mut self) {
        self.bytes.sort_unstable();
        let n = self.bytes.len();
        let mean = self.bytes.iter().sum::<usize>() as f64 / n as f64;
        println!(
            "  {:<28} median {:>7}  mean {:>9.1}  p99 {:>7}  max {:>7}",
            self.name,
            self.bytes[n / 2],
            mean,
            self.bytes[n * 99 / 100],
            self.bytes[n - 1]
        );
    }
}

/// The corpus: `SAMPLE` found broadcasts spread over the generated population.
fn corpus() -> Vec<(StreamRecord, String)> {
    let channels = channels();
    let lines = SegmentLines::new(4_400);
    let mut rng = Rng::new(SEED ^ 0xB40A_DCA5);
    let mut out = Vec::with_capacity(SAMPLE);
    let mut i = 0;
    while out.len() < SAMPLE {
        if let (record, Some(spec)) = broadcast(i * (RECORDS / SAMPLE as u64 / 2), &channels, &mut rng) {
            out.push((record, lines.playlist(&spec)));
        }
        i += 1;
    }
    out
}

fn throughput(label: &str, count: usize, text_bytes: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {label:<28} {:>9.0} playlists/s  {:>7.0} MB/s of text",
        count as f64 / seconds,
        text_bytes as f64 / seconds / 1e6
    );
}

fn main() {
    let corpus = corpus();
    let text_bytes: usize = corpus.iter().map(|(_, text)| text.len()).sum();
    let muted = corpus
        .iter()
        .filter(|(r, _)| r.archive.as_ref().is_some_and(|a| a.muted_segments > 0))
        .count();
    println!(
        "playlists: {SAMPLE} from the generated archive ({muted} with a muted range), {:.1} MB of text",
        text_bytes as f64 / 1e6
    );
    let samples: Vec<&[u8]> = corpus
        .iter()
        .skip(SAMPLE - TRAINING)
        .map(|(_, t)| t.as_bytes())
        .collect();
    let dictionary = zstd::dict::from_samples(&samples, DICTIONARY_BYTES).expect("train a dictionary");
    let mut compressor = zstd::bulk::Compressor::with_dictionary(3, &dictionary).expect("compressor");
    let mut raw = Sizes::new("raw text");
    let mut gz = Sizes::new("gzip -6");
    let mut zs = Sizes::new("zstd -3");
    let mut zd = Sizes::new("zstd -3 + 16 KiB dictionary");
    let mut st = Sizes::new("structural (as stored)");
    // The dictionary is trained on the last TRAINING playlists and measured on the others.
    for (_, text) in corpus.iter().take(SAMPLE - TRAINING) {
        let bytes = text.as_bytes();
        raw.bytes.push(bytes.len());
        gz.bytes.push(gzip(bytes));
        zs.bytes.push(zstd::bulk::compress(bytes, 3).expect("zstd").len());
        zd.bytes
            .push(compressor.compress(bytes).expect("zstd dict").len());
        // One tag byte, as the store writes it.
        st.bytes.push(1 + packed::pack(text).len());
    }
    println!("bytes per playlist ({} playlists):", SAMPLE - TRAINING);
    for sizes in [&mut raw, &mut gz, &mut zs, &mut zd, &mut st] {
        sizes.print();
    }

    println!("throughput (one core):");
    let started = Instant::now();
    let zstd_values: Vec<Vec<u8>> = corpus
        .iter()
        .map(|(_, t)| zstd::bulk::compress(t.as_bytes(), 3).expect("zstd"))
        .collect();
    throughput("zstd -3 encode", SAMPLE, text_bytes, started);
    let started = Instant::now();
    for (value, (_, text)) in zstd_values.iter().zip(&corpus) {
        let back = zstd::bulk::decompress(value, text.len()).expect("unzstd");
        assert_eq!(back.len(), text.len());
    }
    throughput("zstd -3 decode", SAMPLE, text_bytes, started);
    let started = Instant::now();
    let packed_values: Vec<Vec<u8>> = corpus.iter().map(|(_, t)| packed::pack(t)).collect();
    throughput("structural encode", SAMPLE, text_bytes, started);
    let started = Instant::now();
    for (value, (_, text)) in packed_values.iter().zip(&corpus) {
        let back = packed::unpack(value, 1 << 24).expect("unpack");
        assert_eq!(back.len(), text.len());
    }
    throughput("structural decode", SAMPLE, text_bytes, started);
    let exact = packed_values
        .iter()
        .zip(&corpus)
        .all(|(value, (_, text))| packed::unpack(value, 1 << 24).is_ok_and(|back| &back == text));
    println!("  every structural value decodes to its exact text: {exact}");

    let postcard_records: Vec<Vec<u8>> = corpus
        .iter()
        .map(|(r, _)| postcard::to_allocvec(r).expect("postcard"))
        .collect();
    let compact_records: Vec<Vec<u8>> = corpus
        .iter()
        .map(|(r, _)| packed::record::pack_record(r))
        .collect();
    let exact = corpus.iter().zip(&compact_records).all(|((r, _), bytes)| {
        packed::record::unpack_record(r.key(), bytes, packed::record::Layout::Coded)
            .is_ok_and(|back| back == *r)
    });
    println!("bytes per record's metadata (every compact record decodes to the same record: {exact}):");
    for (name, records) in [("postcard", &postcard_records), ("compact", &compact_records)] {
        let samples: Vec<&[u8]> = records
            .iter()
            .skip(SAMPLE - TRAINING)
            .map(Vec::as_slice)
            .collect();
        let dictionary = zstd::dict::from_samples(&samples, DICTIONARY_BYTES).expect("train");
        let mut compressor = zstd::bulk::Compressor::with_dictionary(3, &dictionary).expect("compressor");
        let compact = name == "compact";
        let mut plain = Sizes::new(if compact {
            "compact (as stored)"
        } else {
            "postcard (tag 1)"
        });
        let mut zr = Sizes::new(if compact {
            "compact + zstd -3"
        } else {
            "postcard + zstd -3"
        });
        let mut zrd = Sizes::new(if compact {
            "compact + zstd -3 + dictionary"
        } else {
            "postcard + zstd -3 + dictionary"
        });
        for record in records.iter().take(SAMPLE - TRAINING) {
            // One tag byte, as the store writes it.
            plain.bytes.push(1 + record.len());
            zr.bytes
                .push(1 + zstd::bulk::compress(record, 3).expect("zstd").len());
            zrd.bytes
                .push(1 + compressor.compress(record).expect("zstd").len());
        }
        for sizes in [&mut plain, &mut zr, &mut zrd] {
            sizes.print();
        }
    }
    let started = Instant::now();
    for ((record, _), bytes) in corpus.iter().zip(&compact_records) {
        let back = packed::record::unpack_record(record.key(), bytes, packed::record::Layout::Coded)
            .expect("unpack");
        assert_eq!(back.stream_id, record.stream_id);
    }
    println!(
        "  compact record decode: {:.0} records/s",
        SAMPLE as f64 / started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    for ((record, _), bytes) in corpus.iter().zip(&postcard_records) {
        let back: StreamRecord = postcard::from_bytes(bytes).expect("postcard");
        assert_eq!(back.stream_id, record.stream_id);
    }
    println!(
        "  postcard record decode: {:.0} records/s",
        SAMPLE as f64 / started.elapsed().as_secs_f64()
    );

    store_size();
}

/// Writes `STORE_BROADCASTS` archived broadcasts with their metadata into a real store.
fn store_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vodprobe.redb");
    let store = Store::open(&path, 64 << 20).expect("store");
    let channels = channels();
    let lines = SegmentLines::new(4_400);
    let mut rng = Rng::new(SEED ^ 0x5709_E512);
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(STORE_BROADCASTS);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "writing {bar:40} {pos}/{len} archived broadcasts ({eta} left)",
        )
        .expect("template"),
    );
    let mut written = 0u64;
    let mut i = 0u64;
    while written < STORE_BROADCASTS {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH && written + (batch.len() as u64) < STORE_BROADCASTS {
            // The population's start times spread over 60 days; only archived ones are kept.
            if let (record, Some(spec)) = broadcast(i % RECORDS, &channels, &mut rng) {
                let mut record = record;
                record.stream_id += (i / RECORDS) * 7;
                batch.push((record, lines.playlist(&spec)));
            }
            i += 1;
        }
        store.put_archived_many(&batch).expect("write");
        written += batch.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "store: {STORE_BROADCASTS} archived broadcasts written in {seconds:.0} s, as the daemon writes them"
    );
    print_store(&store);
    compact_while_writing(&store);
    print_store(&store);
    store.close().expect("close");
    let started = Instant::now();
    let done = compact_file(&path, 64 << 20, &mut |_, _, _| {}).expect("compact");
    println!(
        "`vodprobe compact` (offline) of that file again: {:.0} s, {} -> {} bytes on disk",
        started.elapsed().as_secs_f64(),
        done.bytes_before,
        done.bytes_after
    );
}

/// What `serve` does on its `schedule.compact`: an online compaction, here while another
/// thread writes as a busy appliance would (a new live stream and an update of an archived
/// broadcast, 50 transactions per second), timing every write.
fn compact_while_writing(store: &Store) {
    let before = store.occupancy().expect("occupancy");
    let sample = store.scan(None, 10_000).expect("scan");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (done, latencies) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut record = sample[n as usize % sample.len()].clone();
                let began = Instant::now();
                if n % 2 == 0 {
                    record.stream_id += 1_000_000_000_000 + n;
                    record.status = vodprobe::record::Status::Live;
                    record.archive = None;
                } else {
                    record.max_viewers += 1;
                }
                store.put_streams(&[record]).expect("write during compaction");
                latencies.push(began.elapsed());
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            latencies
        });
        let done = store
            .compact_online(&mut |_, _, _| true)
            .expect("online compaction");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (done, writer.join().expect("writer"))
    });
    let mut sorted = latencies.clone();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "online compaction (what `serve` runs on schedule.compact) at {:.1}% unused: {:.0} s; \
         {} writes meanwhile (latency p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms), {} broadcasts \
         copied again, writers held back {} ms; {:.1} -> {:.1} MiB on disk",
        before.waste() * 100.0,
        started.elapsed().as_secs_f64(),
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        done.caught_up,
        done.writes_paused.as_millis(),
        done.bytes_before as f64 / 1_048_576.0,
        done.bytes_after as f64 / 1_048_576.0
    );
    let after = store.occupancy().expect("occupancy");
    println!("  unused share after: {:.1}%", after.waste() * 100.0);
}

/// The file's size and each table's share of it.
fn print_store(store: &Store) {
    let tables = store.table_sizes().expect("table sizes");
    let file = store.file_size();
    println!(
        "  on disk {:.1} MiB = {:.0} bytes per broadcast (file length {:.1} MiB: redb doubles a file ahead of need, unwritten)",
        file as f64 / 1_048_576.0,
        file as f64 / STORE_BROADCASTS as f64,
        store.file_length() as f64 / 1_048_576.0
    );
    println!(
        "  {:<18} {:>10} {:>14} {:>14} {:>14} {:>10}",
        "table", "entries", "stored B", "metadata B", "fragmented B", "B/bcast"
    );
    let mut total = 0;
    for table in tables.iter().filter(|t| t.entries > 0) {
        let all = table.stored_bytes + table.metadata_bytes + table.fragmented_bytes;
        total += all;
        println!(
            "  {:<18} {:>10} {:>14} {:>14} {:>14} {:>10.1}",
            table.name,
            table.entries,
            table.stored_bytes,
            table.metadata_bytes,
            table.fragmented_bytes,
            all as f64 / STORE_BROADCASTS as f64
        );
    }
    println!(
        "  tables total {:.1} MiB = {:.0} bytes per broadcast; the rest of the file is redb's free space and allocator state",
        total as f64 / 1_048_576.0,
        total as f64 / STORE_BROADCASTS as f64
    );
}
