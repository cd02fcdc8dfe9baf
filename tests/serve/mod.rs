//! `vodprobe serve` against the simulated listing and CDN: the real binary, real HTTP, a real
//! redb file. Thresholds are scaled to seconds; the hour-aligned probe runs on an accelerated
//! clock. While `serve` runs its database is locked, so tests watch the simulators' request
//! logs, stop the appliance, then read the store.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vodprobe::record::StreamRecord;
use vodprobe::store::Store;
use vodprobe_sim::{DomainSpec, LiveStream, SimCdn, SimListing};

mod ends;
mod queue;
mod resilience;

const DOMAINS: usize = 3;

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cdn: SimCdn,
    pub(crate) listing: SimListing,
    child: Option<Child>,
}

pub(crate) fn stream(
    stream_id: u64,
    streamer_id: u64,
    login: &str,
    started_at: i64,
    viewers: u32,
) -> LiveStream {
    LiveStream {
        stream_id,
        streamer_id,
        login: login.to_string(),
        title: format!("{login} live"),
        game_id: "509658".into(),
        game_name: "Just Chatting".into(),
        language: "en".into(),
        is_mature: false,
        viewers,
        started_at,
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl World {
    fn new(specs: Vec<DomainSpec>, pipeline: &str) -> World {
        World::configured(
            specs,
            pipeline,
            "kind = \"gql\"",
            "health = \"0 0 * * * *\"",
            "requests_per_second = 50",
        )
    }

    /// `source`, `health` and `limits` are extra lines for their tables.
    pub(crate) fn configured(
        specs: Vec<DomainSpec>,
        pipeline: &str,
        source: &str,
        health: &str,
        limits: &str,
    ) -> World {
        World::build(specs, pipeline, source, health, limits, "")
    }

    /// A healthy world whose `[api]` table gets the extra lines `api`.
    pub(crate) fn with_api(pipeline: &str, api: &str) -> World {
        let specs = (0..DOMAINS).map(|_| DomainSpec::healthy()).collect();
        let limits = "requests_per_second = 50";
        World::build(
            specs,
            pipeline,
            "kind = \"gql\"",
            "health = \"0 0 * * * *\"",
            limits,
            api,
        )
    }

    fn build(
        specs: Vec<DomainSpec>,
        pipeline: &str,
        source: &str,
        health: &str,
        limits: &str,
        api: &str,
    ) -> World {
        let cdn = SimCdn::start(specs).expect("cdn");
        let listing = SimListing::start().expect("listing");
        let dir = tempfile::tempdir().expect("dir");
        let mut text = format!(
            "data_dir = \"data\"\n\
             [api]\nlisten = \"127.0.0.1:0\"\n{api}\n\
             [source]\n{source}\ngql_url = \"{}\"\nhelix_url = \"{}\"\ntoken_url = \"{}\"\npages_per_second = 20\n\
             [schedule]\ndiscover = \"* * * * * *\"\nprobe = \"* * * * * *\"\n{health}\nprune = \"0 0 0 * * *\"\n\
             [pipeline]\n{pipeline}\n\
             [limits]\n{limits}\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\n",
            listing.gql_url(),
            listing.helix_url(),
            listing.token_url(),
        );
        for domain in 0..cdn.domain_count() {
            text.push_str(&format!(
                "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
                cdn.base_url(domain)
            ));
        }
        std::fs::write(dir.path().join("config.toml"), text).expect("config");
        World {
            dir,
            cdn,
            listing,
            child: None,
        }
    }

    pub(crate) fn healthy(pipeline: &str) -> World {
        World::new((0..DOMAINS).map(|_| DomainSpec::healthy()).collect(), pipeline)
    }

    pub(crate) fn start(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_vodprobe"))
            .arg("serve")
            .args(extra)
            .current_dir(self.dir.path())
            .env("VODPROBE_LOG", "vodprobe=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "serve exited with {status}: {}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running `serve`'s process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.dir.path().join("data").join("vodprobe.redb")
    }

    pub(crate) fn records(&self) -> Vec<StreamRecord> {
        let store = Store::open(&self.database(), 1 << 20).expect("database opens cleanly");
        store.scan(None, 100_000).expect("scan")
    }

    pub(crate) fn playlist(&self, record: &StreamRecord) -> Option<String> {
        let store = Store::open(&self.database(), 1 << 20).expect("database opens cleanly");
        store.playlist(record.key()).expect("read")
    }

    /// Probe requests for a broadcast's playlist (its primary quality) across domains; the
    /// segment check's requests for its segments are not counted.
    pub(crate) fn requests_for(&self, login: &str, stream_id: u64) -> usize {
        self.paths_requested(login, stream_id)
            .iter()
            .filter(|p| p.contains("/chunked/") && p.ends_with(".m3u8"))
            .count()
    }

    /// Every path requested for a broadcast, on any domain, in no particular order.
    pub(crate) fn paths_requested(&self, login: &str, stream_id: u64) -> Vec<String> {
        let needle = format!("_{login}_{stream_id}_");
        (0..self.cdn.domain_count())
            .flat_map(|d| self.cdn.requests(d))
            .filter(|p| p.contains(&needle))
            .collect()
    }

    /// The API's base URL (`http://127.0.0.1:PORT`), from the log line that announces it.
    pub(crate) fn api_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(rest) = log.split("API listening on http://").nth(1) {
                let address = rest.split('/').next().unwrap_or_default();
                return format!("http://{address}");
            }
            assert!(Instant::now() < deadline, "the API never listened: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn wait_until(&self, what: &str, seconds: u64, mut condition: impl FnMut(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn find(records: &[StreamRecord], stream_id: u64) -> Vec<&StreamRecord> {
    records.iter().filter(|r| r.stream_id == stream_id).collect()
}

pub(crate) const FAST: &str = "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"1s\", \"1s\"]";
