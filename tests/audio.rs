//! Original audio while it lasts, through `serve` against the simulated CDN: a muted capture's
//! `-unmuted` originals are asked (HEAD, first and last, on the holding domain) in the
//! background; while they answer, `?audio=original` serves them and a real player reads them;
//! once they answer 403, the next check says `gone` and the route falls back to the muted
//! copies, saying so in `X-Vodprobe-Audio`. All within the request budget.

use crate::api::get;
use crate::player::ffprobe_available;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use vodprobe_sim::{Broadcast, DomainSpec, LoggedRequest};

const DOMAIN: usize = 1;

/// FAST, with originals asked again every second while they answer.
fn pipeline() -> String {
    format!("{FAST}\noriginal_audio_every = \"1s\"")
}

/// A broadcast of 9 segments (4 s each, a 2.5 s tail) on `domain` whose segments 2 and 3 were
/// muted by a pass that ran before any clock was set: their originals answer until
/// `expire_unmuted`.
fn muted_broadcast(world: &World, login: &str, stream_id: u64, start: i64, domain: usize) -> usize {
    let mut b = Broadcast::new(login, stream_id, &start.to_string(), vec![domain]);
    b.segments = 9;
    b.segment_seconds = 4.0;
    b.total_seconds = 34.5;
    b.muted.push(2..4);
    let id = world.cdn.add_broadcast(b);
    world.cdn.mute(id);
    id
}

/// The API's item for the broadcast once `original_audio` reads `state`.
fn item_when(world: &World, stream_id: u64, state: &str) -> Value {
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&format!("{base}/api/v1/vods/{stream_id}"));
        if answer.status == 200 {
            let item = answer.json()["items"][0].clone();
            if item["original_audio"] == state {
                return item;
            }
        }
        assert!(
            Instant::now() < deadline,
            "original_audio never {state}: {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn original_requests(world: &World, domain: usize) -> Vec<LoggedRequest> {
    world
        .cdn
        .request_log(domain)
        .into_iter()
        .filter(|r| r.target.contains("-unmuted"))
        .collect()
}

/// ffprobe reads every segment of `url`: the whole 34.5 s of 24 ms frames, no complaint.
fn assert_plays(url: &str) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["format=duration:stream=nb_read_packets"])
        .args(["-of", "default=noprint_wrappers=1", url])
        .output()
        .expect("run ffprobe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}\n{stdout}");
    let packets: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("nb_read_packets="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {stdout}"));
    assert_eq!(packets, (34.5f64 / 0.024).ceil() as u64, "{stdout}");
}

#[test]
fn the_original_audio_is_served_while_it_answers_and_falls_back_after() {
    let mut world = World::healthy(&pipeline());
    let start = now() - 900;
    let id = muted_broadcast(&world, "origin", 701, start, DOMAIN);
    world
        .listing
        .set_streams(vec![stream(701, 71, "origin", start, 100)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);

    let item = item_when(&world, 701, "available");
    assert!(item["original_audio_seen_at"].is_string(), "{item}");
    // The rule: a day after the hour the -unmuted listing was first captured in.
    let until = chrono::DateTime::parse_from_rfc3339(item["original_audio_until"].as_str().expect("until"))
        .expect("date")
        .timestamp();
    let fetched = chrono::DateTime::parse_from_rfc3339(item["fetched_at"].as_str().expect("fetched"))
        .expect("date")
        .timestamp();
    assert!(
        until % 3_600 == 0 && (until - 86_400..until - 82_800).contains(&fetched),
        "{item}"
    );
    // The check asks originals only, with HEAD, at most two a check.
    let asked = original_requests(&world, DOMAIN);
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r.method == "HEAD"),
        "{asked:?}"
    );

    let base = world.api_url();
    let url = format!("{base}/vods/701/{start}.m3u8");
    let original = get(&format!("{url}?audio=original"));
    assert_eq!(original.status, 200);
    assert_eq!(original.header("x-vodprobe-audio"), Some("original"));
    let text = original.text();
    assert!(
        text.contains("/2-unmuted.ts") && text.contains("/3-unmuted.ts") && !text.contains("-muted.ts"),
        "{text}"
    );
    // The originals it names answer.
    for uri in text.lines().filter(|l| l.contains("-unmuted")) {
        assert_eq!(get(uri).status, 200, "{uri}");
    }
    // Without the parameter, the muted rewrite as before, and no header.
    let muted = get(&url);
    assert!(muted.text().contains("/2-muted.ts") && !muted.text().contains("unmuted"));
    assert_eq!(muted.header("x-vodprobe-audio"), None);
    if ffprobe_available() {
        assert_plays(&format!("{url}?audio=original"));
    }

    // Twitch's day is over: the originals answer 403; the next check notices.
    world.cdn.expire_unmuted(id);
    let item = item_when(&world, 701, "gone");
    assert!(item["original_audio_seen_at"].is_string(), "{item}");
    assert_eq!(item["original_audio_until"], Value::Null, "{item}");
    assert_eq!(item["playable"], true, "the muted copies still play: {item}");
    let fallback = get(&format!("{url}?audio=original"));
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.header("x-vodprobe-audio"), Some("muted"));
    assert_eq!(
        fallback.text(),
        muted.text(),
        "the muted rewrite, as without the parameter"
    );
    if ffprobe_available() {
        assert_plays(&format!("{url}?audio=original"));
    }
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_original_audio_checks_total{result=\"gone\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vodprobe_original_audio_checks_total{result=\"available\"}"),
        "{metrics}"
    );
    // The checks' HEADs (the GETs are this test's and ffprobe's).
    let requests = original_requests(&world, DOMAIN)
        .iter()
        .filter(|r| r.method == "HEAD")
        .count();
    assert!(
        metrics.contains(&format!(
            "vodprobe_original_audio_check_requests_total {requests}"
        )),
        "{requests} requests for originals: {metrics}"
    );
    let page = get(&format!("{base}/web/app.js")).text();
    assert!(
        page.contains("audio=original"),
        "the page offers the original audio"
    );
}

#[test]
fn original_audio_checks_stay_within_the_request_budget() {
    const RATE: usize = 4;
    let specs = (0..3).map(|_| DomainSpec::healthy()).collect();
    let limits = format!("requests_per_second = {RATE}");
    let mut world = World::configured(
        specs,
        &pipeline(),
        "kind = \"gql\"",
        "health = \"0 0 * * * *\"",
        &limits,
    );
    let start = now() - 900;
    let streams: Vec<_> = (0..4u64)
        .map(|n| {
            let login = format!("loud{n}");
            muted_broadcast(&world, &login, 720 + n, start, (n % 3) as usize);
            stream(720 + n, 720 + n, &login, start, 50 + n as u32)
        })
        .collect();
    world.listing.set_streams(streams);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    // Every capture's originals asked at least three times (checks every second of each).
    world.wait_until("repeated original-audio checks", 60, |w| {
        (0..4u64).all(|n| {
            let needle = format!("_loud{n}_{}_", 720 + n);
            (0..3)
                .flat_map(|d| original_requests(w, d))
                .filter(|r| r.target.contains(&needle))
                .count()
                >= 6
        })
    });
    let mut arrivals: Vec<Instant> = (0..3).flat_map(|d| world.cdn.arrivals(d)).collect();
    arrivals.sort();
    crate::segments::assert_within_budget(&arrivals, RATE);
}
