//! The GQL decoders on hand-written answers: pages of streams, refusals, the videos query.

use super::*;
use crate::discover::tests::{FOLDER, decode_error, hint};

const T0: &str = "2024-01-01T00:00:00Z";
const T0_UNIX: i64 = 1_704_067_200;

fn node(id: &str, viewers: i64, created: &str) -> Value {
    json!({"id": id, "viewersCount": viewers, "createdAt": created,
           "broadcaster": {"id": "77", "login": "gmhikaru",
                           "broadcastSettings": {"title": "chess", "language": "PT_BR", "isMature": true}},
           "game": {"id": "743", "name": "Chess"}})
}

fn edge(cursor: &str, node: Value) -> Value {
    json!({"cursor": cursor, "node": node})
}

fn gql_body(edges: Vec<Value>, has_next: bool) -> Vec<u8> {
    let body = json!({"data": {"streams": {"pageInfo": {"hasNextPage": has_next}, "edges": edges}}});
    body.to_string().into_bytes()
}

#[test]
fn gql_valid_page_and_nulls() {
    let mut sparse = node("5", 9, "2022-09-24T19:02:09+02:00");
    sparse["game"] = Value::Null;
    sparse["broadcaster"]["broadcastSettings"] = json!({"title": null, "language": null, "isMature": null});
    let body = gql_body(
        vec![
            edge("c1", node("47198535725", 1200, "2022-09-24T17:02:09Z")),
            edge("c2", sparse),
        ],
        true,
    );
    let page = decode_gql(&body).expect("page");
    assert_eq!(
        (page.next_cursor.as_deref(), page.skipped, page.first_skip),
        (Some("c2"), 0, None)
    );
    let expected = Sighting {
        stream_id: 47198535725,
        streamer_id: 77,
        login: "gmhikaru".into(),
        title: "chess".into(),
        game_id: "743".into(),
        game_name: "Chess".into(),
        language: "pt-br".into(),
        is_mature: true,
        viewers: 1200,
        started_at: 1664038929,
    };
    assert_eq!(page.sightings[0], expected);
    // Null title, settings and game: empty strings and false, not a skipped edge.
    let blank = &page.sightings[1];
    let texts = [&blank.title, &blank.game_id, &blank.game_name, &blank.language];
    assert!(
        texts.iter().all(|t| t.is_empty()) && !blank.is_mature,
        "{blank:?}"
    );
    let last = decode_gql(&gql_body(vec![edge("", node("3", 5, T0))], false)).expect("page");
    assert_eq!(last.next_cursor, None);
}

#[test]
fn gql_malformed_edges_are_skipped_and_counted() {
    let mut no_broadcaster = node("4", 1, T0);
    no_broadcaster["broadcaster"] = Value::Null;
    let edges = vec![
        edge("a", node("1", 9, T0)),
        edge("b", Value::Null),
        edge("c", node("x1", 8, T0)),
        edge("d", node("3", 7, "yesterday")),
        edge("e", no_broadcaster),
        edge("f", node("6", -3, T0)),
    ];
    let page = decode_gql(&gql_body(edges.clone(), true)).expect("page");
    assert_eq!((page.sightings.len(), page.skipped), (1, 5));
    assert_eq!(page.first_skip.as_deref(), Some("edges[1].node: not an object"));
    // The reasons name the path of the problem.
    for (index, expected) in [
        (2, "edges[0].node.id: \"x1\" is not a numeric id"),
        (3, "edges[0].node.createdAt: not RFC 3339"),
        (4, "edges[0].node.broadcaster: missing"),
        (5, "edges[0].node.viewersCount: not a viewer count"),
    ] {
        let page = decode_gql(&gql_body(vec![edges[index].clone()], false)).expect("page");
        assert_eq!(page.first_skip.as_deref(), Some(expected));
    }
    // The cursor of a skipped last edge still continues the listing.
    let page = decode_gql(&gql_body(edges[..2].to_vec(), true)).expect("page");
    assert_eq!(page.next_cursor.as_deref(), Some("b"));
}

#[test]
fn gql_envelope_errors() {
    let errors = br#"{"errors":[{"message":"service timeout"},{"message":"again"}],"data":{"streams":null}}"#;
    let refused = decode_gql(errors);
    let expected = "GraphQL errors: service timeout; again";
    let status = |m: &str| m == expected;
    assert!(matches!(&refused, Err(DiscoverError::Status { status: 200, body_excerpt: m }) if status(m)));
    let lost = gql_body(vec![json!({"node": node("1", 1, T0)})], true);
    let no_info = br#"{"data":{"streams":{"edges":[]}}}"#;
    let no_edges = br#"{"data":{"streams":{"pageInfo":{"hasNextPage":false}}}}"#;
    for (body, expected) in [
        (&b"{\"data\":{}}"[..], "data.streams: missing"),
        (no_info, "data.streams.pageInfo.hasNextPage: missing"),
        (no_edges, "data.streams.edges: not a list"),
        (&lost, "edges[0].cursor: missing although hasNextPage"),
    ] {
        assert_eq!(decode_error(decode_gql(body)), expected);
    }
    assert!(decode_error(decode_gql(b"<html>")).starts_with("body: not JSON"));
}

fn gql_videos_body(urls: &[Value], products: Value) -> Vec<u8> {
    let edges: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"node": {"id": (100 + i).to_string(), "createdAt": T0, "seekPreviewsURL": url}}))
        .collect();
    json!({"data": {"user": {"videos": {"edges": edges}, "subscriptionProducts": products}}})
        .to_string()
        .into_bytes()
}

#[test]
fn gql_video_hints() {
    let cloudfront =
        format!("https://d2nvs31859zcd8.cloudfront.net/{FOLDER}/storyboards/1600000000-strip-0.jpg");
    let prefixed =
        "http://127.0.0.1:8080/vods/x/0123456789abcdef0123_a_b_c_315000000001_7/storyboards/5-strip-0.jpg";
    let urls = [
        json!(cloudfront),
        json!("https://vod-secure.twitch.tv/_404/404_processing_320x180.png"),
        Value::Null,
        json!(prefixed),
        json!(""),
        json!(12),
        // Twitch's storyboard form.
        json!(format!(
            "https://d1m7jfoe9zdc1j.cloudfront.net/{FOLDER}/storyboards/1600000001-info.json"
        )),
    ];
    let sub_only = json!([{"hasSubonlyVideoArchive": true}]);
    let hints = decode_gql_videos(&gql_videos_body(&urls, sub_only)).expect("hints");
    let prefixed_folder = "0123456789abcdef0123_a_b_c_315000000001_7";
    assert_eq!(
        hints,
        [
            hint(
                "https://d2nvs31859zcd8.cloudfront.net/",
                FOLDER,
                47198535725,
                "1664038929",
                false
            ),
            // The null URL: the video exists, named by its start, with no path.
            VideoHint {
                broadcast: VideoOf::StartedAt(T0_UNIX),
                ..hint("", "", 0, "", false)
            },
            hint(
                "http://127.0.0.1:8080/vods/x/",
                prefixed_folder,
                315000000001,
                "7",
                false
            ),
            hint(
                "https://d1m7jfoe9zdc1j.cloudfront.net/",
                FOLDER,
                47198535725,
                "1664038929",
                false
            ),
        ]
    );
    assert_eq!(
        hints[0].playlist_url("chunked"),
        format!("https://d2nvs31859zcd8.cloudfront.net/{FOLDER}/chunked/index-dvr.m3u8")
    );
    // Public unless some product has sub-only archives; a single object is read too.
    for (products, public) in [
        (json!([]), true),
        (Value::Null, true),
        (
            json!([{"hasSubonlyVideoArchive": false}, {"hasSubonlyVideoArchive": true}]),
            false,
        ),
        (json!({"hasSubonlyVideoArchive": false}), true),
    ] {
        let hints = decode_gql_videos(&gql_videos_body(&urls[..1], products)).expect("hints");
        assert_eq!(hints[0].public, public);
    }
    // An unknown user has no videos; envelope problems are errors.
    assert_eq!(decode_gql_videos(br#"{"data":{"user":null}}"#).expect("none"), []);
    let refused = decode_gql_videos(br#"{"errors":[{"message":"bad id"}],"data":null}"#);
    let bad_id = |m: &str| m == "GraphQL errors: bad id";
    assert!(matches!(&refused, Err(DiscoverError::Status { status: 200, body_excerpt: m }) if bad_id(m)));
    for (body, expected) in [
        (
            &br#"{"data":{"user":{"videos":null}}}"#[..],
            "data.user.videos.edges: not a list",
        ),
        (br#"{"data":{}}"#, "data.user: missing"),
        (br#"{}"#, "data: missing"),
    ] {
        match decode_gql_videos(body) {
            Err(DiscoverError::Decode(message)) => assert_eq!(message, expected),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
}

#[test]
fn gql_null_seek_previews_name_the_broadcast_by_its_start() {
    let body = |nodes: Vec<Value>| {
        let edges: Vec<Value> = nodes.into_iter().map(|node| json!({"node": node})).collect();
        json!({"data": {"user": {"videos": {"edges": edges}, "subscriptionProducts": []}}})
            .to_string()
            .into_bytes()
    };
    let video = |created: Value, preview: Option<Value>| {
        let mut node = json!({"id": "9", "createdAt": created});
        if let Some(preview) = preview {
            node["seekPreviewsURL"] = preview;
        }
        node
    };
    let hints = decode_gql_videos(&body(vec![
        video(json!(T0), Some(Value::Null)),
        // Another offset names the same instant.
        video(json!("2024-01-01T02:00:05+02:00"), Some(Value::Null)),
        // Without a readable start a null preview names nothing: left out.
        video(Value::Null, Some(Value::Null)),
        video(json!("yesterday"), Some(Value::Null)),
        video(json!(1_704_067_200), Some(Value::Null)),
        json!({"id": "10", "seekPreviewsURL": null}),
        // No seekPreviewsURL at all is not what the query asks for: left out.
        video(json!(T0), None),
    ]))
    .expect("hints");
    let at = |unix: i64| VideoHint {
        broadcast: VideoOf::StartedAt(unix),
        ..hint("", "", 0, "", true)
    };
    assert_eq!(hints, [at(T0_UNIX), at(T0_UNIX + 5)]);
    assert!(hints.iter().all(|h| !h.path_known()));
}

#[test]
fn gql_integrity_and_persisted_query_refusals_have_their_own_kinds() {
    let refused = json!({"data": {"streams": null},
                         "errors": [{"message": "failed integrity check", "path": ["streams"]}],
                         "extensions": {"challenge": {"type": "integrity"}}});
    let error = decode_gql(refused.to_string().as_bytes()).expect_err("refused");
    assert_eq!(error.kind(), "integrity");
    let persisted = json!({"errors": [{"message": "PersistedQueryNotFound"}]});
    let error = decode_gql(persisted.to_string().as_bytes()).expect_err("refused");
    assert_eq!(error.kind(), "persisted_query");
}

#[test]
fn gql_mute_info_says_whether_a_video_was_muted() {
    let url = format!("https://d2nvs31859zcd8.cloudfront.net/{FOLDER}/storyboards/1-info.json");
    let node = |mute_info: Option<Value>| {
        let mut node = json!({"id": "9", "createdAt": T0, "seekPreviewsURL": url});
        if let Some(info) = mute_info {
            node["muteInfo"] = info;
        }
        json!({"node": node})
    };
    let cases = [
        (
            Some(json!({"mutedSegmentConnection": {"nodes": [{"offset": 120, "duration": 30}]}})),
            Some(true),
        ),
        (Some(json!({"mutedSegmentConnection": null})), Some(false)),
        (
            Some(json!({"mutedSegmentConnection": {"nodes": []}})),
            Some(false),
        ),
        // Not served, not asked, or unreadable: unknown.
        (Some(Value::Null), None),
        (None, None),
        (Some(json!({})), None),
        (Some(json!({"mutedSegmentConnection": {}})), None),
        (
            Some(json!({"mutedSegmentConnection": {"nodes": [{"offset": "x", "duration": 30}]}})),
            None,
        ),
    ];
    let edges: Vec<Value> = cases.iter().map(|(info, _)| node(info.clone())).collect();
    let body = json!({"data": {"user": {"videos": {"edges": edges}, "subscriptionProducts": []}}});
    let hints = decode_gql_videos(body.to_string().as_bytes()).expect("hints");
    // A malformed muteInfo costs only the answer about muting, not the video.
    assert_eq!(hints.len(), cases.len());
    for (hint, (info, expected)) in hints.iter().zip(&cases) {
        assert_eq!(hint.muted, *expected, "{info:?}");
        assert!(hint.path_known());
    }
    // The query asks for it.
    assert!(GQL_VIDEOS_QUERY.contains("muteInfo { mutedSegmentConnection { nodes { offset duration } } }"));
}
