//! Tests of the structural encodings (playlists and records): byte-exact round trips of
//! Twitch-shaped and arbitrary values, the sizes they reach, and damaged values decoded as errors.

use super::*;
use vodprobe_sim::Rng;

const CAP: usize = 64 << 20;

fn round_trip(text: &str) -> Vec<u8> {
    let packed = pack(text);
    let back = unpack(&packed, CAP).unwrap_or_else(|error| panic!("{error} for {text:?}"));
    assert_eq!(back, text, "round trip differs ({} packed bytes)", packed.len());
    packed
}

/// A playlist as Twitch writes it: `durations[i]` and `suffixes[i]` per segment.
fn twitch(segments: usize, last: &str, muted: &[(usize, usize)], fmp4: bool, ended: bool) -> String {
    let ext = if fmp4 { "mp4" } else { "ts" };
    let total = (segments - 1) as f64 * 10.0 + last.parse::<f64>().unwrap();
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:10\n#ID3-EQUIV-TDTG:2026-11-23T17:02:09\n\
         #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TWITCH-ELAPSED-SECS:0.000\n\
         #EXT-X-TWITCH-TOTAL-SECS:{total:.3}\n",
        if fmp4 { 6 } else { 3 }
    );
    if fmp4 {
        s.push_str("#EXT-X-MAP:URI=\"init-0.mp4\"\n");
    }
    for i in 0..segments {
        let duration = if i + 1 == segments { last } else { "10.000" };
        let suffix = if muted.iter().any(|&(from, to)| (from..to).contains(&i)) {
            "-muted"
        } else {
            ""
        };
        s.push_str(&format!("#EXTINF:{duration},\n{i}{suffix}.{ext}\n"));
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

#[test]
fn a_four_hour_twitch_playlist_packs_to_a_few_dozen_bytes() {
    let text = twitch(1441, "3.251", &[], false, true);
    assert!(text.len() > 30_000);
    let packed = round_trip(&text);
    assert!(packed.len() <= 32, "{} bytes", packed.len());
    let muted = twitch(1441, "3.251", &[(360, 720), (1080, 1100)], false, true);
    let packed = round_trip(&muted);
    assert!(packed.len() <= 48, "{} bytes with two muted ranges", packed.len());
    let fmp4 = twitch(300, "7.5", &[(0, 10)], true, false);
    round_trip(&fmp4);
}

#[test]
fn odd_shapes_round_trip() {
    let cases = [
        "",
        "\n",
        "\n\n",
        "\r\n",
        "#EXTM3U",
        "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXTINF:10.000,\r\n0.ts\r\n",
        // Mixed line ends: kept as they are.
        "#EXTM3U\r\n#EXT-X-VERSION:3\n#EXTINF:10.000,\n0.ts\r\n",
        "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:10.000,\n7.ts\n#EXTINF:10.000,\n8.ts\n",
        // Titles, leading zeros, signs, exponents, odd spacing: not Twitch's shape, kept verbatim.
        "#EXTINF:10.000,title\n0.ts\n#EXTINF:010.0,\n1.ts\n#EXTINF:10.000,\n02.ts\n#EXTINF:-1,\n3.ts\n#EXTINF:1e3,\n4.ts\n",
        "#EXTINF:10.000, \n0.ts\n#EXTINF:10.,\n1.ts\n#EXTINF:.5,\n2.ts\n",
        "#EXT-X-VERSION:03\n#EXT-X-VERSION:3.\n#EXT-X-TARGETDURATION:\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n",
        "#EXT-X-MEDIA-SEQUENCE:99999999999999999999\n#EXT-X-TWITCH-TOTAL-SECS:0.000000000000000000000000000001\n",
        "#ID3-EQUIV-TDTG:2026-02-30T10:00:00\n#ID3-EQUIV-TDTG:2026-11-23T17:02:09Z\n#ID3-EQUIV-TDTG:1969-12-31T23:59:59\n",
        "#EXTINF:10.000,\n0-unmuted.ts\n#EXTINF:10.000,\n1-muted.ts\n#EXTINF:10.000,\n2-muted.mp4\n#EXTINF:10.000,\n3-muteed.ts\n",
        "#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n18446744073709551615.ts\n#EXTINF:10.000,\n0.ts\n",
        "#EXTINF:10.000,\n",
        "#EXT-X-UNKNOWN-TAG:a=b\n\u{1F3AE} ünïcödé\n\t\n#EXT-X-ENDLIST\ntrailing garbage \0 \r in a line",
        "\r",
        "a\r\r\nb",
    ];
    for case in cases {
        round_trip(case);
    }
}

/// A random playlist mixing every feature the encoder knows and some it does not.
fn random_playlist(rng: &mut Rng) -> String {
    let newline = if rng.chance(0.1) { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = Vec::new();
    if rng.chance(0.95) {
        lines.push("#EXTM3U".into());
    }
    for _ in 0..rng.range(0, 10) {
        let line = match rng.range(0, 9) {
            0 => format!("#EXT-X-VERSION:{}", rng.range(0, 12)),
            1 => format!("#EXT-X-TARGETDURATION:{}", rng.range(0, 20)),
            2 => format!(
                "#ID3-EQUIV-TDTG:{}",
                render_date(rng.range(0, 4_000_000_000)).unwrap()
            ),
            3 => "#EXT-X-PLAYLIST-TYPE:EVENT".into(),
            4 => format!("#EXT-X-TWITCH-TOTAL-SECS:{:.3}", rng.uniform(0.0, 50_000.0)),
            5 => "#EXT-X-MAP:URI=\"init-0.mp4\"".into(),
            6 => format!("#EXT-X-MAP:URI=\"init-{}.mp4\"", rng.range(1, 9)),
            7 => format!("#EXT-X-UNKNOWN:{}", rng.next_u64()),
            _ => "#EXT-X-MEDIA-SEQUENCE:0".into(),
        };
        lines.push(line);
    }
    let mut index = if rng.chance(0.9) {
        0
    } else {
        rng.range(0, 1_000_000) as u64
    };
    let ext = if rng.chance(0.2) { "mp4" } else { "ts" };
    for _ in 0..rng.range(0, 400) {
        let duration = match rng.range(0, 10) {
            0 => format!("{:.3}", rng.uniform(0.0, 12.0)),
            1 => format!("{:.1}", rng.uniform(0.0, 12.0)),
            2 => format!("{}", rng.range(0, 12)),
            3 => format!("0{:.3}", rng.uniform(0.0, 9.0)),
            _ => "10.000".into(),
        };
        let suffix = match rng.range(0, 20) {
            0 => "-muted",
            1 => "-unmuted",
            2 => "-other",
            _ => "",
        };
        let title = if rng.chance(0.02) { "a title" } else { "" };
        lines.push(format!("#EXTINF:{duration},{title}"));
        lines.push(format!("{index}{suffix}.{ext}"));
        if rng.chance(0.01) {
            lines.push(
                if rng.chance(0.5) {
                    "#EXT-X-DISCONTINUITY"
                } else {
                    ""
                }
                .into(),
            );
        }
        index = match rng.range(0, 50) {
            0 => rng.range(0, 1000) as u64,
            1 => index,
            _ => index + 1,
        };
    }
    if rng.chance(0.7) {
        lines.push("#EXT-X-ENDLIST".into());
    }
    let mut text = lines.join(newline);
    if rng.chance(0.9) {
        text.push_str(newline);
    }
    // Damage: a cut, an inserted character, trailing garbage.
    if rng.chance(0.1) && !text.is_empty() {
        let mut cut = rng.range(0, text.len() as i64) as usize;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    if rng.chance(0.1) && !text.is_empty() {
        let mut at = rng.range(0, text.len() as i64) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let c = ['\r', '\n', 'x', '0', '.', ',', '-', 'é'][rng.range(0, 8) as usize];
        text.insert(at, c);
    }
    if rng.chance(0.05) {
        text.push_str("\u{0}garbage\r");
    }
    text
}

#[test]
fn random_playlists_round_trip_byte_for_byte() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..3_000 {
        round_trip(&random_playlist(&mut rng));
    }
}

#[test]
fn corrupt_values_are_errors_not_panics_or_huge_allocations() {
    assert_eq!(unpack(&[], CAP), Err(UnpackError::Truncated));
    assert_eq!(unpack(&[0x04], CAP), Err(UnpackError::Invalid("flags")));
    assert_eq!(unpack(&[0, 0xEE], CAP), Err(UnpackError::UnknownOperation(0xEE)));
    assert_eq!(
        unpack(&[0, OP_RUN, 1], CAP),
        Err(UnpackError::Invalid("a run without a duration"))
    );
    assert_eq!(
        unpack(&[0, OP_RUN | 6, 1, 10, 0], CAP),
        Err(UnpackError::Invalid("segment kind"))
    );
    assert_eq!(unpack(&[0, 0x3F], CAP), Err(UnpackError::UnknownOperation(0x3F)));
    assert_eq!(
        unpack(&[0, OP_VERBATIM, 5, b'a'], CAP),
        Err(UnpackError::Truncated)
    );
    // A run of 2^62 segments is refused before it is rendered.
    let mut huge = vec![0, OP_RUN | RUN_HAS_DURATION];
    put_varint(&mut huge, 1 << 62);
    huge.extend_from_slice(&[10, 0]);
    assert_eq!(
        unpack(&huge, CAP),
        Err(UnpackError::Invalid("run longer than the cap"))
    );
    let mut rng = Rng::new(7);
    for _ in 0..20_000 {
        let len = rng.range(0, 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = unpack(&bytes, 1 << 20);
    }
    // Valid packings cut anywhere fail cleanly or decode to a prefix-shaped text.
    let packed = pack(&twitch(50, "2.000", &[(3, 9)], false, true));
    for cut in 0..packed.len() {
        let _ = unpack(&packed[..cut], CAP);
    }
}

#[test]
fn the_odometer_counts_like_to_string() {
    for start in [0u64, 8, 9, 98, 99, 999_999, u64::MAX - 3] {
        let mut odometer = Odometer::new(start);
        let mut value = start;
        for _ in 0..30 {
            assert_eq!(odometer.text(), value.to_string());
            odometer.increment();
            value = value.wrapping_add(1);
        }
    }
}

mod records {
    use super::super::record::{Layout, pack_in, pack_record};

    fn unpack_record(
        key: crate::record::StreamKey,
        bytes: &[u8],
    ) -> Result<StreamRecord, super::super::UnpackError> {
        super::super::record::unpack_record(key, bytes, Layout::Coded)
    }
    use crate::playlist::Container;
    use crate::record::{ArchiveInfo, Learned, ProbeState, Status, StreamRecord};
    use vodprobe_sim::Rng;

    fn random_text(rng: &mut Rng, choices: &[&str]) -> String {
        if rng.chance(0.2) {
            let len = rng.range(0, 12) as usize;
            (0..len)
                .map(|_| ['a', 'é', '_', '9', '/', ' ', '\u{1F3AE}'][rng.range(0, 7) as usize])
                .collect()
        } else {
            choices[rng.range(0, choices.len() as i64) as usize].to_string()
        }
    }

    fn random_record(rng: &mut Rng) -> StreamRecord {
        let start = rng.range(-10, 4_000_000_000);
        let stream_id = rng.next_u64() >> rng.range(0, 64);
        let login = random_text(rng, &["alpha", "xqcow", "some_streamer_42"]);
        let time = |rng: &mut Rng| {
            if rng.chance(0.05) {
                rng.next_u64() as i64
            } else {
                start + rng.range(-100, 100_000)
            }
        };
        let domains = [
            "https://vod-secure.twitch.tv/",
            "https://d2nvs31859zcd8.cloudfront.net/",
            "http://127.0.0.1:9/",
        ];
        let archive = rng.chance(0.7).then(|| {
            let domain = random_text(rng, &domains);
            let ts = if rng.chance(0.9) {
                start.to_string()
            } else {
                (start - 1).to_string()
            };
            let quality = random_text(rng, &["chunked", "720p60", "source"]);
            let hash = if rng.chance(0.5) {
                // Twitch's own rule, which the encoder reduces to no bytes at all.
                let digest =
                    <sha1::Sha1 as sha1::Digest>::digest(format!("{login}_{stream_id}_{ts}").as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
            } else {
                format!("{:020x}", rng.next_u64() as u128 * 7919)
            };
            let url = if rng.chance(0.8) {
                format!(
                    "{domain}{}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8",
                    &hash[..20]
                )
            } else {
                format!(
                    "{domain}{}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8",
                    hash.to_uppercase()
                )
            };
            ArchiveInfo {
                domains: match rng.range(0, 3) {
                    0 => vec![domain.clone()],
                    1 => vec![],
                    _ => vec![domain.clone(), random_text(rng, &domains)],
                },
                domain,
                timestamp_form: random_text(rng, &["unix", "unix-1", "second-of-minute"]),
                ts,
                url,
                duration_seconds: match rng.range(0, 4) {
                    0 => rng.uniform(0.0, 50_000.0),
                    1 => -0.0,
                    _ => (rng.range(0, 50_000_000) as f64) / 1000.0,
                },
                segments: rng.next_u64() as u32,
                muted_segments: rng.range(0, 100) as u32,
                container: if rng.chance(0.5) {
                    Container::Ts
                } else {
                    Container::Fmp4
                },
                qualities: match rng.range(0, 3) {
                    0 => vec!["chunked".into(), "720p60".into()],
                    1 => vec!["720p60".into(), "chunked".into()],
                    _ => vec![random_text(rng, &["chunked", "audio_only"])],
                },
                fetched_at: time(rng),
                ended: rng.chance(0.5),
                rebuilt: rng.chance(0.1),
            }
        });
        StreamRecord {
            start_unix: start,
            stream_id,
            streamer_id: rng.next_u64(),
            login: login.clone(),
            title: random_text(rng, &["a title", ""]),
            game_id: random_text(rng, &["509658", "", "21779"]),
            game_name: random_text(rng, &["Just Chatting", "", "League of Legends"]),
            language: random_text(rng, &["en", "de", "xx"]),
            is_mature: rng.chance(0.5),
            max_viewers: rng.next_u64() as u32,
            first_seen: time(rng),
            last_seen: time(rng),
            ended_at: rng.chance(0.5).then(|| time(rng)),
            status: [Status::Live, Status::Pending, Status::Found, Status::NotFound]
                [rng.range(0, 4) as usize],
            public: [None, Some(false), Some(true)][rng.range(0, 3) as usize],
            probe: ProbeState {
                next_due: rng.chance(0.5).then(|| time(rng)),
                misses: rng.next_u64() as u32,
                inconclusive: rng.range(0, 5) as u32,
                probes: rng.range(0, 9) as u32,
                hour_probe_done: rng.chance(0.5),
                learned_live: rng.chance(0.5),
                missed_live: rng.chance(0.5),
                captured_at: rng.chance(0.5).then(|| time(rng)),
                absence_probed: rng.chance(0.5),
                learned: rng.chance(0.5).then(|| Learned {
                    domain: random_text(rng, &domains),
                    form: random_text(rng, &["unix", "weird"]),
                    ts: if rng.chance(0.5) {
                        start.to_string()
                    } else {
                        "x".into()
                    },
                }),
                last_error: rng.chance(0.3).then(|| random_text(rng, &["timed out"])),
            },
            archive,
        }
    }

    #[test]
    fn random_records_round_trip_exactly() {
        let mut rng = Rng::new(99);
        for _ in 0..20_000 {
            let record = random_record(&mut rng);
            let packed = pack_record(&record);
            let back = unpack_record(record.key(), &packed).expect("decodes");
            // -0.0 == 0.0 for PartialEq: compare the duration's bits too.
            let bits = |r: &StreamRecord| r.archive.as_ref().map(|a| a.duration_seconds.to_bits());
            assert!(
                back == record && bits(&back) == bits(&record),
                "{record:?}\n{back:?}"
            );
            // What older binaries wrote (tag 2) stays readable.
            let spelled = pack_in(&record, Layout::Spelled);
            let old = super::super::record::unpack_record(record.key(), &spelled, Layout::Spelled)
                .expect("decodes");
            assert!(
                old == record && bits(&old) == bits(&record),
                "{record:?}\n{old:?}"
            );
        }
    }

    #[test]
    fn a_typical_captured_record_is_small_and_corrupt_bytes_are_errors() {
        let mut rng = Rng::new(3);
        let record = loop {
            let record = random_record(&mut rng);
            if record.archive.is_some() {
                break record;
            }
        };
        let packed = pack_record(&record);
        for cut in 0..packed.len() {
            assert!(
                unpack_record(record.key(), &packed[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack_record(record.key(), &longer).is_err());
        for _ in 0..20_000 {
            let len = rng.range(0, 60) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = unpack_record((0, 0), &bytes);
        }
    }

    #[test]
    fn a_url_on_twitchs_path_rule_costs_no_hash_bytes() {
        let mut rng = Rng::new(5);
        let mut record = loop {
            let record = random_record(&mut rng);
            if record.archive.is_some() {
                break record;
            }
        };
        record.login = "some_streamer_42".into();
        let archive = record.archive.as_mut().expect("archive");
        archive.domain = "https://vod-secure.twitch.tv/".into();
        archive.ts = record.start_unix.to_string();
        let dir = vodprobe_sim::vod_dir(&record.login, record.stream_id, &archive.ts);
        archive.url = format!("{}{dir}/chunked/index-dvr.m3u8", archive.domain);
        let derived = pack_record(&record);
        assert_eq!(unpack_record(record.key(), &derived).expect("decodes"), record);
        // The same URL with a hash that breaks the rule keeps its 10 bytes.
        let archive = record.archive.as_mut().expect("archive");
        let flipped = if archive.url.as_bytes()[29] == b'0' {
            "1"
        } else {
            "0"
        };
        archive.url.replace_range(29..30, flipped);
        let kept = pack_record(&record);
        assert_eq!(unpack_record(record.key(), &kept).expect("decodes"), record);
        assert_eq!(kept.len(), derived.len() + 10);
    }

    #[test]
    fn rebuilt_is_one_appended_bit_and_older_bytes_read_as_not_rebuilt() {
        let mut rng = Rng::new(7);
        let mut record = loop {
            let record = random_record(&mut rng);
            if record.archive.is_some() {
                break record;
            }
        };
        record.archive.as_mut().expect("archive").rebuilt = false;
        let before = pack_record(&record);
        record.archive.as_mut().expect("archive").rebuilt = true;
        let after = pack_record(&record);
        assert_eq!(unpack_record(record.key(), &after).expect("decodes"), record);
        // Same length, one byte differs by the new bit: what was written before (bit clear)
        // keeps its meaning.
        assert_eq!(before.len(), after.len());
        let differing: Vec<(u8, u8)> = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (*a, *b))
            .collect();
        assert_eq!(differing.len(), 1);
        assert_eq!(differing[0].0 ^ differing[0].1, 1 << 2);
        record.archive.as_mut().expect("archive").rebuilt = false;
        assert_eq!(unpack_record(record.key(), &before).expect("decodes"), record);
    }
}
