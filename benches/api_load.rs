//! The API under load: `cargo bench --bench api_load`.
//!
//! Builds (once; kept under `target/bench-data/`) a store of 1,000,000 archived broadcasts with
//! realistic sizes — 60 days of a 20,000-channel population, titles, games, languages, viewer
//! counts, and a Twitch-shaped playlist for each found broadcast (10-second segments, lengths
//! from minutes to 12 hours, some muted) — then starts the real `vodprobe serve` on it and
//! drives it with `oha` (installed from crates.io if missing) at fixed rates: the first list
//! page, page 10,000, filtered lists, streamer search and playlists, then past saturation with
//! many connections. Prints throughput, p50/p99/max latency, status shares, peak RSS so far
//! after each row, and the store's size on disk. oha runs on the same two cores as the server:
//! figures are for both. "client errors" are oha's requests cut off when a run's time is up.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vodprobe::playlist::Container;
use vodprobe::record::{ArchiveInfo, ProbeState, Status, StreamRecord};
use vodprobe::sim::{Rng, SimCdn, SimListing, vod_dir};
use vodprobe::store::Store;

const RECORDS: u64 = 1_000_000;
const CHANNELS: u64 = 20_000;
const DAYS: i64 = 60;
/// 2026-01-01 00:00 UTC: the oldest broadcast.
const FIRST_START: i64 = 1_767_225_600;
const BATCH: u64 = 10_000;
const SEED: u64 = 0x00A1_10AD;
/// Bump when the generated data changes, so an old cached store is rebuilt.
const DATA_VERSION: &str = "api-load-v1";
const RUN: &str = "10s";

const GAMES: &[(&str, &str)] = &[
    ("509658", "Just Chatting"),
    ("21779", "League of Legends"),
    ("32982", "Grand Theft Auto V"),
    ("516575", "VALORANT"),
    ("33214", "Fortnite"),
    ("32399", "Counter-Strike"),
    ("27471", "Minecraft"),
    ("29595", "Dota 2"),
    ("512710", "Call of Duty: Warzone"),
    ("26936", "Music"),
    ("509660", "Art"),
    ("18122", "World of Warcraft"),
    ("491487", "Dead by Daylight"),
    ("511224", "Apex Legends"),
    ("498566", "Slots"),
    ("1469308723", "Software and Game Development"),
];
const LANGUAGES: &[(&str, f64)] = &[
    ("en", 0.45),
    ("es", 0.12),
    ("de", 0.08),
    ("pt", 0.07),
    ("ru", 0.06),
    ("fr", 0.06),
    ("ja", 0.05),
    ("ko", 0.04),
    ("it", 0.03),
    ("pl", 0.02),
    ("tr", 0.02),
];
const SYLLABLES: &[&str] = &[
    "xq", "shr", "oud", "ka", "ni", "lu", "tom", "zen", "rio", "mar", "ble", "vex", "ash", "kai", "dra",
    "gon", "pix", "el", "fox", "ter", "sam", "lee", "jo", "nat", "ric", "ola", "qua", "ty",
];

fn domain_url(i: usize) -> String {
    const HOSTS: &[&str] = &[
        "d1m7jfoe9zdc1j",
        "d1mhjrowxxagfy",
        "d1ymi26ma8va5x",
        "d2nvs31859zcd8",
        "d2vjef5jvl6bfs",
        "d3vd9lfkzbru3h",
        "dgeft87wbj63p",
        "dqrpb9wgowsf5",
    ];
    match i {
        0 => "https://vod-secure.twitch.tv/".to_string(),
        1 => "https://vod-metro.twitch.tv/".to_string(),
        _ => format!("https://{}.cloudfront.net/", HOSTS[(i - 2) % HOSTS.len()]),
    }
}

struct Channel {
    streamer_id: u64,
    login: String,
    language: &'static str,
    games: [usize; 2],
    popularity: f64,
    domain: usize,
}

fn channels() -> Vec<Channel> {
    let mut rng = Rng::new(SEED);
    let weights: Vec<f64> = LANGUAGES.iter().map(|(_, w)| *w).collect();
    (0..CHANNELS)
        .map(|i| {
            let mut login = String::new();
            for _ in 0..rng.range(2, 5) {
                login.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
            }
            if rng.chance(0.4) {
                let _ = write!(login, "{}", rng.range(1, 999));
            }
            // Unique logins: a suffix from the index where syllables collide.
            let _ = write!(login, "_{i:x}");
            Channel {
                streamer_id: 10_000_000 + i * 13,
                login,
                language: LANGUAGES[rng.weighted(&weights)].0,
                games: [rng.below(GAMES.len()), rng.below(GAMES.len())],
                // Viewers are heavy-tailed: a log-normal popularity per channel.
                popularity: (3.5 + 1.6 * rng.normal()).exp(),
                domain: rng.below(10),
            }
        })
        .collect()
}

/// What a found broadcast's playlist holds.
struct PlaylistSpec {
    start: i64,
    seconds: f64,
    segments: u32,
    muted: std::ops::Range<u32>,
}

/// Broadcast `i` in start order (ascending): its record and, when found, its playlist's shape.
fn broadcast(i: u64, channels: &[Channel], rng: &mut Rng) -> (StreamRecord, Option<PlaylistSpec>) {
    let span = DAYS * 86_400;
    let start = FIRST_START + (i as i64 * span) / RECORDS as i64 + rng.range(0, 4);
    let channel = &channels[rng.below(channels.len())];
    let seconds = (9.2 + 0.8 * rng.normal()).exp().clamp(600.0, 43_200.0);
    let segments = (seconds / 10.0).ceil() as u32;
    let ended = start + seconds as i64;
    let stream_id = 40_000_000_000 + i * 3;
    let game = GAMES[channel.games[rng.below(2)]];
    let status = match rng.unit() {
        x if x < 0.90 => Status::Found,
        x if x < 0.98 => Status::NotFound,
        _ => Status::Pending,
    };
    let mut title = format!("{} | ", game.1.to_uppercase());
    for _ in 0..rng.range(3, 14) {
        title.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
        title.push(' ');
    }
    title.push_str("!drops !discord");
    let muted = if rng.chance(0.2) {
        let from = rng.range(0, i64::from(segments)) as u32;
        from..(from + rng.range(1, 60) as u32).min(segments)
    } else {
        0..0
    };
    let ts = start.to_string();
    let dir = vod_dir(&channel.login, stream_id, &ts);
    let domain = domain_url(channel.domain);
    let playlist = (status == Status::Found).then(|| PlaylistSpec {
        start,
        seconds,
        segments,
        muted: muted.clone(),
    });
    let archive = (status == Status::Found).then(|| ArchiveInfo {
        url: format!("{domain}{dir}/chunked/index-dvr.m3u8"),
        domain: domain.clone(),
        domains: vec![domain.clone()],
        timestamp_form: "unix".to_string(),
        ts,
        duration_seconds: seconds,
        segments,
        muted_segments: muted.len() as u32,
        container: Container::Ts,
        qualities: vec!["chunked".to_string()],
        fetched_at: ended + 120,
        ended: true,
    });
    let record = StreamRecord {
        start_unix: start,
        stream_id,
        streamer_id: channel.streamer_id,
        login: channel.login.clone(),
        title,
        game_id: game.0.to_string(),
        game_name: game.1.to_string(),
        language: channel.language.to_string(),
        is_mature: rng.chance(0.15),
        max_viewers: (channel.popularity * rng.uniform(0.5, 1.5)) as u32 + 1,
        first_seen: start + rng.range(30, 300),
        last_seen: ended,
        ended_at: Some(ended + 60),
        status,
        public: Some(rng.chance(0.8)),
        probe: ProbeState {
            captured_at: archive.as_ref().map(|a| a.fetched_at),
            probes: 2,
            hour_probe_done: true,
            ..ProbeState::default()
        },
        archive,
    };
    (record, playlist)
}

/// The `#EXTINF`/segment lines of segments 0..`max`, rendered once; unmuted playlists copy a
/// prefix of them (generating a million playlists line by line would dominate the set-up).
struct SegmentLines {
    text: String,
    ends: Vec<usize>,
}

impl SegmentLines {
    fn new(max: u32) -> SegmentLines {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(max as usize + 1);
        ends.push(0);
        for n in 0..max {
            let _ = write!(text, "#EXTINF:10.000,\n{n}.ts\n");
            ends.push(text.len());
        }
        SegmentLines { text, ends }
    }

    /// A Twitch-shaped media playlist: 10-second segments, a shorter last one, muted ones listed
    /// as `N-unmuted.ts`.
    fn playlist(&self, spec: &PlaylistSpec) -> String {
        let tdtg = chrono::DateTime::from_timestamp(spec.start, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default();
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#ID3-EQUIV-TDTG:{tdtg}\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TWITCH-ELAPSED-SECS:0.000\n\
             #EXT-X-TWITCH-TOTAL-SECS:{:.3}\n",
            spec.seconds
        );
        let full = spec.segments.saturating_sub(1);
        if spec.muted.is_empty() {
            s.push_str(&self.text[..self.ends[full as usize]]);
        } else {
            for n in 0..full {
                let suffix = if spec.muted.contains(&n) { "-unmuted" } else { "" };
                let _ = write!(s, "#EXTINF:10.000,\n{n}{suffix}.ts\n");
            }
        }
        let last = spec.seconds - f64::from(full) * 10.0;
        let _ = write!(s, "#EXTINF:{last:.3},\n{full}.ts\n#EXT-X-ENDLIST\n");
        s
    }
}

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
             [[domain]]\nurl = \"{cdn}\"\nprobe = \"twitch-vod\"\n",
            data = data_dir.display().to_string(),
            gql = listing.gql_url(),
            cdn = cdn.base_url(0),
        );
        std::fs::write(&config, text).expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vodprobe"))
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

fn proc_kib(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
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
    let cdn = SimCdn::start(vec![vodprobe::sim::DomainSpec::healthy()]).expect("cdn");
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
    let deep_5k = row("list page 10,000", &page10k, false, Some(5000), 64);
    let deep_max = row("list page 10,000", &page10k, false, None, 64);
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
