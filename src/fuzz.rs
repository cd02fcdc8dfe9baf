//! Fuzzing entry points: one function per input the appliance reads from outside. Each takes
//! arbitrary bytes, runs them through the real parser, and panics only when something is
//! wrong: a parser panic, or a broken invariant (a round trip that does not reproduce its
//! input). `fuzz/` (cargo-fuzz, coverage-guided) and `tests/fuzz.rs` (stable, seeds plus
//! random mutations, run by `cargo test`) call the same functions, so a crash one finds is a
//! regression test for the other.

use crate::discover::VideoOf;
use crate::packed::record::{Layout, pack_in, unpack_record};
use crate::{api, config, discover, packed, playlist, time_input};
use serde_json::Value;
use std::collections::HashSet;
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
        let muted = playlist::make_playable(text, base);
        // The original audio differs only where the muted rendering says "-muted".
        let original = playlist::make_playable_with(text, base, playlist::Audio::Original);
        assert!(
            original.len() >= muted.len(),
            "keeping -unmuted made the playlist shorter"
        );
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

/// Splits a target's input of the form `{api} {ids}\n{body}`: an `api` starting with `h`
/// picks Helix (anything else GQL); `ids` are comma-separated channel ids (unreadable ones
/// are dropped). Without a newline the whole input is the body, for GQL, with no ids.
fn api_and_ids(data: &[u8]) -> (bool, Vec<u64>, &[u8]) {
    let Some(at) = data.iter().position(|&b| b == b'\n') else {
        return (false, Vec::new(), data);
    };
    let header = String::from_utf8_lossy(&data[..at]);
    let (api, ids) = header.split_once(' ').unwrap_or((&header, ""));
    let ids = ids.split(',').filter_map(|id| id.trim().parse().ok()).collect();
    (api.starts_with('h'), ids, &data[at + 1..])
}

/// Every string in a JSON text (escapes resolved): what a decoded id or folder must come from.
fn strings_in(body: &[u8]) -> Vec<String> {
    fn walk(value: &Value, strings: &mut Vec<String>) {
        match value {
            Value::String(text) => strings.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| walk(item, strings)),
            Value::Object(fields) => fields.values().for_each(|field| walk(field, strings)),
            _ => {}
        }
    }
    let mut strings = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        walk(&value, &mut strings);
    }
    strings
}

/// The strings of [`strings_in`] that read as decimal ids.
fn ids_in(body: &[u8]) -> HashSet<u64> {
    strings_in(body).iter().filter_map(|s| s.parse().ok()).collect()
}

/// Answers of the confirmation by id (`{api} {asked ids}\n{body}`, see [`api_and_ids`]): GQL
/// `users(ids:)` and Helix `streams?user_id=`. Only channels asked are answered, none both live
/// and offline, and every live stream id is one the answer names.
pub fn confirm(data: &[u8]) {
    let (helix, asked, body) = api_and_ids(data);
    let decoded = if helix {
        discover::decode_helix_live(body, &asked)
    } else {
        discover::decode_gql_users(body, &asked)
    };
    let Ok(answer) = decoded else {
        return;
    };
    let named = ids_in(body);
    for (streamer_id, (stream_id, _)) in &answer.live {
        assert!(
            asked.contains(streamer_id),
            "live channel {streamer_id} was not asked"
        );
        assert!(
            named.contains(stream_id),
            "stream id {stream_id} is not in the answer"
        );
        assert!(
            !answer.offline.contains(streamer_id),
            "{streamer_id} both live and offline"
        );
    }
    for streamer_id in &answer.offline {
        assert!(
            asked.contains(streamer_id),
            "offline channel {streamer_id} was not asked"
        );
    }
    // A followed channel's sighting is one of the live channels, with the same stream.
    for sighting in &answer.sightings {
        assert_eq!(
            answer.live.get(&sighting.streamer_id).map(|(id, _)| *id),
            Some(sighting.stream_id),
            "sighting of {} is not a live channel's stream",
            sighting.streamer_id
        );
    }
}

/// Answers of a channel's video list (`{api}\n{body}`, see [`api_and_ids`]): GQL
/// `user.videos` and Helix `/videos`. A hint with a path has a folder that parses to its
/// `ts` and a stream id the answer names; one without names its broadcast only as GQL can
/// (by start) or by an id the answer names.
pub fn videos(data: &[u8]) {
    let (helix, _, body) = api_and_ids(data);
    let decoded = if helix {
        discover::decode_helix_videos(body)
    } else {
        discover::decode_gql_videos(body)
    };
    let Ok(hints) = decoded else {
        return;
    };
    let strings = strings_in(body);
    let named: HashSet<u64> = strings.iter().filter_map(|s| s.parse().ok()).collect();
    for hint in &hints {
        if hint.path_known() {
            let (folder_stream, ts) = discover::parse_folder(&hint.folder)
                .unwrap_or_else(|| panic!("{hint:?}: the folder does not parse"));
            assert!(ts == hint.ts, "{hint:?}: ts is not the folder's");
            assert!(
                strings.iter().any(|s| s.contains(&hint.folder)),
                "{hint:?}: the folder is in no URL of the answer"
            );
            assert!(
                hint.domain.ends_with('/') && hint.domain.contains("://"),
                "{hint:?}: not a base URL"
            );
            // The folder's id unless Helix's `stream_id` names another.
            let VideoOf::Stream(id) = hint.broadcast else {
                panic!("{hint:?}: a path without its stream id");
            };
            assert!(id == folder_stream || named.contains(&id), "{hint:?}: stream id");
        } else {
            assert!(
                hint.folder.is_empty() && hint.ts.is_empty(),
                "{hint:?}: half a path"
            );
            match hint.broadcast {
                VideoOf::Stream(id) => assert!(named.contains(&id), "{hint:?}: stream id not in the answer"),
                VideoOf::StartedAt(_) => assert!(!helix, "{hint:?}: a start from Helix"),
            }
        }
    }
    if !helix {
        // Sub-only archives are a channel setting: every GQL video shares it.
        assert!(
            hints.windows(2).all(|pair| pair[0].public == pair[1].public),
            "GQL hints disagree on public"
        );
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
    ("confirm", confirm),
    ("videos", videos),
    ("query", query),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' header line reaches the decoder it names and the answer decodes: the
    /// targets' properties are checked on real answers, not only on errors.
    #[test]
    fn seeds_reach_their_decoders() {
        let seed = include_bytes!("../fuzz/seeds/confirm/gql-users");
        let (helix, asked, body) = api_and_ids(seed);
        assert_eq!((helix, asked.len()), (false, 4));
        let answer = discover::decode_gql_users(body, &asked).expect("users");
        assert_eq!(
            (answer.live.len(), answer.offline.len(), answer.skipped),
            (1, 2, 1)
        );
        let seed = include_bytes!("../fuzz/seeds/confirm/helix-live");
        let (helix, asked, body) = api_and_ids(seed);
        let answer = discover::decode_helix_live(body, &asked).expect("streams");
        assert!(helix && answer.live.len() == 1 && answer.offline.len() == 1);
        let seed = include_bytes!("../fuzz/seeds/videos/gql-videos");
        let hints = discover::decode_gql_videos(api_and_ids(seed).2).expect("videos");
        assert_eq!(hints.len(), 2);
        let seed = include_bytes!("../fuzz/seeds/videos/helix-videos");
        let (helix, _, body) = api_and_ids(seed);
        assert!(helix && discover::decode_helix_videos(body).expect("videos").len() == 2);
        for seed in [&seed[..], include_bytes!("../fuzz/seeds/videos/gql-videos")] {
            videos(seed);
        }
        confirm(include_bytes!(
            "../fuzz/regressions/confirm/null-user-then-live-by-id"
        ));
    }
}
