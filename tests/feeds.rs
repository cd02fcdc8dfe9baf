//! The feeds of a running `serve` read by real clients: Python's `feedparser` parses every Atom
//! feed without complaint and finds the API's captures, titles and playable links in it; the
//! feeds answer 304 to both validators while unchanged and change their ETag with a new
//! capture; a channel's feeds follow it across a rename; ffprobe plays the first item of a channel's M3U.
//! The event feeds (all, per channel, per kind) hold what `GET /api/v1/events` holds, parse
//! the same way and answer 304 the same way. Without feedparser the test says
//! so and passes, unless `VODPROBE_REQUIRE_FEEDPARSER` is set (CI sets it after `pip install
//! feedparser`), where it fails.

use crate::api::{Answer, get, request};
use crate::player::ffprobe_available;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vodprobe_sim::Broadcast;

/// A title with markup, an ampersand and a control character XML 1.0 forbids.
const HOSTILE: &str = "<script>alert(1)</script> & \u{1}co";

fn feedparser_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import feedparser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("VODPROBE_REQUIRE_FEEDPARSER").is_none(),
            "VODPROBE_REQUIRE_FEEDPARSER is set but feedparser is not installed (python3 -m pip install feedparser)"
        );
        eprintln!("SKIPPED: feedparser not installed; `python3 -m pip install feedparser` to run this test");
    }
    found
}

/// What feedparser made of `body`: bozo, the feed's title and each entry's id, title,
/// summary and links.
fn parse(body: &[u8]) -> Value {
    const SCRIPT: &str = r#"
import feedparser, json, sys
d = feedparser.parse(sys.stdin.buffer.read())
print(json.dumps({
    "bozo": bool(d.bozo),
    "bozo_exception": str(d.get("bozo_exception", "")),
    "version": d.version,
    "title": d.feed.get("title"),
    "updated": d.feed.get("updated"),
    "entries": [{
        "id": e.get("id"),
        "title": e.get("title"),
        "summary": e.get("summary"),
        "updated": e.get("updated"),
        "links": [{"rel": l.get("rel"), "href": l.get("href"), "type": l.get("type")} for l in e.get("links", [])],
    } for e in d.entries],
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write feed");
    let out = child.wait_with_output().expect("feedparser");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("feedparser's JSON")
}

fn link<'a>(entry: &'a Value, rel: &str) -> Option<&'a str> {
    entry["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
}

/// The feed at `path`, parsed; asserts it is well-formed Atom.
fn atom(base: &str, path: &str) -> (Answer, Value) {
    let answer = get(&format!("{base}{path}"));
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    let parsed = parse(&answer.body);
    assert_eq!(parsed["bozo"], false, "{path}: {parsed}\n{}", answer.text());
    assert_eq!(parsed["version"], "atom10", "{parsed}");
    (answer, parsed)
}

fn found(base: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = get(&format!("{base}/api/v1/vods?status=found")).json();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() == count && items.iter().all(|item| item["segments_state"].is_string()) {
            return items;
        }
        assert!(Instant::now() < deadline, "no captures: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn feeds_parse_in_feedparser_answer_304_and_play() {
    if !feedparser_available() {
        return;
    }
    let mut world = World::with_api(FAST, "");
    let start = now() - 900;
    for (login, stream_id, at) in [("alpha", 701, start), ("beta", 702, start + 60)] {
        world
            .cdn
            .add_broadcast(Broadcast::new(login, stream_id, &at.to_string(), vec![1]));
    }
    let mut alpha = stream(701, 71, "alpha", start, 120);
    alpha.title = HOSTILE.to_string();
    world
        .listing
        .set_streams(vec![alpha, stream(702, 72, "beta", start + 60, 40)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let items = found(&base, 2);

    // All captures: one entry per capture, newest first, with the API's links and titles.
    let (all, parsed) = atom(&base, "/feeds/captures.atom");
    let entries = parsed["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), items.len(), "{parsed}");
    for (entry, item) in entries.iter().zip(&items) {
        let (id, start_unix) = (item["stream_id"].as_str().unwrap(), &item["start_unix"]);
        assert_eq!(entry["id"], format!("urn:vodprobe:capture:{id}:{start_unix}"));
        let playlist = format!("{base}{}", item["playlist_url"].as_str().expect("playable"));
        assert_eq!(link(entry, "enclosure"), Some(playlist.as_str()), "{entry}");
        let page = format!("{base}/#/vod/{id}/{start_unix}");
        assert_eq!(link(entry, "alternate"), Some(page.as_str()), "{entry}");
        let title = entry["title"].as_str().unwrap_or_default();
        assert!(
            title.starts_with(&format!("{}: ", item["login"].as_str().unwrap())),
            "{title}"
        );
        assert!(
            entry["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("segments ok"),
            "{entry}"
        );
    }
    let hostile = entries
        .iter()
        .find(|e| e["id"] == format!("urn:vodprobe:capture:701:{start}"));
    let title = hostile.and_then(|e| e["title"].as_str()).unwrap_or_default();
    assert!(title.contains("<script>alert(1)</script> & co"), "{title:?}");

    // A channel's feed, by its login in any case.
    let (_, alpha_feed) = atom(&base, "/feeds/channels/ALPHA.atom");
    let alpha_entries = alpha_feed["entries"].as_array().expect("entries");
    assert_eq!(alpha_entries.len(), 1, "{alpha_feed}");
    assert_eq!(alpha_feed["title"], "vodprobe: captures of alpha");
    assert_eq!(get(&format!("{base}/feeds/channels/nobody.atom")).status, 404);
    assert_eq!(get(&format!("{base}/feeds/captures.atom?limit=501")).status, 400);
    let (_, one) = atom(&base, "/feeds/captures.atom?limit=1");
    assert_eq!(one["entries"].as_array().map(Vec::len), Some(1));

    // Unchanged: both validators answer 304 with no body.
    let url = format!("{base}/feeds/captures.atom");
    let etag = all.header("etag").expect("etag").to_string();
    let modified = all.header("last-modified").expect("last-modified").to_string();
    for headers in [
        [("if-none-match", etag.as_str())],
        [("if-modified-since", modified.as_str())],
    ] {
        let again = request("GET", &url, &headers, None);
        assert_eq!(again.status, 304, "{headers:?}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
    }

    // The channel's M3U: its playable capture, which ffprobe plays.
    let m3u = get(&format!("{base}/feeds/channels/alpha.m3u"));
    assert_eq!(m3u.status, 200);
    assert!(m3u.header("etag").is_some() && m3u.header("last-modified").is_some());
    let text = m3u.text();
    let lines: Vec<&str> = text.lines().collect();
    let playlist = format!("{base}/vods/701/{start}.m3u8");
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "#EXTM3U");
    assert!(
        lines[1].starts_with("#EXTINF:") && lines[1].contains(",alpha: <script>"),
        "{text}"
    );
    assert_eq!(lines[2], playlist);
    let m3u_etag = m3u.header("etag").unwrap_or_default().to_string();
    let again = request(
        "GET",
        &format!("{base}/feeds/channels/alpha.m3u"),
        &[("if-none-match", &m3u_etag)],
        None,
    );
    assert_eq!(again.status, 304);
    if ffprobe_available() {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                lines[2],
            ])
            .output()
            .expect("run ffprobe");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "ffprobe: {stderr}"
        );
    }

    // The event feeds: what the events API holds, newest first, narrowed by channel and kind.
    let api_events = get(&format!("{base}/api/v1/events?limit=100")).json();
    let api_events = api_events["items"].as_array().cloned().unwrap_or_default();
    let (events_all, parsed) = atom(&base, "/feeds/events.atom");
    let entries = parsed["entries"].as_array().expect("entries");
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected: Vec<String> = api_events
        .iter()
        .map(|e| format!("urn:vodprobe:event:{}", e["id"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(ids, expected, "{parsed}");
    assert!(entries.len() >= 6, "{parsed}");
    let (_, captured) = atom(&base, "/feeds/events.atom?kind=captured");
    let captured = captured["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(captured.len(), 2);
    for entry in &captured {
        assert!(
            link(entry, "enclosure").is_some_and(|href| href.ends_with(".m3u8")),
            "{entry}"
        );
    }
    let (_, alpha_events) = atom(&base, "/feeds/channels/alpha/events.atom?kind=live,captured");
    assert_eq!(
        alpha_events["title"],
        "vodprobe: events of alpha (captured, live)"
    );
    let alpha_kinds: Vec<&str> = alpha_events["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(alpha_kinds, ["alpha: captured", "alpha: live"], "{alpha_events}");
    let hostile_summary = alpha_events["entries"][0]["summary"].as_str().unwrap_or_default();
    assert!(
        hostile_summary.contains("<script>alert(1)</script> & co"),
        "{hostile_summary:?}"
    );
    assert_eq!(
        get(&format!("{base}/feeds/channels/nobody/events.atom")).status,
        404
    );
    assert_eq!(
        get(&format!("{base}/feeds/events.atom?kind=exploded")).status,
        400
    );
    assert_eq!(get(&format!("{base}/feeds/captures.atom?kind=live")).status, 400);
    let events_url = format!("{base}/feeds/events.atom");
    let events_etag = events_all.header("etag").expect("etag").to_string();
    let events_modified = events_all
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    for headers in [
        [("if-none-match", events_etag.as_str())],
        [("if-modified-since", events_modified.as_str())],
    ] {
        let again = request("GET", &events_url, &headers, None);
        assert_eq!(again.status, 304, "{headers:?}");
        assert!(again.body.is_empty());
    }

    // A new capture changes the feed: a new ETag, and the old one no longer matches. It is
    // alpha's, under a new name: both names lead to the same channel feed.
    let later = now() - 300;
    world
        .cdn
        .add_broadcast(Broadcast::new("alphanew", 703, &later.to_string(), vec![2]));
    let asked = world.listing.requests();
    world
        .listing
        .set_streams(vec![stream(703, 71, "alphanew", later, 90)]);
    world.wait_until("gamma seen", 10, |w| w.listing.requests() >= asked + 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    found(&base, 3);
    let (changed, parsed) = atom(&base, "/feeds/captures.atom");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(
        parsed["entries"][0]["id"],
        format!("urn:vodprobe:capture:703:{later}")
    );
    let stale = request("GET", &url, &[("if-none-match", etag.as_str())], None);
    assert_eq!(stale.status, 200);
    let events_stale = request(
        "GET",
        &events_url,
        &[("if-none-match", events_etag.as_str())],
        None,
    );
    assert_eq!(events_stale.status, 200);
    let (_, by_old_name) = atom(&base, "/feeds/channels/alpha.atom");
    let (_, by_new_name) = atom(&base, "/feeds/channels/alphanew.atom");
    assert_eq!(
        by_old_name["entries"].as_array().map(Vec::len),
        Some(2),
        "{by_old_name}"
    );
    assert_eq!(by_old_name["entries"], by_new_name["entries"]);
    assert_eq!(by_new_name["title"], "vodprobe: captures of alphanew");
}
