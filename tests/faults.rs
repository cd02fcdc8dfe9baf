//! Network faults on both outbound paths of a running `serve`, the CDN and the live listing:
//! connection refused, a name that does not resolve, TLS with a certificate no CA vouches for,
//! reset, a body cut short, 5xx, 429 with `Retry-After`, garbage, a body past the cap, a slow
//! trickle and a blackhole. Each must cost bounded time and memory, show in the metrics by
//! kind, and leave the appliance capturing and serving.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vodprobe_sim::{Broadcast, DomainSpec, Fault, ListingFault};

fn faulty(fault: Fault) -> DomainSpec {
    DomainSpec {
        prefix: String::new(),
        fault,
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[test]
fn cdn_faults_are_bounded_counted_and_survived() {
    let faults = [
        (Fault::Unavailable, "http_status"),
        (Fault::Reset, "reset"),
        (Fault::CutMidBody, "reset"),
        (Fault::Garbage, "not_playlist"),
        (Fault::HugeBody, "too_large"),
        (Fault::SlowTrickle, "timeout"),
        (Fault::Blackhole, "timeout"),
        (Fault::TooManyRequests { retry_after_secs: 30 }, "rate_limited"),
    ];
    let healthy = faults.len();
    let mut specs: Vec<DomainSpec> = faults.iter().map(|(fault, _)| faulty(fault.clone())).collect();
    specs.push(DomainSpec::healthy());
    let mut world = World::configured(
        specs,
        FAST,
        "kind = \"gql\"",
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50\nmax_playlist_bytes = 1048576",
    );
    let mut expected: Vec<(String, &str)> = faults
        .iter()
        .enumerate()
        .map(|(domain, (_, kind))| (world.cdn.base_url(domain), *kind))
        .collect();
    // Three domains the simulator does not serve, asked before the healthy one.
    let tls = WrongCertServer::start();
    let outside = [
        (format!("http://127.0.0.1:{}/", closed_port()), "connect"),
        ("http://vodprobe-fault.invalid/".to_string(), "dns"),
        (format!("https://127.0.0.1:{}/", tls.port), "tls"),
    ];
    let config = std::fs::read_to_string(world.config_path()).expect("config");
    let last = config.rfind("[[domain]]").expect("domains");
    let extra: String = outside
        .iter()
        .map(|(url, _)| format!("[[domain]]\nurl = \"{url}\"\nprobe = \"twitch-vod\"\n"))
        .collect();
    let config = format!("{}{extra}{}", &config[..last], &config[last..]);
    std::fs::write(world.config_path(), config).expect("config");
    expected.extend(outside.iter().map(|(url, kind)| (url.clone(), *kind)));

    let start = now() - 600;
    let mut streams: Vec<_> = (0..6u64)
        .map(|i| {
            let login = format!("victim{i}");
            let started = start + i as i64 * 60;
            world.cdn.add_broadcast(Broadcast::new(
                &login,
                700 + i,
                &started.to_string(),
                vec![healthy],
            ));
            stream(700 + i, 70 + i, &login, started, 100)
        })
        .collect();
    // A broadcast no domain holds: its probes wait for every answer, the timeouts included
    // (a hit does not wait for a blackhole or a trickle, so the six alone may never see one).
    streams.push(stream(799, 79, "ghost", start, 100));
    world.listing.set_streams(streams);
    world.start(&[]);
    let began = Instant::now();
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = get(&format!("{base}/api/v1/vods?status=found")).json();
        if found["items"].as_array().map_or(0, Vec::len) == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every broadcast was captured: {found}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let captured_after = began.elapsed();

    let counted = |metrics: &str, url: &str, kind: &str| {
        let wanted = format!("domain=\"{url}\",kind=\"{kind}\"");
        metric_lines(metrics, "vodprobe_domain_failures_total")
            .iter()
            .any(|line| line.contains(&wanted))
    };
    world.wait_until("every fault counted by kind", 30, |_| {
        let metrics = get(&format!("{base}/metrics")).text();
        expected.iter().all(|(url, kind)| counted(&metrics, url, kind))
    });
    let metrics = get(&format!("{base}/metrics")).text();
    let failures = metric_lines(&metrics, "vodprobe_domain_failures_total");
    // Each faulty domain was asked a bounded number of times: once down, it rests.
    for domain in 0..healthy {
        let asked = world.cdn.request_count(domain);
        assert!((1..=12).contains(&asked), "domain {domain} asked {asked} times");
    }
    assert!(tls.handshakes() >= 1, "the TLS domain was never asked");
    let pid = world.pid().expect("running");
    let rss = peak_rss_mib(pid);
    eprintln!(
        "cdn faults: 6 captured in {captured_after:?}; {} fault kinds counted; serve peak RSS {rss:.1} MiB\n{}",
        expected.len(),
        failures.join("\n")
    );
    assert!(rss < 200.0, "serve's peak RSS {rss:.1} MiB");
    assert_eq!(get(&format!("{base}/healthz")).status, 200);
    world.stop();
}

#[test]
fn listing_faults_are_bounded_counted_and_survived() {
    let mut world = World::healthy(FAST);
    let good = world.listing.gql_url();
    world
        .listing
        .set_streams(vec![stream(801, 81, "steady", now() - 300, 100)]);
    let tls = WrongCertServer::start();
    let refused = format!("http://127.0.0.1:{}/gql", closed_port());
    let wrong_cert = format!("https://127.0.0.1:{}/gql", tls.port);
    world.start(&[]);
    let base = world.api_url();
    let errors = |kind: &str| -> u64 {
        let metrics = get(&format!("{base}/metrics")).text();
        metric_lines(&metrics, "vodprobe_listing_errors_total")
            .iter()
            .find(|line| line.contains(&format!("kind=\"{kind}\"")))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    let cases = [
        (wrong_cert.as_str(), ListingFault::None, "tls"),
        (refused.as_str(), ListingFault::None, "connect"),
        ("http://vodprobe-fault.invalid/gql", ListingFault::None, "dns"),
        (good.as_str(), ListingFault::Unavailable, "http_status"),
        (good.as_str(), ListingFault::Garbage, "decode"),
        (good.as_str(), ListingFault::Blackhole, "timeout"),
        (
            good.as_str(),
            ListingFault::RateLimited { retry_after_secs: 1 },
            "rate_limited",
        ),
    ];
    let mut table = Vec::new();
    for (step, (url, fault, kind)) in cases.iter().enumerate() {
        world.listing.set_fault(fault.clone());
        // A changed [source] restarts the crawl at once (no back-off left from the last case).
        let config = std::fs::read_to_string(world.config_path()).expect("config");
        let config: String = config
            .lines()
            .map(|line| {
                if line.starts_with("gql_url") {
                    format!("gql_url = \"{url}\"\n")
                } else if line.starts_with("pages_per_second") {
                    format!("pages_per_second = {}\n", 20 + step)
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(world.config_path(), config).expect("config");
        let began = Instant::now();
        world.wait_until(&format!("a {kind} listing error"), 20, |_| errors(kind) >= 1);
        table.push(format!("{kind:<13} counted after {:?}", began.elapsed()));
        assert_eq!(get(&format!("{base}/healthz")).status, 200, "{kind}");
    }
    // Healthy again: pages are read and the stream is tracked.
    world.listing.set_fault(ListingFault::None);
    let config = std::fs::read_to_string(world.config_path()).expect("config");
    std::fs::write(
        world.config_path(),
        config.replace("pages_per_second = 26", "pages_per_second = 20"),
    )
    .expect("config");
    let before = world.listing.requests();
    world.wait_until("the listing read again", 20, |w| {
        w.listing.requests() > before + 1
    });
    let live = get(&format!("{base}/api/v1/vods?streamer=steady")).json();
    assert_eq!(live["items"].as_array().map_or(0, Vec::len), 1, "{live}");
    let rss = peak_rss_mib(world.pid().expect("running"));
    eprintln!(
        "listing faults:\n{}\nserve peak RSS {rss:.1} MiB",
        table.join("\n")
    );
    assert!(tls.handshakes() >= 1);
    world.stop();
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The lines of one metric family (without its `# HELP`/`# TYPE` comments).
fn metric_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .collect()
}

/// A TLS server on loopback whose self-signed certificate names another host: the client's
/// handshake must fail. Counts handshakes attempted.
struct WrongCertServer {
    port: u16,
    handshakes: Arc<AtomicUsize>,
}

impl WrongCertServer {
    fn start() -> WrongCertServer {
        let certified =
            rcgen::generate_simple_self_signed(vec!["wrong.example".to_string()]).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
            certified.key_pair.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocols")
                .with_no_client_auth()
                .with_single_cert(vec![certified.cert.der().clone()], key)
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                let counted = counted.clone();
                std::thread::spawn(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let Ok(connection) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(connection, stream);
                    let mut buffer = [0u8; 1024];
                    // The client gives up during the handshake; nothing more to do.
                    let _ = tls.read(&mut buffer);
                });
            }
        });
        WrongCertServer { port, handshakes }
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }
}
