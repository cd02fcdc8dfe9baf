//! Fuzzing entry points: one function per input the appliance reads from outside. Each takes
//! arbitrary bytes, runs them through the real parser, and panics only when something is
//! wrong: a parser panic, or a broken invariant (a round trip that does not reproduce its
//! input). `fuzz/` (cargo-fuzz, coverage-guided) and `tests/fuzz.rs` (stable, seeds plus
//! random mutations, run by `cargo test`) call the same functions, so a crash one finds is a
//! regression test for the other.

use crate::packed::record::{Layout, pack_in, unpack_record};
use crate::{api, config, discover, packed, playlist, time_input};
use std::path::PathBuf;

/// The largest text a stored playlist unpacks to here (the appliance uses `max_playlist_bytes`).
const MAX_TEXT: usize = 1 << 20;

/// A fetched playlist: validation, the structural encoding's byte-exact round trip (for any
/// UTF-8 text, valid playlist or not), and the rewrite that makes it playable.
pub fn playlist(data: &[u8]) {
    let _ = playlist::validate(data, MAX_TEXT);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let packed = packed::pack(text);
    match packed::unpack(&packed, text.len()) {
        Ok(again) => assert!(again == text, "pack/unpack changed the text"),
        Err(error) => panic!("unpack refused what pack wrote: {error}"),
    }
    for base in [
        "https://d2nvs31859zcd8.cloudfront.net/abc_123_456/chunked/",
        "http://127.0.0.1:9/dir/",
        "",
    ] {
        let _ = playlist::make_playable(text, base);
    }
}

/// A stored value read back from disk (corrupt or from a future version): the playlist and
/// record decoders must refuse it, never panic or allocate past their bound; a record that
/// decodes must encode and decode to itself.
pub fn stored(data: &[u8]) {
    if let Ok(text) = packed::unpack(data, MAX_TEXT) {
        assert!(text.len() <= MAX_TEXT, "unpack exceeded its bound");
    }
    let key = (1_767_225_600, 40_000_000_001);
    for layout in [Layout::Spelled, Layout::Coded] {
        if let Ok(record) = unpack_record(key, data, layout) {
            // Compared as encodings: a corrupt duration may decode to NaN, unequal to itself.
            let packed = pack_in(&record, layout);
            match unpack_record(key, &packed, layout) {
                Ok(again) => assert!(pack_in(&again, layout) == packed, "record round trip"),
                Err(error) => panic!("unpack_record refused what pack_in wrote: {error}"),
            }
        }
    }
}

/// `config.toml` and a probe module, separated by the first NUL byte: either may be anything.
pub fn config(data: &[u8]) {
    let (config_part, probe_part) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(config_part) else {
        return;
    };
    let probe_files: Vec<config::ProbeFile> = probe_part
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .map(|probe| {
            let _ = probes::ProbeModule::from_toml("fuzz", probe);
            vec![(
                "twitch-vod".to_string(),
                PathBuf::from("probes/twitch-vod.toml"),
                probe.to_string(),
            )]
        })
        .unwrap_or_default();
    if let Err(error) = config::parse(None, text, &probe_files) {
        // The message is what the user sees; building it must not panic either.
        let _ = error.to_string();
    }
}

/// The time and duration formats users type: `lookup --time`, `retention`, `settle`, ...
pub fn times(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = time_input::parse_time(text);
    let _ = config::parse_duration(text);
}

/// Answers of the live listing (GQL and Helix streams, GQL and Helix videos); the first byte
/// picks the decoder.
pub fn listing(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 => {
            if let Ok(page) = discover::decode_gql(body) {
                assert!(page.skipped >= usize::from(page.first_skip.is_some()));
            }
        }
        1 => {
            if let Ok(page) = discover::decode_helix(body) {
                assert!(page.skipped >= usize::from(page.first_skip.is_some()));
            }
        }
        2 => {
            let _ = discover::decode_gql_videos(body);
        }
        _ => {
            let _ = discover::decode_helix_videos(body);
        }
    }
}

/// The API's query strings and cursors, as the list and search routes parse them.
pub fn query(data: &[u8]) {
    if let Ok(raw) = std::str::from_utf8(data) {
        api::check_query(raw);
    }
}

/// A fuzz target: arbitrary bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, for the stable runner.
pub const TARGETS: &[(&str, Target)] = &[
    ("playlist", playlist),
    ("stored", stored),
    ("config", config),
    ("times", times),
    ("listing", listing),
    ("query", query),
];
