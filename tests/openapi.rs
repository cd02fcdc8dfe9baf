//! The served OpenAPI description against the real server: every documented operation is
//! called, and each answer (successes and error envelopes) validates against the schema the
//! description gives for its status, with formats (date-time) checked. A route that answers
//! but is not described, or a described one never exercised, fails the test.

use crate::api::{Answer, captured_world, get, request};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

struct Checker {
    doc: Value,
    base: String,
    exercised: BTreeSet<(String, String, u16)>,
}

impl Checker {
    /// Calls `method path` (the template `doc_path` in the description) and validates the answer.
    fn call(
        &mut self,
        method: &str,
        doc_path: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let answer = request(method, &format!("{}{path}", self.base), headers, body);
        self.check(method, doc_path, &answer);
        answer
    }

    /// A GET without headers (most calls).
    fn get(&mut self, doc_path: &str, path: &str) -> Answer {
        self.call("GET", doc_path, path, &[], None)
    }

    fn check(&mut self, method: &str, doc_path: &str, answer: &Answer) {
        let operation = &self.doc["paths"][doc_path][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {doc_path} is not described");
        let status = answer.status.to_string();
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {doc_path} answered {status}, which is not described: {}",
            answer.text()
        );
        self.exercised
            .insert((method.to_string(), doc_path.to_string(), answer.status));
        let Some(content) = response["content"].as_object() else {
            assert!(
                answer.body.is_empty(),
                "{method} {doc_path} {status}: undescribed body"
            );
            return;
        };
        let ctype = answer.header("content-type").unwrap_or("");
        let media = ctype.split(';').next().unwrap_or("").trim();
        let described = &content
            .get(media)
            .unwrap_or_else(|| panic!("{method} {doc_path} {status}: content-type {ctype} not described"))["schema"];
        if media != "application/json" {
            return;
        }
        // Validate against the whole description so `$ref`s into components resolve.
        let mut root = self.doc.clone();
        let map = root.as_object_mut().expect("object");
        for (key, value) in described.as_object().expect("schema object") {
            map.insert(key.clone(), value.clone());
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|error| panic!("the schema of {method} {doc_path} {status} is invalid: {error}"));
        let instance = answer.json();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {doc_path} {status} does not match its schema:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

#[test]
fn every_described_route_answers_as_described() {
    let (world, start) = captured_world("admin_token = \"t0ken\"");
    let base = world.api_url();
    let served = get(&format!("{base}/api/v1/openapi.json"));
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut c = Checker {
        doc,
        base,
        exercised: BTreeSet::new(),
    };
    c.check("GET", "/api/v1/openapi.json", &served);

    // Lists: full items, a cursor, each filter, errors.
    let page = c.get("/api/v1/vods", "/api/v1/vods?limit=1").json();
    let cursor = page["next_cursor"].as_str().expect("a second page").to_string();
    let last = c
        .get("/api/v1/vods", &format!("/api/v1/vods?limit=1&cursor={cursor}"))
        .json();
    assert_eq!(last["next_cursor"], Value::Null);
    for query in [
        "status=found&sort=views",
        "streamer=alpha&public=false&language=de&game_id=21779",
        "streamer_id=51&since=0&until=2000000000",
        "status=not_found",
        "segments_state=unchecked&sort=views",
        "segments_state=ok&streamer=alpha",
        "lost_since=2024-05-01T18:00:00Z",
        "at_risk=true&status=found",
        "at_risk=false",
    ] {
        c.get("/api/v1/vods", &format!("/api/v1/vods?{query}"));
    }
    for bad in [
        "limit=0",
        "status=gone",
        "segments_state=lost",
        "lost_since=soon",
        "at_risk=yes",
        "sort=old",
        "since=yesterday",
        "cursor=zzz",
        "colour=red",
    ] {
        assert_eq!(c.get("/api/v1/vods", &format!("/api/v1/vods?{bad}")).status, 400);
    }
    let restarts = "/api/v1/vods/{stream_id}";
    assert_eq!(c.get(restarts, "/api/v1/vods/501").status, 200);
    assert_eq!(c.get(restarts, "/api/v1/vods/999").status, 404);
    assert_eq!(c.get(restarts, "/api/v1/vods/x1").status, 400);

    // The playlist: 200, 304, 404, 400.
    let playlist = "/vods/{stream_id}/{start_unix}.m3u8";
    let found = c.get(playlist, &format!("/vods/501/{start}.m3u8"));
    assert_eq!(found.status, 200);
    let etag = found.header("etag").expect("etag").to_string();
    let same = c.call(
        "GET",
        playlist,
        &format!("/vods/501/{start}.m3u8"),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(same.status, 304);
    assert_eq!(c.get(playlist, "/vods/501/1.m3u8").status, 404);
    assert_eq!(c.get(playlist, "/vods/501/soon.m3u8").status, 400);
    // Nothing was muted: audio=original falls back to the muted rendering and says so.
    let original = c.get(playlist, &format!("/vods/501/{start}.m3u8?audio=original"));
    assert_eq!(original.status, 200);
    assert_eq!(original.header("x-vodprobe-audio"), Some("muted"));
    assert_eq!(
        c.get(playlist, &format!("/vods/501/{start}.m3u8?audio=loud"))
            .status,
        400
    );

    // Master and per-quality playlists (alpha has one quality: the master lists it alone).
    let variant = "/vods/{stream_id}/{start_unix}/{variant}";
    assert_eq!(
        c.get(variant, &format!("/vods/501/{start}/master.m3u8")).status,
        200
    );
    assert_eq!(
        c.get(variant, &format!("/vods/501/{start}/chunked.m3u8")).status,
        200
    );
    assert_eq!(
        c.get(variant, &format!("/vods/501/{start}/720p60.m3u8")).status,
        404
    );
    assert_eq!(c.get(variant, &format!("/vods/501/{start}/x.mp4")).status, 400);

    // Search, counts, domains, health, metrics.
    let streamers = c.get("/api/v1/streamers", "/api/v1/streamers?q=ALP").json();
    assert_eq!(streamers["items"][0]["login"], "alpha");
    assert_eq!(c.get("/api/v1/streamers", "/api/v1/streamers").status, 400);
    c.get("/api/v1/categories", "/api/v1/categories");
    c.get("/api/v1/languages", "/api/v1/languages");
    assert_eq!(c.get("/api/v1/languages", "/api/v1/languages?x=1").status, 400);
    c.get("/api/v1/domains", "/api/v1/domains");
    let series = c.get("/api/v1/status/series", "/api/v1/status/series").json();
    let buckets = series["items"].as_array().expect("items");
    assert!(
        !buckets.is_empty() && !series["domains"].as_array().expect("domains").is_empty(),
        "{series}"
    );
    assert!(
        buckets
            .iter()
            .map(|b| b["captures"].as_u64().unwrap_or(0))
            .sum::<u64>()
            > 0,
        "{series}"
    );
    assert_eq!(
        c.get("/api/v1/status/series", "/api/v1/status/series?x=1").status,
        400
    );
    c.get("/healthz", "/healthz");
    let events = c.get("/api/v1/events", "/api/v1/events?limit=1&order=asc").json();
    assert!(!events["items"].as_array().expect("items").is_empty(), "{events}");
    assert_eq!(events["items"][0]["login"], "alpha", "{events}");
    if let Some(cursor) = events["next_cursor"].as_str() {
        c.get(
            "/api/v1/events",
            &format!("/api/v1/events?limit=1&order=asc&cursor={cursor}"),
        );
    }
    c.get(
        "/api/v1/events",
        "/api/v1/events?streamer=alpha&kind=live,captured&since=0",
    );
    assert_eq!(c.get("/api/v1/events", "/api/v1/events?order=up").status, 400);

    // Feeds: Atom and M3U, a revalidation, errors.
    let feed = c.get("/feeds/captures.atom", "/feeds/captures.atom?limit=1");
    assert_eq!(feed.status, 200);
    let etag = feed.header("etag").expect("etag").to_string();
    let unchanged = c.call(
        "GET",
        "/feeds/captures.atom",
        "/feeds/captures.atom?limit=1",
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(unchanged.status, 304);
    assert_eq!(
        c.get("/feeds/captures.atom", "/feeds/captures.atom?limit=0")
            .status,
        400
    );
    let channel = "/feeds/channels/{file}";
    assert_eq!(c.get(channel, "/feeds/channels/alpha.atom").status, 200);
    assert_eq!(c.get(channel, "/feeds/channels/alpha.m3u").status, 200);
    assert_eq!(c.get(channel, "/feeds/channels/nobody.m3u").status, 404);
    let events = "/feeds/events.atom";
    let feed = c.get(events, "/feeds/events.atom?kind=live,captured&limit=5");
    assert_eq!(feed.status, 200);
    let etag = feed.header("etag").expect("etag").to_string();
    let unchanged = c.call(
        "GET",
        events,
        "/feeds/events.atom?kind=live,captured&limit=5",
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(unchanged.status, 304);
    assert_eq!(c.get(events, "/feeds/events.atom?kind=nope").status, 400);
    let channel_events = "/feeds/channels/{login}/events.atom";
    assert_eq!(
        c.get(channel_events, "/feeds/channels/alpha/events.atom?kind=captured")
            .status,
        200
    );
    assert_eq!(
        c.get(channel_events, "/feeds/channels/nobody/events.atom").status,
        404
    );
    c.get("/metrics", "/metrics");

    // Admin: a lookup followed to its end, auth failures, bad bodies, requeue.
    let auth = [("Authorization", "Bearer t0ken")];
    let body = format!(
        r#"{{"streamer": "beta", "stream_id": "502", "time": "{}"}}"#,
        start + 60
    );
    let started = c.call("POST", "/api/v1/lookups", "/api/v1/lookups", &auth, Some(&body));
    assert_eq!(started.status, 202, "{}", started.text());
    let location = started.header("location").expect("location").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = c
            .call("GET", "/api/v1/lookups/{id}", &location, &auth, None)
            .json();
        if state["state"] != "running" {
            assert_eq!(state["state"], "found", "{state}");
            break;
        }
        assert!(Instant::now() < deadline, "lookup never finished: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        c.call("GET", "/api/v1/lookups/{id}", "/api/v1/lookups/77", &auth, None)
            .status,
        404
    );
    assert_eq!(
        c.call("POST", "/api/v1/lookups", "/api/v1/lookups", &[], Some(&body))
            .status,
        401
    );
    let bad_body = c.call(
        "POST",
        "/api/v1/lookups",
        "/api/v1/lookups",
        &auth,
        Some("{\"streamer\": 1}"),
    );
    assert_eq!(bad_body.status, 400);
    let huge = format!("{{\"streamer\": \"{}\"}}", "x".repeat(20_000));
    assert_eq!(
        c.call("POST", "/api/v1/requeue", "/api/v1/requeue", &auth, Some(&huge))
            .status,
        413
    );
    let range = r#"{"since": 0, "until": "2033-05-18T03:33:20Z"}"#;
    let requeued = c.call("POST", "/api/v1/requeue", "/api/v1/requeue", &auth, Some(range));
    assert_eq!(requeued.status, 200, "{}", requeued.text());
    assert_eq!(
        c.call(
            "GET",
            "/api/v1/lookups/{id}",
            &location,
            &[("Authorization", "Bearer no")],
            None
        )
        .status,
        401
    );

    // Every described operation was called and answered a described success.
    let described: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    for (method, path) in &described {
        assert!(
            c.exercised
                .iter()
                .any(|(m, p, status)| m == method && p == path && *status < 300),
            "{method} {path} is described but was never answered with a success"
        );
    }
    // And an undescribed route answers the error envelope the description documents.
    let unknown = get(&format!("{}/api/v1/nothing", c.base));
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("openapi.json")
    );
}
