//! The HTTP API of a running `serve` over real HTTP: lists, filters, cursors, playlists (gzip,
//! ETag, CORS), search, counts, health, metrics, admin routes, overload and slow clients.

use crate::serve::{FAST, World, find, now, stream};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use vodprobe::record::{ProbeState, Status, StreamRecord};
use vodprobe::store::Store;
use vodprobe_sim::Broadcast;

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub(crate) fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let agent = agent();
    let mut response = match method {
        "GET" => {
            let mut request = agent.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.call()
        }
        _ => {
            let mut request = agent.post(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.content_type("application/json").send(body.unwrap_or(""))
        }
    }
    .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .expect("body");
    Answer {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

pub(crate) fn get(url: &str) -> Answer {
    request("GET", url, &[], None)
}

fn assert_error(answer: &Answer, status: u16, code: &str, mentions: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

/// Captures two broadcasts (one restarted under the same stream id) through the real pipeline.
pub(crate) fn captured_world(api: &str) -> (World, i64) {
    let mut world = World::with_api(FAST, api);
    let start = now() - 900;
    world
        .cdn
        .add_broadcast(Broadcast::new("alpha", 501, &start.to_string(), vec![1]));
    world
        .cdn
        .add_broadcast(Broadcast::new("beta", 502, &(start + 60).to_string(), vec![2]));
    let mut alpha = stream(501, 51, "alpha", start, 120);
    alpha.game_id = "21779".into();
    alpha.game_name = "League of Legends".into();
    alpha.language = "de".into();
    world
        .listing
        .set_streams(vec![alpha, stream(502, 52, "beta", start + 60, 40)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = get(&format!("{base}/api/v1/vods?status=found")).json();
        let items = found["items"].as_array().cloned().unwrap_or_default();
        // Checked too: tests that compare answers over time need the items settled.
        if items.len() == 2 && items.iter().all(|item| item["segments_state"].is_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "no captures: {found} {}", world.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    (world, start)
}

#[test]
fn lists_filters_the_stream_id_route_and_errors() {
    let (world, start) = captured_world("");
    let base = world.api_url();
    let all = get(&format!("{base}/api/v1/vods")).json();
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    // Newest first.
    assert_eq!(items[0]["stream_id"], "502");
    let alpha = &items[1];
    for field in [
        "stream_id",
        "start_unix",
        "start_time",
        "streamer_id",
        "login",
        "title",
        "game_id",
        "game_name",
        "language",
        "is_mature",
        "max_viewers",
        "first_seen",
        "last_seen",
        "ended_at",
        "status",
        "public",
        "playlist_url",
        "domain",
        "domains",
        "timestamp_form",
        "duration_seconds",
        "segments",
        "muted_segments",
        "container",
        "qualities",
        "fetched_at",
    ] {
        assert!(alpha.get(field).is_some(), "{field} missing from {alpha}");
    }
    assert_eq!(alpha["start_unix"], start);
    assert_eq!(alpha["streamer_id"], "51");
    assert_eq!(alpha["status"], "found");
    assert_eq!(alpha["segments"], 30);
    assert_eq!(alpha["container"], "ts");
    assert_eq!(alpha["domain"], world.cdn.base_url(1));
    assert_eq!(alpha["playlist_url"], format!("/vods/501/{start}.m3u8"));
    assert!(alpha["start_time"].as_str().unwrap_or("").ends_with('Z'));
    let only = |query: &str| -> Vec<String> {
        let body = get(&format!("{base}/api/v1/vods?{query}")).json();
        body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {body}"))
            .iter()
            .map(|item| item["stream_id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(only("streamer=ALPHA"), ["501"]);
    assert_eq!(only("streamer_id=52"), ["502"]);
    assert_eq!(only("game_id=21779"), ["501"]);
    assert_eq!(only("language=de"), ["501"]);
    assert_eq!(only("status=not_found"), Vec::<String>::new());
    assert_eq!(only(&format!("since={}", start + 30)), ["502"]);
    assert_eq!(only(&format!("until={}", start + 30)), ["501"]);
    assert_eq!(only("sort=views"), ["501", "502"]);
    assert_eq!(only("streamer=nobody"), Vec::<String>::new());
    // One per page, following the cursor.
    let first = get(&format!("{base}/api/v1/vods?limit=1")).json();
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let second = get(&format!("{base}/api/v1/vods?limit=1&cursor={cursor}")).json();
    assert_eq!(second["items"][0]["stream_id"], "501");
    // The stream-id route.
    let by_id = get(&format!("{base}/api/v1/vods/501")).json();
    assert_eq!(by_id["items"][0]["login"], "alpha");
    assert_error(&get(&format!("{base}/api/v1/vods/999")), 404, "not_found", "999");
    assert_error(
        &get(&format!("{base}/api/v1/vods/abc")),
        400,
        "bad_parameter",
        "stream_id",
    );
    // Every bad parameter is named.
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("status=done", "status"),
        ("sort=oldest", "sort"),
        ("since=yesterday", "since"),
        ("public=maybe", "public"),
        ("streamer_id=x", "streamer_id"),
        ("cursor=garbage!", "cursor"),
        ("stremer=alpha", "stremer"),
    ] {
        assert_error(
            &get(&format!("{base}/api/v1/vods?{query}")),
            400,
            "bad_parameter",
            name,
        );
    }
    assert_error(
        &get(&format!("{base}/nothing/here")),
        404,
        "not_found",
        "no such route",
    );
    assert_error(
        &request("POST", &format!("{base}/api/v1/vods"), &[], Some("{}")),
        405,
        "method_not_allowed",
        "method",
    );
    // Search, counts, domains.
    let search = get(&format!("{base}/api/v1/streamers?q=LPH")).json();
    assert_eq!(search["items"][0]["login"], "alpha", "{search}");
    assert_error(
        &get(&format!("{base}/api/v1/streamers")),
        400,
        "bad_parameter",
        "q",
    );
    let domains = get(&format!("{base}/api/v1/domains")).json();
    assert_eq!(domains["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(domains["items"][1]["hits"], 1);
    let languages = get(&format!("{base}/api/v1/languages")).json();
    assert!(languages["items"].is_array(), "{languages}");
}

#[test]
fn the_playlist_route_plays_with_gzip_etag_and_cors() {
    let (world, start) = captured_world("cors_origin = \"https://player.example\"");
    let base = world.api_url();
    let url = format!("{base}/vods/501/{start}.m3u8");
    let plain = get(&url);
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(
        plain.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        plain.header("access-control-allow-origin"),
        Some("https://player.example")
    );
    assert_eq!(plain.header("content-encoding"), None);
    let text = plain.text();
    assert!(text.starts_with("#EXTM3U"));
    let domain = world.cdn.base_url(1);
    let segments: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
    assert_eq!(segments.len(), 30);
    assert!(segments.iter().all(|line| line.starts_with(&domain)), "{text}");
    // Relative URIs resolve against the playlist's directory.
    let dir = vodprobe_sim::vod_dir("alpha", 501, &start.to_string());
    assert_eq!(segments[0], format!("{domain}{dir}/chunked/0.ts"), "{text}");
    // gzip only when asked, never brotli.
    let gzipped = request("GET", &url, &[("Accept-Encoding", "br, gzip")], None);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_string(&mut unzipped)
        .expect("gzip");
    assert_eq!(unzipped, text);
    let brotli_only = request("GET", &url, &[("Accept-Encoding", "br")], None);
    assert_eq!(brotli_only.header("content-encoding"), None);
    // ETag revalidation.
    let etag = plain.header("etag").expect("etag").to_string();
    let again = request("GET", &url, &[("If-None-Match", &etag)], None);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let changed = request("GET", &url, &[("If-None-Match", "\"other\"")], None);
    assert_eq!(changed.status, 200);
    // Not archived / malformed.
    assert_error(
        &get(&format!("{base}/vods/501/{}.m3u8", start + 1)),
        404,
        "not_found",
        "501",
    );
    assert_error(
        &get(&format!("{base}/vods/501/{start}.txt")),
        400,
        "bad_parameter",
        "start_unix",
    );
    // Health and metrics.
    let health = get(&format!("{base}/healthz")).json();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["store"]["ok"], true);
    assert!(health["records"].as_u64().unwrap_or(0) >= 2, "{health}");
    assert!(health["last_probe"].is_string(), "{health}");
    let metrics = get(&format!("{base}/metrics"));
    assert!(
        metrics
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let metrics = metrics.text();
    assert!(
        metrics.contains("vodprobe_http_requests_total{route=\"playlist\",status=\"304\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vodprobe_probes_total{outcome=\"found\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("vodprobe_domain_hits{{domain=\"{domain}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("vodprobe_queue_depth"));
    assert!(metrics.contains("vodprobe_store_bytes"));
}

#[test]
fn admin_routes_are_off_without_a_token_and_need_the_right_one() {
    let mut world = World::with_api(FAST, "");
    world.start(&[]);
    let base = world.api_url();
    let body = r#"{"since": 0, "until": 2000000000}"#;
    assert_error(
        &request(
            "POST",
            &format!("{base}/api/v1/requeue"),
            &[("Authorization", "Bearer x")],
            Some(body),
        ),
        403,
        "admin_disabled",
        "admin_token",
    );
    world.stop();

    let start = now() - 7200;
    let mut world = World::with_api(FAST, "admin_token = \"s3cret-token\"");
    world
        .cdn
        .add_broadcast(Broadcast::new("gamma", 601, &start.to_string(), vec![2]));
    // A not-found broadcast in the store, waiting for an admin to ask again.
    {
        std::fs::create_dir_all(world.database().parent().expect("dir")).expect("data dir");
        let store = Store::open(&world.database(), 1 << 20).expect("store");
        store
            .put_streams(&[record(start, 601, "gamma", Status::NotFound)])
            .expect("put");
    }
    world.start(&[]);
    let base = world.api_url();
    let requeue = format!("{base}/api/v1/requeue");
    for auth in ["", "Bearer wrong", "Bearer s3cret-toke", "Basic s3cret-token"] {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth)]
        };
        assert_error(
            &request("POST", &requeue, &headers, Some(body)),
            401,
            "unauthorized",
            "Bearer",
        );
    }
    let good = [("Authorization", "Bearer s3cret-token")];
    assert_error(
        &request("POST", &requeue, &good, Some("{not json")),
        400,
        "bad_body",
        "JSON",
    );
    assert_error(
        &request("POST", &requeue, &good, Some(r#"{"since": 5, "until": 1}"#)),
        400,
        "bad_body",
        "before",
    );
    let huge = format!(
        r#"{{"since": 0, "until": 1, "pad": "{}"}}"#,
        "x".repeat(64 * 1024)
    );
    assert_error(
        &request("POST", &requeue, &good, Some(&huge)),
        413,
        "body_too_large",
        "bytes",
    );
    let answer = request("POST", &requeue, &good, Some(body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["requeued"], 1);
    // The requeued broadcast is probed once more and found.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = get(&format!("{base}/api/v1/vods/601")).json();
        if found["items"][0]["status"] == "found" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not re-probed: {found} {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // An admin lookup runs through the prober and can be followed while it runs.
    let lookups = format!("{base}/api/v1/lookups");
    let input = format!(r#"{{"streamer": "gamma", "stream_id": "601", "time": "{start}"}}"#);
    let started = request("POST", &lookups, &good, Some(&input));
    assert_eq!(started.status, 202, "{}", started.text());
    let location = started.header("location").expect("location").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let state = request("GET", &format!("{base}{location}"), &good, None).json();
        if state["state"] != "running" {
            break state;
        }
        assert!(Instant::now() < deadline, "lookup never finished: {state}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["state"], "found", "{done}");
    assert_eq!(done["domain"], world.cdn.base_url(2));
    assert_error(
        &request(
            "POST",
            &lookups,
            &good,
            Some(r#"{"streamer": "gamma", "stream_id": "x", "time": "1"}"#),
        ),
        400,
        "bad_body",
        "stream_id",
    );
    assert_error(
        &request("GET", &format!("{base}/api/v1/lookups/77"), &good, None),
        404,
        "not_found",
        "77",
    );
    world.stop();
    let records = world.records();
    assert_eq!(find(&records, 601)[0].status, Status::Found);
}

fn record(start: i64, stream_id: u64, login: &str, status: Status) -> StreamRecord {
    StreamRecord {
        start_unix: start,
        stream_id,
        streamer_id: 9000 + stream_id % 50,
        login: login.to_string(),
        title: format!("{login} {stream_id}"),
        game_id: "509658".into(),
        game_name: "Just Chatting".into(),
        language: "en".into(),
        is_mature: false,
        max_viewers: (stream_id % 997) as u32 + 10,
        first_seen: start,
        last_seen: start + 3600,
        ended_at: Some(start + 3600),
        status,
        public: None,
        probe: ProbeState::default(),
        archive: None,
    }
}

#[test]
fn paging_thousands_of_records_loses_and_repeats_nothing_while_new_ones_arrive() {
    let mut world = World::with_api(FAST, "");
    let base_time = now() - 30 * 86_400;
    {
        std::fs::create_dir_all(world.database().parent().expect("dir")).expect("data dir");
        let store = Store::open(&world.database(), 8 << 20).expect("store");
        let records: Vec<StreamRecord> = (0..3000u64)
            .map(|n| {
                record(
                    base_time + (n as i64) * 600,
                    70_000 + n,
                    &format!("ch{}", n % 50),
                    Status::NotFound,
                )
            })
            .collect();
        store.put_streams(&records).expect("put");
    }
    // New broadcasts go live (and get stored) while the client pages.
    let start = now() - 60;
    world.listing.set_streams(
        (0..20)
            .map(|n| stream(80_000 + n, 300 + n, &format!("new{n}"), start, 50))
            .collect(),
    );
    world.start(&[]);
    let base = world.api_url();
    for (sort, limit) in [("recent", 100), ("views", 77)] {
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let url = match &cursor {
                Some(cursor) => {
                    format!("{base}/api/v1/vods?sort={sort}&limit={limit}&status=not_found&cursor={cursor}")
                }
                None => format!("{base}/api/v1/vods?sort={sort}&limit={limit}&status=not_found"),
            };
            let page = get(&url).json();
            pages += 1;
            for item in page["items"].as_array().expect("items") {
                let key = (
                    item["start_unix"].as_i64().unwrap_or(0),
                    item["stream_id"].as_str().unwrap_or("").to_string(),
                );
                assert!(seen.insert(key.clone()), "{key:?} listed twice ({sort})");
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(pages < 1000, "paging never ends");
        }
        assert_eq!(seen.len(), 3000, "{sort}");
    }
    // And the unfiltered list pages through everything, new live broadcasts included.
    let mut total = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{base}/api/v1/vods?limit=500&cursor={cursor}"),
            None => format!("{base}/api/v1/vods?limit=500"),
        };
        let page = get(&url).json();
        total += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert!(total >= 3000, "{total}");
}

#[test]
fn overload_is_answered_503_at_once_and_slow_clients_are_cut_off() {
    let mut world = World::with_api(
        FAST,
        "max_concurrent_requests = 1\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"",
    );
    {
        std::fs::create_dir_all(world.database().parent().expect("dir")).expect("data dir");
        let store = Store::open(&world.database(), 8 << 20).expect("store");
        let base_time = now() - 86_400;
        let records: Vec<StreamRecord> = (0..2000u64)
            .map(|n| record(base_time + n as i64 * 30, 90_000 + n, "busy", Status::Pending))
            .collect();
        store.put_streams(&records).expect("put");
    }
    world.start(&[]);
    let base = world.api_url();
    // A slowloris client: half a request line, then nothing.
    let address = base.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&address).expect("connect");
    slow.write_all(b"GET /api/v1/vods HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let opened = Instant::now();
    // Many clients at once against one request slot: some are refused at once with 503.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = format!("{base}/api/v1/vods?limit=500");
            std::thread::spawn(move || {
                (0..15)
                    .map(|_| {
                        let answer = get(&url);
                        (
                            answer.status,
                            answer.header("retry-after").map(str::to_string),
                            answer.json(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .flat_map(|thread| thread.join().expect("client"))
        .collect();
    let refused: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 503).collect();
    let served = answers.iter().filter(|(status, _, _)| *status == 200).count();
    assert_eq!(refused.len() + served, answers.len(), "only 200 or 503");
    assert!(!refused.is_empty(), "no 503 with 16 clients on one slot");
    assert!(served > 0);
    for (_, retry_after, body) in &refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["error"]["code"], "unavailable");
    }
    // The slowloris connection was closed by the header timeout.
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buffer = [0u8; 1024];
    let ended = match slow.read(&mut buffer) {
        Ok(0) => true,
        Ok(n) => String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408"),
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        ended,
        "the slow client was not cut off ({:?} after it connected)",
        opened.elapsed()
    );
    // An idle keep-alive connection that sends nothing is closed too.
    let mut idle = TcpStream::connect(&address).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    let idle_since = Instant::now();
    assert!(matches!(idle.read(&mut buffer), Ok(0) | Err(_)));
    assert!(
        idle_since.elapsed() < Duration::from_secs(5),
        "{:?}",
        idle_since.elapsed()
    );
    // Well-behaved clients are still served.
    assert_eq!(get(&format!("{base}/healthz")).status, 200);
    // Huge headers are refused, not buffered.
    let mut big = TcpStream::connect(&address).expect("connect");
    let header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = big.write_all(header.as_bytes());
    big.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reply = Vec::new();
    let _ = big.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 431"), "{reply}");
}

#[test]
fn other_qualities_are_checked_with_spare_budget_and_served_as_a_master_playlist() {
    let mut world = World::with_api(FAST, "");
    let start = now() - 900;
    let mut b = Broadcast::new("delta", 701, &start.to_string(), vec![1]);
    b.qualities = ["chunked", "720p60", "480p30"].map(String::from).to_vec();
    world.cdn.add_broadcast(b);
    world
        .listing
        .set_streams(vec![stream(701, 71, "delta", start, 300)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    let item = loop {
        let items = get(&format!("{base}/api/v1/vods/701")).json();
        if items["items"][0]["qualities"].as_array().map_or(0, Vec::len) > 1 {
            break items["items"][0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "qualities never checked: {items} {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        item["qualities"],
        serde_json::json!(["chunked", "720p60", "480p30"])
    );
    let master_path = format!("/vods/701/{start}/master.m3u8");
    assert_eq!(item["master_playlist_url"], master_path.as_str());
    // One request per other quality folder of the module, only on the domain that holds it.
    let quality_paths: Vec<String> = world
        .paths_requested("delta", 701)
        .into_iter()
        .filter(|p| !p.contains("/chunked/"))
        .collect();
    assert_eq!(quality_paths.len(), 22, "{quality_paths:?}");
    assert_eq!(
        world
            .cdn
            .requests(1)
            .iter()
            .filter(|p| !p.contains("/chunked/"))
            .count(),
        22
    );

    let master = get(&format!("{base}{master_path}"));
    assert_eq!(master.status, 200);
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let text = master.text();
    let variants: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(variants, ["chunked.m3u8", "720p60.m3u8", "480p30.m3u8"], "{text}");
    assert_eq!(text.matches("#EXT-X-STREAM-INF:BANDWIDTH=").count(), 3, "{text}");
    // A variant is the archived playlist pointed at its own folder.
    let dir = vodprobe_sim::vod_dir("delta", 701, &start.to_string());
    let variant = get(&format!("{base}/vods/701/{start}/720p60.m3u8"));
    assert_eq!(variant.status, 200);
    let segments: Vec<String> = variant
        .text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert_eq!(segments.len(), 30);
    assert_eq!(segments[0], format!("{}{dir}/720p60/0.ts", world.cdn.base_url(1)));
    // Each variant segment is served by the CDN.
    let segment = request("GET", &segments[29], &[], None);
    assert_eq!(segment.status, 200);
    assert_error(
        &get(&format!("{base}/vods/701/{start}/1080p60.m3u8")),
        404,
        "not_found",
        "720p60",
    );
    assert_error(
        &get(&format!("{base}/vods/701/{start}/master.txt")),
        400,
        "bad_parameter",
        "quality",
    );
    assert_error(
        &get(&format!("{base}/vods/701/soon/master.m3u8")),
        400,
        "bad_parameter",
        "start_unix",
    );
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_quality_requests_total 22"),
        "{metrics}"
    );
    assert!(metrics.contains("vodprobe_quality_queue 0"), "{metrics}");
}

#[test]
fn quality_checks_pass_over_a_down_domain_and_drop_captures_whose_domain_is_removed() {
    let specs = (0..3).map(|_| vodprobe_sim::DomainSpec::healthy()).collect();
    let mut world = World::configured(
        specs,
        FAST,
        "kind = \"gql\"",
        "health = \"* * * * * *\"",
        "requests_per_second = 50",
    );
    let start = now() - 7200;
    // Two captures waiting for a quality check: the more viewed one on domain 0, which is down.
    {
        std::fs::create_dir_all(world.database().parent().expect("dir")).expect("data dir");
        let store = Store::open(&world.database(), 1 << 20).expect("store");
        for (stream_id, login, domain, viewers) in [(801, "echo", 0, 500), (802, "foxtrot", 1, 100)] {
            let mut broadcast = Broadcast::new(login, stream_id, &start.to_string(), vec![domain]);
            broadcast.qualities = ["chunked", "720p60"].map(String::from).to_vec();
            world.cdn.add_broadcast(broadcast);
            let mut found = record(start, stream_id, login, Status::Found);
            found.max_viewers = viewers;
            let base = world.cdn.base_url(domain);
            let dir = vodprobe_sim::vod_dir(login, stream_id, &start.to_string());
            found.archive = Some(vodprobe::record::ArchiveInfo {
                domain: base.clone(),
                domains: vec![base.clone()],
                timestamp_form: "unix".into(),
                ts: start.to_string(),
                url: format!("{base}{dir}/chunked/index-dvr.m3u8"),
                duration_seconds: 20.0,
                segments: 2,
                muted_segments: 0,
                container: vodprobe::playlist::Container::Ts,
                qualities: vec!["chunked".into()],
                fetched_at: start + 4000,
                ended: true,
                rebuilt: false,
            });
            let playlist = "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1.ts\n#EXT-X-ENDLIST\n";
            store.put_archived(&found, playlist).expect("put");
        }
    }
    world.cdn.set_fault(0, vodprobe_sim::Fault::Unavailable);
    world.start(&[]);
    let base = world.api_url();
    let qualities =
        |id: u64| get(&format!("{base}/api/v1/vods/{id}")).json()["items"][0]["qualities"].clone();
    let queue = || {
        get(&format!("{base}/metrics"))
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("vodprobe_quality_queue ").map(str::to_string))
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while qualities(802) != serde_json::json!(["chunked", "720p60"]) {
        assert!(
            Instant::now() < deadline,
            "the capture on the healthy domain waited behind the down one: {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(qualities(801), serde_json::json!(["chunked"]));
    assert_eq!(queue(), "1", "the capture on the down domain stays queued");
    // Its domain is removed from the configuration: the check can never happen; it leaves the
    // queue and keeps what the archive says.
    let path = world.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let block = format!(
        "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
        world.cdn.base_url(0)
    );
    assert!(text.contains(&block));
    std::fs::write(&path, text.replace(&block, "")).expect("edit");
    let deadline = Instant::now() + Duration::from_secs(15);
    while queue() != "0" {
        assert!(Instant::now() < deadline, "still queued: {}", world.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(qualities(801), serde_json::json!(["chunked"]));
    world.stop();
}
