//! The status page's series through the real `serve`: a capture, the CDN requests it cost and
//! the domain that answered appear in `GET /api/v1/status/series`, and a restart keeps them
//! (the series is saved in the store's state table at shutdown) without counting them twice.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use vodprobe_sim::Broadcast;

const DOMAIN: usize = 1;

fn series_at(base: &str) -> Value {
    let answer = get(&format!("{base}/api/v1/status/series"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

fn total(series: &Value, field: &str) -> u64 {
    series["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|bucket| bucket[field].as_u64().expect("a count"))
        .sum()
}

#[test]
fn a_capture_and_its_requests_are_in_the_series_and_a_restart_keeps_them() {
    let mut world = World::healthy(FAST);
    let start = now() - 900;
    world
        .cdn
        .add_broadcast(Broadcast::new("charted", 2401, &start.to_string(), vec![DOMAIN]));
    world
        .listing
        .set_streams(vec![stream(2401, 241, "charted", start, 100)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    // The broadcast ended: it is probed and captured.
    world.listing.set_streams(vec![]);
    world.wait_until("the capture in the series", 30, |w| {
        total(&series_at(&w.api_url()), "captures") == 1
    });
    let before = series_at(&world.api_url());
    let requests = total(&before, "requests");
    assert!(requests > 0, "the probe's requests are counted: {before}");
    let last = before["items"]
        .as_array()
        .expect("items")
        .last()
        .cloned()
        .expect("a bucket");
    assert!(
        last["budget_used"].as_f64().expect("budget_used") > 0.0,
        "{before}"
    );
    let holder = world.cdn.base_url(DOMAIN);
    assert_eq!(last["domains"][&holder], "up", "{before}");
    assert_eq!(
        before["domains"].as_array().expect("domains").len(),
        3,
        "every enabled domain is sampled: {before}"
    );
    assert_eq!(before["bucket_seconds"], 300);

    world.stop();
    world.start(&[]);
    world.wait_until("the second start's API", 20, |w| {
        w.log().matches("API listening on http://").count() == 2
    });
    // The log names the second start's port last.
    let log = world.log();
    let address = log
        .rsplit("API listening on http://")
        .next()
        .and_then(|rest| rest.split('/').next())
        .expect("an address");
    let after = series_at(&format!("http://{address}"));
    assert_eq!(total(&after, "captures"), 1, "kept, not counted again: {after}");
    assert!(
        total(&after, "requests") >= requests,
        "the requests before the restart are kept: {before} {after}"
    );
    world.stop();
}
