//! The API under load: `cargo bench --bench api_load`.
//!
//! Builds (once; kept under `target/bench-data/`) a store of 1,000,000 archived broadcasts with
//! realistic sizes — 60 days of a 20,000-channel population, titles, games, languages, viewer
//! counts, and a Twitch-shaped playlist for each found broadcast (10-second segments, lengths
//! from minutes to 12 hours, some muted) — then starts the real `vodprobe serve` on it and
//! drives it with `oha` (installed from crates.io if missing) at fixed rates: the first list
//! page, page 10,000 (both answered from the list-answer cache after the first request, as
//! the store does not change during the run), 2,000 distinct list pages (too many to cache),
//! filtered lists, streamer search and playlists, then past saturation with many connections. Prints throughput, p50/p99/max latency, status shares, peak RSS so far
//! after each row, and the store's size on disk. oha runs on the same two cores as the server:
//! figures are for both. "client errors" are oha's requests cut off when a run's time is up.
//! `VODPROBE_BENCH_BIN=path` measures another build of `vodprobe` (a static musl one, say);
//! `VODPROBE_BENCH_CACHE_BYTES=n` another redb cache size than the default;
//! `VODPROBE_BENCH_ROWS=page1` stops after the first page's rows.

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/harness.rs"]
mod harness;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use corpus::{DAYS, FIRST_START, GAMES, LANGUAGES, RECORDS, SEED, SegmentLines, broadcast, channels};
use harness::proc_kib;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vodprobe::store::Store;
use vodprobe_sim::{Rng, SimCdn, SimListing};

const BATCH: u64 = 10_000;
/// Bump when the generated data or its encoding changes, so an old cached store is rebuilt.
const DATA_VERSION: &str = "api-load-v2";
const RUN: &str = "10s";

/// The store, generated on first use and reused while `DATA_VERSION` matches.
fn ensure_store(dir: &Path) -> PathBuf {
    let db = dir.join("vodprobe.redb");
    let marker = dir.join(DATA_VERSION);
    if marker.exists() && db.exists() {
        println!("reusing the generated store in {}", dir.display());
        return db;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench data dir");
    let started = Instant::now();
    let channels = channels();
    let lines = SegmentLines::new(4_400);
    let store = Store::open(&db, 64 << 20).expect("open store");
    let bar = indicatif::ProgressBar::new(RECORDS);
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating {bar:40} {pos}/{len} broadcasts ({eta} left)")
            .expect("template"),
    );
    let mut rng = Rng::new(SEED ^ 0xB40A_DCA5);
    let mut i = 0;
    while i < RECORDS {
        let mut archived = Vec::with_capacity(BATCH as usize);
        let mut plain = Vec::new();
        for j in i..(i + BATCH).min(RECORDS) {
            match broadcast(j, &channels, &mut rng) {
                (record, Some(spec)) => archived.push((record, lines.playlist(&spec))),
                (record, None) => plain.push(record),
            }
        }
        store.put_archived_many(&archived).expect("write batch");
        store.put_streams(&plain).expect("write batch");
        i += BATCH;
        bar.set_position(i.min(RECORDS));
    }
    bar.finish_and_clear();
    store.close().expect("close store");
    std::fs::write(&marker, "").expect("marker");
    println!(
        "generated {RECORDS} broadcasts in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    db
}

fn oha_path() -> PathBuf {
    let installed = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let home_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin/oha");
    for candidate in [PathBuf::from("oha"), home_bin.clone()] {
        if installed(&candidate) {
            return candidate;
        }
    }
    println!("installing oha from crates.io (cargo install oha --locked; a few minutes)...");
    let status = Command::new("cargo")
        .args(["install", "oha", "--locked"])
        .status()
        .expect("run cargo install");
    assert!(status.success() && installed(&home_bin), "could not install oha");
    home_bin
}

/// The binary under test: this build's, or another one (a static build, say) named by
/// `VODPROBE_BENCH_BIN`, so allocators and libcs can be compared on the same data and load.
fn server_binary() -> PathBuf {
    std::env::var_os("VODPROBE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vodprobe")))
}

struct Server {
    child: Child,
    base: String,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(data_dir: &Path, config_dir: &Path, listing: &SimListing, cdn: &SimCdn) -> Server {
        let config = config_dir.join("config.toml");
        let text = format!(
            "data_dir = {data:?}\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [pipeline]\nretention = \"36500d\"\n\
             [source]\ngql_url = \"{gql}\"\n\
             [[domain]]\nurl = \"{cdn}\"\nprobe = \"twitch-vod\"\n{limits}",
            data = data_dir.display().to_string(),
            // VODPROBE_BENCH_CACHE_BYTES: measure another redb cache size than the default.
            limits = std::env::var("VODPROBE_BENCH_CACHE_BYTES")
                .map(|bytes| format!("[limits]\ncache_bytes = {bytes}\n"))
                .unwrap_or_default(),
            gql = listing.gql_url(),
            cdn = cdn.base_url(0),
        );
        std::fs::write(&config, text).expect("config");
        let mut child = Command::new(server_binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("VODPROBE_LOG", "warn,vodprobe=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vodprobe serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("API listening on http://").nth(1) {
                    let _ = tx.send(format!("http://{}", rest.split('/').next().unwrap_or_default()));
                    sent = true;
                }
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("serve: {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve never reported its API address");
        let peak_rss = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let status = format!("/proc/{}/status", child.id());
        {
            let peak_rss = peak_rss.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kib) = proc_kib(&status, "VmRSS:") {
                        peak_rss.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        Server {
            child,
            base,
            peak_rss,
            stop,
        }
    }

    fn rss_mib(&self) -> f64 {
        self.peak_rss.load(Ordering::Relaxed) as f64 / 1024.0
    }

    fn hwm_mib(&self) -> f64 {
        proc_kib(&format!("/proc/{}/status", self.child.id()), "VmHWM:").unwrap_or(0) as f64 / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Outcome {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ok_share: f64,
    unavailable_share: f64,
    errors: u64,
}

/// One oha run: `target` is a URL or a file of URLs; `rate` None is as fast as possible.
fn oha(oha: &Path, target: &str, from_file: bool, rate: Option<u32>, connections: u32) -> Outcome {
    let mut command = Command::new(oha);
    command.args(["--no-tui", "--output-format", "json", "-z", RUN, "-c"]);
    command.arg(connections.to_string());
    if let Some(rate) = rate {
        command.args(["-q", &rate.to_string(), "--latency-correction"]);
    }
    if from_file {
        command.arg("--urls-from-file");
    }
    command.arg(target);
    let out = command.output().expect("run oha");
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oha json");
    let codes = json["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let count = |code: &str| codes.get(code).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let answered: u64 = codes.values().filter_map(serde_json::Value::as_u64).sum();
    let errors: u64 = json["errorDistribution"]
        .as_object()
        .map(|e| e.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0);
    let ms = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN) * 1000.0;
    Outcome {
        rps: answered as f64 / json["summary"]["total"].as_f64().unwrap_or(1.0),
        p50_ms: ms(&json["latencyPercentiles"]["p50"]),
        p99_ms: ms(&json["latencyPercentiles"]["p99"]),
        max_ms: ms(&json["summary"]["slowest"]),
        ok_share: (count("200") + count("304")) as f64 / answered.max(1) as f64,
        unavailable_share: count("503") as f64 / answered.max(1) as f64,
        errors,
    }
}

fn recent_cursor(start: i64, stream_id: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("r{start}.{stream_id}"))
}

fn main() {
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/api-load");
    let db = ensure_store(&bench_dir);
    let store_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let oha_bin = oha_path();

    // Regenerate the keys and names the URLs need (same seeds, no playlists).
    let channels = channels();
    let mut rng = Rng::new(SEED ^ 0xB40A_DCA5);
    let mut keys = Vec::with_capacity(RECORDS as usize);
    let mut found = Vec::new();
    for i in 0..RECORDS {
        let (record, playlist) = broadcast(i, &channels, &mut rng);
        if playlist.is_some() {
            found.push(record.key());
        }
        keys.push(record.key());
    }

    let listing = SimListing::start().expect("listing");
    let cdn = SimCdn::start(vec![vodprobe_sim::DomainSpec::healthy()]).expect("cdn");
    let config_dir = tempfile::tempdir().expect("config dir");
    let server = Server::start(&bench_dir, config_dir.path(), &listing, &cdn);
    let base = server.base.clone();
    let idle_rss = {
        std::thread::sleep(Duration::from_secs(1));
        server.rss_mib()
    };

    // Page 10,000 (50 a page) of the newest-first list starts after the 499,950th newest.
    let deep = keys[keys.len() - 499_950];
    let page1 = format!("{base}/api/v1/vods");
    let page10k = format!("{base}/api/v1/vods?cursor={}", recent_cursor(deep.0, deep.1));
    let url_file = |name: &str, urls: Vec<String>| {
        let path = config_dir.path().join(name);
        std::fs::write(&path, urls.join("\n") + "\n").expect("url file");
        path.display().to_string()
    };
    let mut pick = Rng::new(7);
    // List pages the answer cache cannot hold (2,000 distinct cursors, 256 answers kept).
    let distinct = url_file(
        "distinct.txt",
        (0..2000)
            .map(|_| {
                let (start, id) = keys[pick.below(keys.len())];
                format!("{base}/api/v1/vods?cursor={}", recent_cursor(start, id))
            })
            .collect(),
    );
    let filtered = url_file(
        "filtered.txt",
        (0..2000)
            .map(|n| {
                let channel = &channels[pick.below(channels.len())];
                let game = GAMES[pick.below(GAMES.len())].0;
                let language = LANGUAGES[pick.below(LANGUAGES.len())].0;
                let day = FIRST_START + pick.range(0, DAYS) * 86_400;
                match n % 5 {
                    0 => format!("{base}/api/v1/vods?streamer={}", channel.login),
                    1 => format!("{base}/api/v1/vods?game_id={game}&language={language}"),
                    2 => format!("{base}/api/v1/vods?language={language}&sort=views"),
                    3 => format!(
                        "{base}/api/v1/vods?status=not_found&since={day}&until={}",
                        day + 86_400
                    ),
                    _ => format!(
                        "{base}/api/v1/vods?streamer_id={}&sort=views",
                        channel.streamer_id
                    ),
                }
            })
            .collect(),
    );
    let search = url_file(
        "search.txt",
        (0..2000)
            .map(|n| {
                let login = &channels[pick.below(channels.len())].login;
                let take = if n % 2 == 0 { 3 } else { 5 }.min(login.len());
                let at = if n % 4 == 1 { 1 } else { 0 };
                format!("{base}/api/v1/streamers?q={}", &login[at..take.max(at + 1)])
            })
            .collect(),
    );
    let playlists = url_file(
        "playlists.txt",
        (0..2000)
            .map(|_| {
                let (start, id) = found[pick.below(found.len())];
                format!("{base}/vods/{id}/{start}.m3u8")
            })
            .collect(),
    );

    println!(
        "store: {RECORDS} broadcasts ({} archived), {:.0} MiB on disk; serve idle RSS {idle_rss:.1} MiB",
        found.len(),
        store_bytes as f64 / 1048576.0
    );
    println!("server: {}", server_binary().display());
    println!("each row: oha for {RUN}; rate \"max\" = as fast as oha can send");
    println!(
        "{:<22} {:>6} {:>5} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9}",
        "scenario", "rate", "conns", "req/s", "p50 ms", "p99 ms", "max ms", "2xx", "503", "peak RSS"
    );
    let row = |name: &str, target: &str, file: bool, rate: Option<u32>, conns: u32| {
        let o = oha(&oha_bin, target, file, rate, conns);
        println!(
            "{:<22} {:>6} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>8.1} {:>5.1}% {:>5.1}% {:>5.0} MiB{}",
            name,
            rate.map_or("max".to_string(), |r| r.to_string()),
            conns,
            o.rps,
            o.p50_ms,
            o.p99_ms,
            o.max_ms,
            o.ok_share * 100.0,
            o.unavailable_share * 100.0,
            server.rss_mib(),
            if o.errors > 0 {
                format!("  ({} client errors)", o.errors)
            } else {
                String::new()
            }
        );
        o
    };
    // Warm the page cache and the server once.
    oha(&oha_bin, &page1, false, Some(1000), 16);
    let mut first = Vec::new();
    for rate in [1000, 5000, 10_000] {
        first.push(row("list page 1", &page1, false, Some(rate), 64));
    }
    let first_max = row("list page 1", &page1, false, None, 64);
    // VODPROBE_BENCH_ROWS=page1: only the first page (to compare two builds quickly).
    if std::env::var("VODPROBE_BENCH_ROWS").is_ok_and(|rows| rows == "page1") {
        return;
    }
    let deep_5k = row("list page 10,000", &page10k, false, Some(5000), 64);
    let deep_max = row("list page 10,000", &page10k, false, None, 64);
    row("list, 2,000 cursors", &distinct, true, Some(2000), 64);
    row("list, 2,000 cursors", &distinct, true, None, 64);
    row("filtered lists", &filtered, true, Some(2000), 64);
    row("filtered lists", &filtered, true, None, 64);
    row("streamer search", &search, true, Some(2000), 64);
    row("streamer search", &search, true, None, 64);
    row("playlists", &playlists, true, Some(1000), 64);
    row("playlists", &playlists, true, None, 64);
    let overload = row("overload, page 1", &page1, false, None, 1000);
    println!(
        "page 10,000 vs page 1 at 5,000/s: p50 {:+.0}%, p99 {:+.0}%; at max: {:+.0}% req/s",
        (deep_5k.p50_ms / first[1].p50_ms - 1.0) * 100.0,
        (deep_5k.p99_ms / first[1].p99_ms - 1.0) * 100.0,
        (deep_max.rps / first_max.rps - 1.0) * 100.0,
    );
    println!(
        "saturation: {:.0} list req/s; past it (1,000 connections) {:.1}% answered 503",
        first_max.rps,
        overload.unavailable_share * 100.0
    );
    println!(
        "serve peak RSS {:.1} MiB (sampled), high-water mark {:.1} MiB; store {:.0} MiB on disk",
        server.rss_mib(),
        server.hwm_mib(),
        store_bytes as f64 / 1048576.0
    );
}
