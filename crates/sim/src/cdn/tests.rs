//! Unit tests for the simulated CDN (kept apart from `cdn.rs` only for file length).

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn agent(timeout_ms: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(timeout_ms)))
        .build()
        .into()
}

/// GET with a 300 ms budget; (status, body).
fn get(url: &str) -> (u16, String) {
    let mut resp = agent(300).get(url).call().expect("request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn cdn(n: usize) -> SimCdn {
    SimCdn::start((0..n).map(|_| DomainSpec::healthy()).collect()).expect("start")
}

fn small(domains: Vec<usize>) -> Broadcast {
    let mut b = Broadcast::new("GMHikaru", 47198535725, "1664038929", domains);
    b.segments = 3;
    b.total_seconds = 25.5;
    b
}

fn url(c: &SimCdn, domain: usize, id: BroadcastId, file: &str) -> String {
    let pl = c.playlist_path(id, "chunked");
    format!("{}{}", c.base_url(domain), pl.replace("index-dvr.m3u8", file))
}

#[test]
fn path_test_vector() {
    fn shareable<T: Send + Sync>() {}
    shareable::<SimCdn>();
    assert_eq!(
        vod_dir("GMHikaru", 47198535725, "1664038929"),
        "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929"
    );
}

#[test]
fn serves_exact_playlist_on_its_domain_only() {
    let c = cdn(2);
    let id = c.add_broadcast(small(vec![0]));
    assert_eq!(
        c.playlist_path(id, "chunked"),
        "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929/chunked/index-dvr.m3u8"
    );
    let expected = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n\
                    #ID3-EQUIV-TDTG:2022-09-24T17:02:09\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
                    #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TWITCH-ELAPSED-SECS:0.000\n\
                    #EXT-X-TWITCH-TOTAL-SECS:25.500\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1.ts\n\
                    #EXTINF:5.500,\n2.ts\n#EXT-X-ENDLIST\n";
    assert_eq!(c.playlist_text(id, "chunked").as_deref(), Some(expected));
    assert_eq!(
        get(&url(&c, 0, id, "index-dvr.m3u8")),
        (200, expected.to_string())
    );
    let (status, body) = get(&url(&c, 1, id, "index-dvr.m3u8"));
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"));
    // Unknown quality, missing segment, non-canonical name, junk path: all 403.
    assert_eq!(c.playlist_text(id, "720p30"), None);
    for bad in [
        "index-dvr.m3u8".to_string(),
        "3.ts".into(),
        "01.ts".into(),
        "0.mp4".into(),
    ] {
        assert_eq!(
            get(&url(&c, 0, id, &bad)).0,
            if bad == "index-dvr.m3u8" { 200 } else { 403 },
            "{bad}"
        );
    }
    assert_eq!(get(&format!("{}nothing/here", c.base_url(0))).0, 403);
    let (status, seg) = {
        let mut r = agent(300).get(&url(&c, 0, id, "2.ts")).call().expect("seg");
        (r.status().as_u16(), r.body_mut().read_to_vec().expect("body"))
    };
    // Whole TS packets: the tables, then audio frames.
    assert_eq!((status, seg.len() % 188, seg[0], seg[188]), (200, 0, 0x47, 0x47));
    assert!(seg.len() / 188 > 2, "{}", seg.len());
}

#[test]
fn prefix_qualities_and_fmp4() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: "cdn/vods".into(),
        fault: Fault::None,
    }])
    .expect("start");
    assert!(c.base_url(0).ends_with("/cdn/vods/"));
    let mut b = small(vec![0]);
    b.container = Container::Fmp4;
    b.qualities = vec!["chunked".into(), "720p30".into()];
    let id = c.add_broadcast(b);
    let text = c.playlist_text(id, "720p30").expect("quality");
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n"));
    assert!(text.contains(
        "#EXT-X-TWITCH-TOTAL-SECS:25.500\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:10.000,\n0.mp4\n"
    ));
    let pl = c.playlist_path(id, "720p30");
    assert_eq!(get(&format!("{}{pl}", c.base_url(0))), (200, text));
    assert_eq!(get(&url(&c, 0, id, "init-0.mp4")).0, 200);
    assert_eq!(get(&url(&c, 0, id, "1.mp4")).0, 200);
    assert_eq!(get(&url(&c, 0, id, "1.ts")).0, 403);
    // Without the prefix the object does not exist.
    let port = c.base_url(0).trim_end_matches("cdn/vods/").to_string();
    assert_eq!(get(&format!("{port}{pl}")).0, 403);
    assert_eq!(
        c.requests(0).last().map(String::as_str),
        Some(format!("/{pl}").as_str())
    );
}

#[test]
fn head_and_keep_alive_on_one_connection() {
    let c = cdn(1);
    let id = c.add_broadcast(small(vec![0]));
    let text = c.playlist_text(id, "chunked").expect("text");
    let addr = c
        .base_url(0)
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let path = format!("/{}", c.playlist_path(id, "chunked"));
    let req = format!(
        "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let cl = format!("Content-Length: {}\r\n", text.len());
    let (first, second) = out.split_at(
        out.find("HTTP/1.1 200 OK\r\n")
            .and_then(|_| out[1..].find("HTTP/1.1"))
            .expect("two")
            + 1,
    );
    assert!(
        first.starts_with("HTTP/1.1 200 OK\r\n") && first.contains(&cl) && first.ends_with("\r\n\r\n"),
        "{first}"
    );
    assert!(
        second.starts_with("HTTP/1.1 200 OK\r\n") && second.contains(&cl) && second.ends_with(&text),
        "{second}"
    );
    assert_eq!(c.requests(0), vec![path.clone(), path]);
    // ureq HEAD: status only.
    let resp = agent(300).head(&url(&c, 0, id, "0.ts")).call().expect("head");
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn mute_end_grow_delete() {
    let c = cdn(2);
    let mut b = small(vec![0, 1]);
    b.muted.push(1..2);
    b.ended = false;
    let id = c.add_broadcast(b);
    let text = c.playlist_text(id, "chunked").expect("text");
    assert!(text.contains("\n1.ts\n") && !text.contains("ENDLIST"));
    assert_eq!(get(&url(&c, 0, id, "1.ts")).0, 200);
    assert_eq!(get(&url(&c, 0, id, "1-muted.ts")).0, 403);

    c.mute(id);
    let text = c.playlist_text(id, "chunked").expect("text");
    assert!(
        text.contains("\n0.ts\n#EXTINF:10.000,\n1-unmuted.ts\n#EXTINF:5.500,\n2.ts\n"),
        "{text}"
    );
    assert_eq!(get(&url(&c, 0, id, "index-dvr.m3u8")).1, text);
    // The original stays fetchable as "-unmuted" for a grace period (see the lifetime tests).
    for (file, status) in [
        ("1-unmuted.ts", 200),
        ("1-muted.ts", 200),
        ("1.ts", 403),
        ("0.ts", 200),
        ("0-muted.ts", 403),
    ] {
        assert_eq!(get(&url(&c, 0, id, file)).0, status, "{file}");
    }

    c.grow(id, 2);
    let text = c.playlist_text(id, "chunked").expect("text");
    assert!(
        text.contains("TOTAL-SECS:45.500\n") && text.ends_with("#EXTINF:5.500,\n4.ts\n"),
        "{text}"
    );
    assert_eq!(get(&url(&c, 0, id, "4.ts")).0, 200);
    c.end(id);
    assert!(
        get(&url(&c, 1, id, "index-dvr.m3u8"))
            .1
            .ends_with("4.ts\n#EXT-X-ENDLIST\n")
    );

    c.delete_from(id, 0);
    assert_eq!(get(&url(&c, 0, id, "index-dvr.m3u8")).0, 403);
    assert_eq!(get(&url(&c, 0, id, "0.ts")).0, 403);
    assert_eq!(get(&url(&c, 1, id, "index-dvr.m3u8")).0, 200);
}

#[test]
fn simple_faults_and_switching() {
    let c = cdn(1);
    let id = c.add_broadcast(small(vec![0]));
    let u = url(&c, 0, id, "index-dvr.m3u8");
    c.set_fault(0, Fault::Unavailable);
    assert_eq!(get(&u).0, 503);
    c.set_fault(0, Fault::Forbidden);
    assert_eq!(get(&u).0, 403);
    c.set_fault(0, Fault::Garbage);
    let (status, body) = get(&u);
    assert!(status == 200 && body.contains("<html>") && !body.starts_with("#EXTM3U"));
    c.set_fault(0, Fault::TooManyRequests { retry_after_secs: 7 });
    let resp = agent(300).get(&u).call().expect("429");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    c.set_fault(0, Fault::None);
    assert_eq!(get(&u).0, 200);
    assert_eq!(c.fault(0), Some(Fault::None));
    assert_eq!(c.request_count(0), 5);
}

#[test]
fn blackhole_times_out_but_is_logged() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: String::new(),
        fault: Fault::Blackhole,
    }])
    .expect("start");
    let id = c.add_broadcast(small(vec![0]));
    let t = Instant::now();
    let err = agent(300)
        .get(&url(&c, 0, id, "index-dvr.m3u8"))
        .call()
        .expect_err("blackhole");
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(c.request_count(0), 1);
}

#[test]
fn trickle_keeps_bytes_coming_until_client_gives_up() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: String::new(),
        fault: Fault::SlowTrickle,
    }])
    .expect("start");
    let mut resp = agent(700)
        .get(&format!("{}x", c.base_url(0)))
        .call()
        .expect("headers arrive");
    assert_eq!(resp.status().as_u16(), 200);
    let mut reader = resp.body_mut().as_reader();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    let err = loop {
        match reader.read(&mut byte) {
            Ok(0) => panic!("trickle ended"),
            Ok(_) => got.push(byte[0]),
            Err(e) => break e,
        }
    };
    assert!(got.len() >= 2 && got.starts_with(b"#EXT"), "{got:?}");
    assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
}

#[test]
fn reset_is_seen_as_connection_error() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: String::new(),
        fault: Fault::Reset,
    }])
    .expect("start");
    let addr = c
        .base_url(0)
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s.write_all(b"GET /a.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    if cfg!(target_os = "linux") {
        assert_eq!(
            r.map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::ConnectionReset)
        );
    } else {
        assert!(matches!(r, Ok(0) | Err(_)));
    }
    assert!(agent(300).get(&format!("{}b", c.base_url(0))).call().is_err());
    assert_eq!(c.requests(0).first().map(String::as_str), Some("/a.m3u8"));
}

#[test]
fn cut_mid_body_ends_the_body_early() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: String::new(),
        fault: Fault::CutMidBody,
    }])
    .expect("start");
    let mut response = agent(1000)
        .get(&format!("{}a.m3u8", c.base_url(0)))
        .call()
        .expect("head arrives");
    assert_eq!(response.status(), 200);
    let promised: usize = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut got = Vec::new();
    let read = response.body_mut().as_reader().read_to_end(&mut got);
    assert!(
        read.is_err(),
        "a short body must be an error, got {} bytes",
        got.len()
    );
    assert!(got.len() < promised, "{} of {promised}", got.len());
}

#[test]
fn huge_body_hits_client_cap() {
    let c = SimCdn::start(vec![DomainSpec {
        prefix: String::new(),
        fault: Fault::HugeBody,
    }])
    .expect("start");
    let mut resp = agent(2000)
        .get(&format!("{}x", c.base_url(0)))
        .call()
        .expect("headers");
    assert_eq!(resp.status().as_u16(), 200);
    let err = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .expect_err("cap");
    assert!(matches!(err, ureq::Error::BodyExceedsLimit(_)), "{err:?}");
}

#[test]
fn request_log_and_counts() {
    let c = cdn(3);
    for (d, p) in [(0, "a"), (2, "b?x=1"), (0, "c")] {
        let _ = get(&format!("{}{p}", c.base_url(d)));
    }
    assert_eq!(c.requests(0), vec!["/a".to_string(), "/c".to_string()]);
    assert_eq!(c.requests(2), vec!["/b?x=1".to_string()]);
    assert_eq!((c.request_count(1), c.total_requests()), (0, 3));
    c.clear_requests();
    assert_eq!(c.total_requests(), 0);
}

#[test]
fn drop_is_prompt_and_releases_connections() {
    let c = SimCdn::start(vec![
        DomainSpec {
            prefix: String::new(),
            fault: Fault::Blackhole,
        },
        DomainSpec {
            prefix: String::new(),
            fault: Fault::SlowTrickle,
        },
        DomainSpec {
            prefix: String::new(),
            fault: Fault::HugeBody,
        },
    ])
    .expect("start");
    let conns: Vec<TcpStream> = (0..3)
        .map(|d| {
            let addr = c
                .base_url(d)
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /x HTTP/1.1\r\n\r\n").expect("write");
            s
        })
        .collect();
    while c.total_requests() < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    drop(c);
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    // Every held connection was closed by the server: EOF or reset, immediately.
    for mut s in &conns {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let t = Instant::now();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(t.elapsed() < Duration::from_millis(250), "connection still open");
    }
}

/// A request with optional `Range`; (status, header lookup, body).
fn fetch(method: &str, url: &str, range: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let a = agent(300);
    let mut req = match method {
        "HEAD" => a.head(url),
        _ => a.get(url),
    };
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let mut resp = req.call().expect("request");
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().expect("body");
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn byte_ranges_and_head_as_s3_answers_them() {
    let c = cdn(1);
    let id = c.add_broadcast(small(vec![0]));
    let u = url(&c, 0, id, "1.ts");
    let (status, h, whole) = fetch("GET", &u, None);
    assert_eq!((status, header(&h, "accept-ranges")), (200, Some("bytes")));
    let total = whole.len();
    assert!(total > 10);
    for (range, status, content_range, bytes) in [
        ("bytes=0-0", 206, format!("bytes 0-0/{total}"), 0..1),
        ("bytes=5-9", 206, format!("bytes 5-9/{total}"), 5..10),
        (
            "bytes=3-",
            206,
            format!("bytes 3-{}/{total}", total - 1),
            3..total,
        ),
        (
            "bytes=-4",
            206,
            format!("bytes {}-{}/{total}", total - 4, total - 1),
            total - 4..total,
        ),
        // The end is clamped to the object; a suffix longer than it is the whole of it.
        (
            "bytes=2-99999999",
            206,
            format!("bytes 2-{}/{total}", total - 1),
            2..total,
        ),
        (
            "bytes=-99999999",
            206,
            format!("bytes 0-{}/{total}", total - 1),
            0..total,
        ),
    ] {
        let (s, h, body) = fetch("GET", &u, Some(range));
        assert_eq!(s, status, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            Some(content_range.as_str()),
            "{range}"
        );
        assert_eq!(body, whole[bytes].to_vec(), "{range}");
    }
    // Unsatisfiable: 416 with the size; ignored forms: the whole object.
    for range in [
        format!("bytes={total}-"),
        format!("bytes={total}-{}", total + 5),
        "bytes=-0".into(),
    ] {
        let (s, h, body) = fetch("GET", &u, Some(&range));
        assert_eq!(s, 416, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes */{total}").as_str())
        );
        assert!(String::from_utf8_lossy(&body).contains("<Code>InvalidRange</Code>"));
    }
    for range in ["bytes=0-0,5-6", "items=0-1", "bytes=9-2", "bytes=x-1", "bytes=-"] {
        let (s, h, body) = fetch("GET", &u, Some(range));
        assert_eq!((s, body.len()), (200, total), "{range}");
        assert_eq!(header(&h, "content-range"), None);
    }
    // HEAD: the length and no body, with or without a range.
    let (s, h, body) = fetch("HEAD", &u, None);
    assert_eq!(
        (s, header(&h, "content-length"), body.len()),
        (200, Some(total.to_string().as_str()), 0)
    );
    let (s, h, body) = fetch("HEAD", &u, Some("bytes=0-0"));
    assert_eq!((s, header(&h, "content-length"), body.len()), (206, Some("1"), 0));
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes 0-0/{total}").as_str())
    );
    // The playlist takes ranges too; a missing object stays 403 whatever the range.
    let text = c.playlist_text(id, "chunked").expect("text");
    let (s, _, body) = fetch("GET", &url(&c, 0, id, "index-dvr.m3u8"), Some("bytes=0-6"));
    assert_eq!((s, body.as_slice()), (206, &text.as_bytes()[..7]));
    assert_eq!(fetch("GET", &url(&c, 0, id, "9.ts"), Some("bytes=0-0")).0, 403);

    // The log tells HEAD from GET and keeps the range; requests() is unchanged.
    let log = c.request_log(0);
    let path = format!(
        "/{}",
        c.playlist_path(id, "chunked").replace("index-dvr.m3u8", "1.ts")
    );
    assert_eq!(
        log[log.len() - 3],
        LoggedRequest {
            method: "HEAD".into(),
            target: path.clone(),
            range: Some("bytes=0-0".into()),
            at: None,
        }
    );
    assert_eq!((log[0].method.as_str(), log[0].range.as_deref()), ("GET", None));
    assert_eq!(
        c.requests(0),
        log.iter().map(|r| r.target.clone()).collect::<Vec<_>>()
    );
}

/// The status of `file` of `id` on `domain`.
fn status(c: &SimCdn, domain: usize, id: BroadcastId, file: &str) -> u16 {
    get(&url(c, domain, id, file)).0
}

fn statuses(c: &SimCdn, domain: usize, id: BroadcastId, files: &[&str]) -> Vec<u16> {
    files.iter().map(|f| status(c, domain, id, f)).collect()
}

#[test]
fn segments_expire_while_the_playlist_still_answers() {
    let c = cdn(2);
    let mut b = small(vec![0, 1]);
    b.segments = 8;
    b.total_seconds = 75.0;
    b.muted.push(3..4);
    let id = c.add_broadcast(b);
    c.mute(id);
    let files = [
        "0.ts",
        "1.ts",
        "2.ts",
        "3-unmuted.ts",
        "3-muted.ts",
        "4.ts",
        "5.ts",
        "6.ts",
        "7.ts",
    ];
    c.expire_segments(id, Segments::Range(2..4));
    for d in 0..2 {
        assert_eq!(status(&c, d, id, "index-dvr.m3u8"), 200);
        assert_eq!(
            statuses(&c, d, id, &files),
            [200, 200, 403, 403, 403, 200, 200, 200, 200]
        );
    }
    c.expire_segments(id, Segments::EveryNth { n: 3, first: 1 });
    assert_eq!(
        statuses(&c, 0, id, &files),
        [200, 403, 403, 403, 403, 403, 200, 200, 403]
    );
    let (status_code, body) = get(&url(&c, 0, id, "4.ts"));
    assert!(status_code == 403 && body.contains("<Code>AccessDenied</Code>"));
    c.expire_segments(id, Segments::All);
    assert!(statuses(&c, 1, id, &files).iter().all(|s| *s == 403));
    assert_eq!(status(&c, 1, id, "index-dvr.m3u8"), 200);
    assert_eq!(
        (c.playlist_exists(id, 1), c.playlist_text(id, "chunked").is_some()),
        (true, true)
    );

    // fMP4: a range keeps the init section, All takes it.
    let mut b = small(vec![0]);
    b.stream_id += 1;
    b.container = Container::Fmp4;
    let id = c.add_broadcast(b);
    c.expire_segments(id, Segments::Range(0..1));
    assert_eq!(
        statuses(&c, 0, id, &["init-0.mp4", "0.mp4", "1.mp4"]),
        [200, 403, 200]
    );
    c.expire_segments(id, Segments::All);
    assert_eq!(
        statuses(&c, 0, id, &["init-0.mp4", "0.mp4", "1.mp4"]),
        [403, 403, 403]
    );
    assert_eq!(status(&c, 0, id, "index-dvr.m3u8"), 200);
}

#[test]
fn a_deleted_playlist_leaves_its_segments() {
    let c = cdn(2);
    let mut b = small(vec![0, 1]);
    b.muted.push(1..2);
    let id = c.add_broadcast(b);
    c.mute(id);
    c.delete_playlist(id);
    for d in 0..2 {
        assert_eq!(status(&c, d, id, "index-dvr.m3u8"), 403);
        assert_eq!(
            statuses(
                &c,
                d,
                id,
                &["0.ts", "1-unmuted.ts", "1-muted.ts", "2.ts", "1.ts", "3.ts"]
            ),
            [200, 200, 200, 200, 403, 403]
        );
        assert!(!c.playlist_exists(id, d));
    }
    // Ranges and HEAD still work on the orphaned segments.
    assert_eq!(
        fetch("GET", &url(&c, 0, id, "0.ts"), Some("bytes=0-0")).2,
        vec![0x47]
    );
    assert_eq!(fetch("HEAD", &url(&c, 0, id, "2.ts"), None).0, 200);

    let mut b = small(vec![0]);
    b.stream_id += 1;
    b.container = Container::Fmp4;
    let id = c.add_broadcast(b);
    c.delete_playlist(id);
    assert_eq!(
        statuses(&c, 0, id, &["index-dvr.m3u8", "init-0.mp4", "0.mp4", "2.mp4"]),
        [403, 200, 200, 200]
    );
}

#[test]
fn unmuted_originals_answer_for_a_grace_after_the_mute_pass() {
    // An hour after `small`'s start, well inside its 7-day retention.
    const T: i64 = 1_664_038_929 + 3_600;
    let c = cdn(1);
    let files = ["1-unmuted.ts", "1-muted.ts", "1.ts"];
    let muted = |stream_id: u64, grace: Option<i64>| {
        let mut b = small(vec![0]);
        b.stream_id = stream_id;
        b.muted.push(1..2);
        if let Some(g) = grace {
            b.unmuted_grace_secs = g;
        }
        c.add_broadcast(b)
    };
    // Without a clock the original answers until told otherwise.
    let id = muted(1, None);
    assert_eq!(statuses(&c, 0, id, &["1-unmuted.ts", "1.ts"]), [403, 200]);
    c.mute(id);
    assert_eq!(statuses(&c, 0, id, &files), [200, 200, 403]);
    c.expire_unmuted(id);
    assert_eq!(statuses(&c, 0, id, &files), [403, 200, 403]);

    // On the clock: a day by default, or the broadcast's own grace.
    c.set_now(T);
    let default = muted(2, None);
    let short = muted(3, Some(60));
    c.mute(default);
    c.mute(short);
    c.set_now(T + 59);
    assert_eq!(statuses(&c, 0, short, &files), [200, 200, 403]);
    c.set_now(T + 60);
    assert_eq!(statuses(&c, 0, short, &files), [403, 200, 403]);
    assert_eq!(status(&c, 0, default, "1-unmuted.ts"), 200);
    c.set_now(T + UNMUTED_GRACE_SECS - 1);
    assert_eq!(status(&c, 0, default, "1-unmuted.ts"), 200);
    c.set_now(T + UNMUTED_GRACE_SECS);
    assert_eq!(statuses(&c, 0, default, &files), [403, 200, 403]);
    assert_eq!(status(&c, 0, default, "index-dvr.m3u8"), 200);

    // mute_at starts the grace at the pass, not at the clock.
    let late = muted(4, Some(600));
    c.mute_at(late, T + UNMUTED_GRACE_SECS - 600);
    assert_eq!(status(&c, 0, late, "1-unmuted.ts"), 403);
}

#[test]
fn timed_expiries_follow_the_clock() {
    // An hour after `small`'s start, well inside its 7-day retention.
    const T: i64 = 1_664_038_929 + 3_600;
    let c = cdn(1);
    let id = c.add_broadcast(small(vec![0]));
    c.expire_later(
        id,
        T + 50,
        Expiry::Segments(Segments::EveryNth { n: 2, first: 0 }),
    );
    c.expire_later(id, T + 100, Expiry::Playlist);
    let files = ["index-dvr.m3u8", "0.ts", "1.ts", "2.ts"];
    assert_eq!(statuses(&c, 0, id, &files), [200, 200, 200, 200]);
    c.set_now(T + 49);
    assert_eq!(statuses(&c, 0, id, &files), [200, 200, 200, 200]);
    c.set_now(T + 50);
    assert_eq!(statuses(&c, 0, id, &files), [200, 403, 200, 403]);
    c.set_now(T + 100);
    assert_eq!(statuses(&c, 0, id, &files), [403, 403, 200, 403]);
    // Judged at each request, so winding the clock back restores them.
    c.set_now(T);
    assert_eq!(statuses(&c, 0, id, &files), [200, 200, 200, 200]);
    assert_eq!(c.now(), Some(T));
}

#[test]
fn retention_deletes_by_channel_kind() {
    let c = cdn(2);
    let kinds = [
        Retention::Regular,
        Retention::Affiliate,
        Retention::Partner,
        Retention::Days(1),
        Retention::Forever,
    ];
    let ids: Vec<BroadcastId> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut b = small(vec![0, 1]);
            b.stream_id += i as u64;
            b.retention = *kind;
            c.add_broadcast(b)
        })
        .collect();
    let start = small(vec![]).start_unix;
    let day = 86_400;
    assert_eq!(
        ids.iter().map(|id| c.retention_end(*id)).collect::<Vec<_>>(),
        [
            Some(start + 7 * day),
            Some(start + 14 * day),
            Some(start + 60 * day),
            Some(start + day),
            None
        ]
    );
    // (clock, which of the five still answer)
    for (now, alive) in [
        (None, [true; 5]),
        (Some(start + day - 1), [true; 5]),
        (Some(start + day), [true, true, true, false, true]),
        (Some(start + 7 * day), [false, true, true, false, true]),
        (Some(start + 14 * day - 1), [false, true, true, false, true]),
        (Some(start + 14 * day), [false, false, true, false, true]),
        (Some(start + 60 * day), [false, false, false, false, true]),
    ] {
        if let Some(t) = now {
            c.set_now(t);
        }
        for (id, alive) in ids.iter().zip(alive) {
            let want = if alive { 200 } else { 403 };
            for d in 0..2 {
                assert_eq!(
                    statuses(&c, d, *id, &["index-dvr.m3u8", "0.ts"]),
                    [want, want],
                    "{now:?} {id}"
                );
                assert_eq!(c.playlist_exists(*id, d), alive);
            }
        }
    }
}
