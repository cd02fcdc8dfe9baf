use super::*;
use crate::sim::Rng;

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
