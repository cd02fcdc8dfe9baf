//! Hostile API clients against a running `serve`: slowloris connections, huge headers, huge
//! bodies on the admin routes, floods above `max_concurrent_requests`, path tricks, malformed
//! cursors and wrong tokens, each for a few seconds while a well-behaved client keeps asking
//! for a list page, a playlist and `/healthz`. Every well-behaved request must be answered
//! (200, or 503 with `Retry-After` while a flood holds every slot) quickly, no hostile request
//! may draw a 500, and the server must be whole afterwards. Run with `--nocapture` for the
//! table of requests served and their p99 per scenario.

use crate::api::{captured_world, get, request};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SCENARIO: Duration = Duration::from_secs(3);
const TOKEN: &str = "hostile-test-token-0123456789";

/// What the well-behaved client saw during one scenario.
struct Observed {
    ok: usize,
    unavailable: usize,
    other: Vec<(String, u16)>,
    latencies: Vec<Duration>,
}

impl Observed {
    fn p99(&mut self) -> Duration {
        self.latencies.sort();
        let at = (self.latencies.len() * 99).div_ceil(100).saturating_sub(1);
        self.latencies.get(at).copied().unwrap_or_default()
    }
}

fn good_client(urls: Vec<String>, stop: Arc<AtomicBool>) -> JoinHandle<Observed> {
    std::thread::spawn(move || {
        let mut seen = Observed {
            ok: 0,
            unavailable: 0,
            other: Vec::new(),
            latencies: Vec::new(),
        };
        for url in urls.iter().cycle() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let began = Instant::now();
            let answer = get(url);
            seen.latencies.push(began.elapsed());
            match answer.status {
                200 => seen.ok += 1,
                503 if answer.header("retry-after").is_some() => seen.unavailable += 1,
                status => seen.other.push((url.clone(), status)),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

/// Reads an HTTP status line from a raw socket; `None` when the server closed it without one.
fn status_of(stream: &mut TcpStream) -> Option<u16> {
    stream.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
        }
    }
    let line = String::from_utf8_lossy(&reply);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Runs `attack` on `threads` threads until the scenario ends; each call returns the status
/// it drew (`None`: the server closed the connection, which is a fine answer to abuse).
fn hostile(
    threads: usize,
    stop: &Arc<AtomicBool>,
    server_errors: &Arc<AtomicU64>,
    attack: impl Fn(usize) -> Option<u16> + Send + Sync + 'static,
) -> Vec<JoinHandle<u64>> {
    let attack = Arc::new(attack);
    (0..threads)
        .map(|n| {
            let (stop, errors, attack) = (stop.clone(), server_errors.clone(), attack.clone());
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(status) = attack(n)
                        && status >= 500
                        && status != 503
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    sent += 1;
                }
                sent
            })
        })
        .collect()
}

fn raw(address: &str, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    let _ = stream.write_all(bytes);
    status_of(&mut stream)
}

#[test]
fn hostile_clients_do_not_stop_well_behaved_ones() {
    let (world, _) = captured_world(&format!(
        "admin_token = \"{TOKEN}\"\nmax_concurrent_requests = 16\nmax_connections = 64\n\
         header_timeout = \"2s\"\nidle_timeout = \"2s\""
    ));
    let base = world.api_url();
    let address = base.trim_start_matches("http://").to_string();
    let found = get(&format!("{base}/api/v1/vods?status=found")).json();
    let playlist = format!(
        "{base}{}",
        found["items"][0]["playlist_url"]
            .as_str()
            .expect("a playlist url")
    );
    let good_urls = vec![
        format!("{base}/api/v1/vods?limit=20"),
        playlist.clone(),
        format!("{base}/healthz"),
    ];

    type Attack = Box<dyn Fn(&str) -> (usize, Box<dyn Fn(usize) -> Option<u16> + Send + Sync>)>;
    let scenarios: Vec<(&str, Attack)> = vec![
        (
            "slowloris: 100 connections, cap 64",
            Box::new(|address: &str| {
                let address = address.to_string();
                (
                    100,
                    Box::new(move |_| {
                        let mut stream = TcpStream::connect(&address).ok()?;
                        let _ = stream.write_all(b"GET /api/v1/vods HTTP/1.1\r\n");
                        for _ in 0..30 {
                            std::thread::sleep(Duration::from_millis(200));
                            if stream.write_all(b"X-A: b\r\n").is_err() {
                                return None;
                            }
                        }
                        status_of(&mut stream)
                    }),
                )
            }),
        ),
        (
            "huge headers (64 KiB)",
            Box::new(|address: &str| {
                let address = address.to_string();
                (
                    8,
                    Box::new(move |_| {
                        let header = format!(
                            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                            "a".repeat(64 * 1024)
                        );
                        raw(&address, header.as_bytes())
                    }),
                )
            }),
        ),
        (
            "huge bodies on admin routes (8 MiB)",
            Box::new(|address: &str| {
                let address = address.to_string();
                (
                    4,
                    Box::new(move |n| {
                        let auth = if n % 2 == 0 { TOKEN } else { "wrong" };
                        let head = format!(
                            "POST /api/v1/lookups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auth}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            8 << 20
                        );
                        let mut stream = TcpStream::connect(&address).ok()?;
                        stream.write_all(head.as_bytes()).ok()?;
                        let chunk = vec![b'{'; 64 * 1024];
                        for _ in 0..128 {
                            if stream.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                        status_of(&mut stream)
                    }),
                )
            }),
        ),
        (
            "flood: 48 clients on 16 request slots",
            Box::new(|address: &str| {
                // A flooding client may be reset under load (the CI saw it beside two
                // benchmarks): that is the server shedding it, not a failure of the test.
                let address = address.to_string();
                let ask =
                    b"GET /api/v1/vods?limit=500 HTTP/1.1\r\nHost: vodprobe\r\nConnection: close\r\n\r\n";
                (48, Box::new(move |_| raw(&address, ask)))
            }),
        ),
        (
            "path tricks",
            Box::new(|address: &str| {
                let address = address.to_string();
                (
                    4,
                    Box::new(move |n| {
                        const PATHS: &[&str] = &[
                            "/vods/../../etc/passwd",
                            "/%2e%2e/%2e%2e/etc/passwd",
                            "//api//v1//vods",
                            "/api/v1/vods%00",
                            "/vods/1/1.m3u8/../../../x",
                            "/web/..%2f..%2fCargo.toml",
                            "/api/v1/vods?limit=%ff%fe",
                            "/vods/18446744073709551616/99999999999999999999.m3u8",
                            "/api/v1/vods/-1",
                            "/\u{1F600}",
                        ];
                        let path = PATHS[n % PATHS.len()];
                        let long = format!("/api/v1/vods?q={}", "x".repeat(20_000));
                        let path = if n % 7 == 6 { long.as_str() } else { path };
                        raw(
                            &address,
                            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
                        )
                    }),
                )
            }),
        ),
        (
            "malformed cursors",
            Box::new(|address: &str| {
                let base = format!("http://{address}");
                (
                    4,
                    Box::new(move |n| {
                        const CURSORS: &[&str] = &[
                            "!!!",
                            "cjE3MDAwMDAwMDA",
                            "dg",
                            "%00",
                            "AAAAAAAAAAAAAAAA",
                            "cj0uLi4",
                            "~",
                        ];
                        let cursor = CURSORS[n % CURSORS.len()];
                        let answer = get(&format!("{base}/api/v1/vods?cursor={cursor}"));
                        let streamers = get(&format!("{base}/api/v1/streamers?q=a&cursor={cursor}"));
                        assert!(
                            answer.status == 400 && streamers.status == 400,
                            "cursor {cursor:?}: {} {}",
                            answer.status,
                            streamers.status
                        );
                        Some(answer.status.max(streamers.status))
                    }),
                )
            }),
        ),
        (
            "wrong tokens",
            Box::new(|address: &str| {
                let url = format!("http://{address}/api/v1/requeue");
                (
                    4,
                    Box::new(move |n| {
                        let token = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1 - n % 3]);
                        let answer = request("POST", &url, &[("authorization", &token)], Some("{}"));
                        assert_eq!(answer.status, 401, "{}", answer.text());
                        Some(answer.status)
                    }),
                )
            }),
        ),
    ];

    let mut table = Vec::new();
    for (name, make) in scenarios {
        let stop = Arc::new(AtomicBool::new(false));
        let server_errors = Arc::new(AtomicU64::new(0));
        let (threads, attack) = make(&address);
        let attackers = hostile(threads, &stop, &server_errors, attack);
        // Let the attack take hold before measuring.
        std::thread::sleep(Duration::from_millis(300));
        let good_stop = Arc::new(AtomicBool::new(false));
        let good = good_client(good_urls.clone(), good_stop.clone());
        std::thread::sleep(SCENARIO);
        good_stop.store(true, Ordering::Relaxed);
        let mut seen = good.join().expect("good client");
        stop.store(true, Ordering::Relaxed);
        let sent: u64 = attackers.into_iter().map(|t| t.join().expect("attacker")).sum();
        let p99 = seen.p99();
        table.push(format!(
            "{name:<46} hostile {sent:>6}  good: {:>4} ok {:>4} 503  p99 {:>7.1} ms",
            seen.ok,
            seen.unavailable,
            p99.as_secs_f64() * 1000.0
        ));
        assert!(
            seen.other.is_empty(),
            "{name}: unexpected answers {:?}",
            seen.other
        );
        assert_eq!(
            server_errors.load(Ordering::Relaxed),
            0,
            "{name}: 5xx other than 503"
        );
        assert!(seen.ok > 0, "{name}: no well-behaved request was served");
        // Generous for a debug build on a loaded CI machine; the figure is in the table.
        assert!(p99 < Duration::from_secs(2), "{name}: p99 {p99:?}");
    }
    eprintln!("{}", table.join("\n"));
    // The slowloris clients beyond the cap were shed, not waited for.
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_http_connections_total{event=\"shed\"}"),
        "no connection was shed"
    );
    // Whole afterwards: the archive is intact and the right token still works.
    let after = get(&format!("{base}/api/v1/vods?status=found")).json();
    assert_eq!(after["items"], found["items"]);
    let requeue = request(
        "POST",
        &format!("{base}/api/v1/requeue"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
        Some("{}"),
    );
    assert!(requeue.status < 500, "{}", requeue.text());
    assert_eq!(get(&playlist).status, 200);
    assert!(!world.log().contains("panicked"), "{}", world.log());
}
