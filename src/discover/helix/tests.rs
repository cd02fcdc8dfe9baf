//! The Helix decoders on hand-written answers, and the request arithmetic (cursor and secret
//! encoding, the wait until the quota's reset). Token refresh and the quota against the
//! simulated listing are exercised through `Source` in `discover/tests.rs`.

use serde_json::json;

use super::*;
use crate::discover::tests::{FOLDER, decode_error, hint};

#[test]
fn helix_items_and_pagination() {
    let item = json!({"id": "9", "user_id": "8", "user_login": "a_b", "game_id": "", "game_name": "",
                      "type": "live", "title": "t", "viewer_count": 5_000_000_000u64,
                      "started_at": "2021-03-10T15:04:21Z", "language": "en", "is_mature": false});
    let mut bad = item.clone();
    bad["viewer_count"] = json!("many");
    let body = json!({"data": [item, bad, 3], "pagination": {"cursor": "eyJiIjp7"}}).to_string();
    let page = decode_helix(body.as_bytes()).expect("page");
    let first = &page.sightings[0];
    assert_eq!((first.viewers, first.started_at), (u32::MAX, 1615388661));
    assert_eq!((first.login.as_str(), page.sightings.len()), ("a_b", 1));
    let skip = page.first_skip.as_deref();
    assert_eq!(
        (page.skipped, skip),
        (2, Some("data[1].viewer_count: not a viewer count"))
    );
    assert_eq!(page.next_cursor.as_deref(), Some("eyJiIjp7"));
    let last = decode_helix(br#"{"data":[],"pagination":{}}"#).expect("page");
    assert_eq!(last.next_cursor, None);
    assert_eq!(
        decode_error(decode_helix(br#"{"pagination":{}}"#)),
        "data: not a list"
    );
}

#[test]
fn helix_video_hints() {
    let cf = format!(
        "https://static-cdn.jtvnw.net/cf_vods/d2nvs31859zcd8/{FOLDER}//thumb/thumb0-%{{width}}x%{{height}}.jpg"
    );
    let direct = format!("https://vod-secure.twitch.tv/{FOLDER}/thumb/thumb0-%{{width}}x%{{height}}.jpg");
    let item = |url: &str, viewable: Value| json!({"id": "1", "stream_id": "47198535725", "thumbnail_url": url, "viewable": viewable});
    let mut no_stream = item(&cf, json!("public"));
    no_stream["stream_id"] = Value::Null;
    let body = json!({"data": [
        item(&cf, json!("public")),
        item(&direct, json!("private")),
        // Live and processing videos have no usable thumbnail yet: hints without a path.
        item("", json!("public")),
        item("https://vod-secure.twitch.tv/_404/404_processing_%{width}x%{height}.png", json!("public")),
        item(&format!("https://static-cdn.jtvnw.net/s3_vods/{FOLDER}/thumb/x.jpg"), json!("public")),
        json!({"id": "2"}),
        7,
        no_stream,
        item(&direct, Value::Null),
    ], "pagination": {}});
    let hints = decode_helix_videos(body.to_string().as_bytes()).expect("hints");
    let cloudfront = "https://d2nvs31859zcd8.cloudfront.net/";
    let twitch = "https://vod-secure.twitch.tv/";
    let (id, ts) = (47198535725, "1664038929");
    assert_eq!(
        hints,
        [
            hint(cloudfront, FOLDER, id, ts, true),
            hint(twitch, FOLDER, id, ts, false),
            // Placeholders: the video exists and is public, its path is not known yet.
            hint("", "", id, "", true),
            hint("", "", id, "", true),
            hint(cloudfront, FOLDER, id, ts, true),
            hint(twitch, FOLDER, id, ts, true),
        ]
    );
    assert!(matches!(decode_helix_videos(b"{}"), Err(DiscoverError::Decode(m)) if m == "data: not a list"));
}

#[test]
fn encoding_and_waits() {
    assert_eq!(encode_component("a+b/c=d é"), "a%2Bb%2Fc%3Dd%20%C3%A9");
    assert_eq!(until(100, 40), Duration::from_secs(60));
    assert_eq!(until(40, 100), Duration::from_secs(1));
}

#[test]
fn helix_muted_segments_say_whether_a_video_was_muted() {
    let url = format!("https://vod-secure.twitch.tv/{FOLDER}/thumb/thumb0-%{{width}}x%{{height}}.jpg");
    let item = |segments: Option<Value>| {
        let mut item =
            json!({"id": "1", "stream_id": "47198535725", "thumbnail_url": url, "viewable": "public"});
        if let Some(segments) = segments {
            item["muted_segments"] = segments;
        }
        item
    };
    let cases = [
        // Twitch's own example answer.
        (Some(json!([{"duration": 30, "offset": 120}])), Some(true)),
        (Some(Value::Null), Some(false)),
        (Some(json!([])), Some(false)),
        // Left out (withheld, older answers) or unreadable: unknown.
        (None, None),
        (Some(json!("30@120")), None),
        (Some(json!([{"duration": 30}])), None),
    ];
    let items: Vec<Value> = cases.iter().map(|(segments, _)| item(segments.clone())).collect();
    let body = json!({"data": items, "pagination": {}}).to_string();
    let hints = decode_helix_videos(body.as_bytes()).expect("hints");
    assert_eq!(hints.len(), cases.len());
    for (hint, (segments, expected)) in hints.iter().zip(&cases) {
        assert_eq!(hint.muted, *expected, "{segments:?}");
    }
    // The placeholder thumbnail of a processing video carries the answer too.
    let processing = json!({"data": [{"stream_id": "5", "thumbnail_url": "", "muted_segments": null}]});
    let hints = decode_helix_videos(processing.to_string().as_bytes()).expect("hints");
    assert_eq!((hints[0].path_known(), hints[0].muted), (false, Some(false)));
}
