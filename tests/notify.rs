//! `[[notify]]` webhooks through the real `serve` against the simulator: a receiver on port 0
//! in this test gets every lifecycle event at least once, in order, each signed, across a
//! SIGKILL of `serve` and five minutes (of an accelerated clock) of answering 500.

use crate::api::get;
use crate::serve::{World, now, stream};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vodprobe::store::{EventFilter, Store};
use vodprobe_sim::Broadcast;

const SECRET: &str = "test secret";
/// Clock seconds per real second: the five minutes of failures take five real seconds.
const SPEED: i64 = 60;
/// Pipeline timings in clock time, loose enough that a crawl pass never looks like an end.
const PIPELINE: &str = "ended_after = \"60s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"10s\", \"10s\"]";

/// One POST as the receiver got it.
struct Delivery {
    arrived: Instant,
    status: u16,
    signature: String,
    body: Vec<u8>,
}

struct Receiver {
    url: String,
    failing: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    /// Answers each request (one per connection) 200, or 500 while `failing`.
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let failing = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (fail, log) = (failing.clone(), got.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let (mut length, mut signature) = (0, String::new());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                    if let Some((name, value)) = line.split_once(':') {
                        let value = value.trim().to_string();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.parse().unwrap_or(0),
                            "x-vodprobe-signature" => signature = value,
                            _ => {}
                        }
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let status = if fail.load(Ordering::SeqCst) { 500 } else { 200 };
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = reader.get_mut().write_all(answer.as_bytes());
                log.lock().expect("log").push(Delivery {
                    arrived: Instant::now(),
                    status,
                    signature,
                    body,
                });
            }
        });
        Receiver { url, failing, got }
    }

    fn count(&self, status: u16) -> usize {
        self.got
            .lock()
            .expect("log")
            .iter()
            .filter(|d| d.status == status)
            .count()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn target_health(base: &str) -> (String, serde_json::Value) {
    let health = get(&format!("{base}/healthz")).json();
    (
        health["status"].as_str().unwrap_or_default().to_string(),
        health["notify"][0].clone(),
    )
}

#[test]
fn a_webhook_gets_every_event_in_order_signed_across_a_sigkill_and_five_minutes_of_500() {
    let mut world = World::configured(
        (0..3).map(|_| vodprobe_sim::DomainSpec::healthy()).collect(),
        PIPELINE,
        "kind = \"gql\"",
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50",
    );
    let receiver = Receiver::start();
    let mut config = std::fs::read_to_string(world.config_path()).expect("config");
    config.push_str(&format!(
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        receiver.url
    ));
    std::fs::write(world.config_path(), config).expect("config");
    let base_time = now() - 600;
    for index in 0..4u64 {
        let start = base_time + index as i64 * 10;
        world.cdn.add_broadcast(Broadcast::new(
            &format!("hook{index}"),
            900 + index,
            &start.to_string(),
            vec![0],
        ));
    }
    let live = |range: std::ops::Range<u64>| {
        range
            .map(|i| {
                stream(
                    900 + i,
                    9000 + i,
                    &format!("hook{i}"),
                    base_time + i as i64 * 10,
                    50,
                )
            })
            .collect::<Vec<_>>()
    };
    world.listing.set_streams(live(0..2));
    let clock_start = now();
    let started = Instant::now();
    let clock_now = || clock_start + started.elapsed().as_secs() as i64 * SPEED;
    let speed = SPEED.to_string();
    world.start(&["--clock-start", &clock_start.to_string(), "--clock-speed", &speed]);
    let base = world.api_url();
    world.wait_until("the two live events delivered", 20, |_| receiver.count(200) >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("both captured and delivered", 30, |_| receiver.count(200) >= 6);
    let pid = world.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .to_string();

    // The receiver fails; the pipeline goes on capturing meanwhile.
    receiver.failing.store(true, Ordering::SeqCst);
    let failing_since = Instant::now();
    world.listing.set_streams(live(2..4));
    world.wait_until("a failed delivery", 20, |_| receiver.count(500) >= 1);
    world.wait_until("healthz to name the failing target", 30, |_| {
        let (status, target) = target_health(&base);
        status == "degraded" && target["name"] == "hook" && target["ok"] == false
    });
    let (_, failing) = target_health(&base);
    assert!(
        failing["last_error"].as_str().unwrap_or_default().contains("500"),
        "{failing}"
    );
    assert!(failing["backlog"].as_u64().unwrap_or(0) >= 1, "{failing}");
    // A SIGKILL in the failing stretch; the clock carries on where it was.
    world.kill9();
    // The API's address is read from the log: the next run's log starts afresh.
    let log = world.dir.path().join("serve.log");
    std::fs::rename(&log, world.dir.path().join("serve.1.log")).expect("log");
    world.start(&["--clock-start", &clock_now().to_string(), "--clock-speed", &speed]);
    let base = world.api_url();
    world.listing.set_streams(vec![]);
    world.wait_until("the new broadcasts captured while the receiver fails", 30, |_| {
        let events = get(&format!("{base}/api/v1/events?kind=captured")).json();
        events["items"].as_array().is_some_and(|items| items.len() >= 4)
    });
    // Five minutes of clock time answering 500.
    world.wait_until("five clock minutes of failures", 30, |_| {
        failing_since.elapsed() >= Duration::from_millis(300_000 / SPEED as u64)
    });
    let failures = receiver.count(500);
    receiver.failing.store(false, Ordering::SeqCst);
    world.wait_until("healthz to recover", 60, |_| {
        let (status, target) = target_health(&base);
        status == "ok" && target["ok"] == true && target["backlog"] == 0
    });
    let (_, recovered) = target_health(&base);
    assert!(recovered["last_error"].is_null(), "{recovered}");
    world.stop();

    let store = Store::open(&world.database(), 1 << 20).expect("store");
    let filter = EventFilter {
        ascending: true,
        ..Default::default()
    };
    let stored: Vec<u64> = store
        .events(&filter, 10_000)
        .expect("events")
        .events
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    let got = receiver.got.lock().expect("log");
    let mut delivered: Vec<u64> = Vec::new();
    for delivery in got.iter() {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(&delivery.body);
        let hex = delivery
            .signature
            .strip_prefix("sha256=")
            .expect("sha256= prefix");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        mac.verify_slice(&bytes).expect("a valid signature");
        if delivery.status == 200 {
            let body: serde_json::Value = serde_json::from_slice(&delivery.body).expect("json");
            assert!(
                body["broadcast"]["login"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("hook")),
                "{body}"
            );
            delivered.push(body["id"].as_str().and_then(|id| id.parse().ok()).expect("id"));
        }
    }
    // In order (a repeat of the one in flight at the kill allowed), and every event at least once.
    assert!(
        delivered.windows(2).all(|pair| pair[0] <= pair[1]),
        "{delivered:?}"
    );
    delivered.dedup();
    assert_eq!(delivered, stored, "every stored event, once each in order");
    let captured = store
        .events(
            &EventFilter {
                kinds: vec![vodprobe::event::EventKind::Captured],
                ..filter
            },
            100,
        )
        .expect("events")
        .events
        .len();
    assert_eq!(
        captured, 4,
        "the pipeline captured through the receiver's failures"
    );

    // Delivery lag while healthy: from the event's clock time to its arrival (±1 clock second).
    let mut lags: Vec<f64> = got
        .iter()
        .filter(|d| d.status == 200 && d.arrived < failing_since)
        .filter_map(|d| {
            let body: serde_json::Value = serde_json::from_slice(&d.body).ok()?;
            let at = chrono::DateTime::parse_from_rfc3339(body["at"].as_str()?)
                .ok()?
                .timestamp();
            let written = started + Duration::from_secs_f64((at - clock_start).max(0) as f64 / SPEED as f64);
            Some(d.arrived.saturating_duration_since(written).as_secs_f64() * 1000.0)
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    eprintln!(
        "notify: {} events, {} deliveries ({failures} answered 500); lag ms p50 {:.0} p99 {:.0} \
         (n={}, ±{} ms); serve {rss}",
        stored.len(),
        got.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.len(),
        1000 / SPEED
    );
}
