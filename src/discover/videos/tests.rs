//! Preview URLs and folder names → hints, including the placeholders that must not parse.

use super::*;
use crate::discover::tests::FOLDER;

#[test]
fn preview_urls_and_folders() {
    assert_eq!(parse_folder(FOLDER), Some((47198535725, "1664038929")));
    // Logins may hold '_'; the first '_' ends the hash, the last two delimit id and time.
    assert_eq!(parse_folder("0123456789abcdef0123__x__9_59"), Some((9, "59")));
    for bad in [
        "C5992ECECCE7BD7D350D_gmhikaru_47198535725_1664038929",
        "c5992ececce7bd7d350_gmhikaru_47198535725_1664038929",
        "c5992ececce7bd7d350d_gmhikaru_4719853572x_1664038929",
        "c5992ececce7bd7d350d_gmhikaru_47198535725_",
        "c5992ececce7bd7d350d__47198535725_1664038929",
        "c5992ececce7bd7d350d_gm-hikaru_47198535725_1664038929",
        "c5992ececce7bd7d350d_47198535725_1664038929",
        "storyboards",
    ] {
        assert_eq!(parse_folder(bad), None, "{bad}");
    }
    let with_query = format!("https://vod-metro.twitch.tv/{FOLDER}/storyboards/1-info.json?token=x");
    let parsed = parse_preview_url(&with_query, true).expect("hint");
    assert_eq!(parsed.domain, "https://vod-metro.twitch.tv/");
    for bad in [
        format!("ftp://vod-secure.twitch.tv/{FOLDER}/x"),
        format!("https:///{FOLDER}/x"),
        format!("https://static-cdn.jtvnw.net/cf_vods/d2n.vs/{FOLDER}/x"),
        format!("https://static-cdn.jtvnw.net/{FOLDER}/x"),
        format!("https://vod-secure.twitch.tv?q=/{FOLDER}/x"),
        "not a url".into(),
    ] {
        assert_eq!(parse_preview_url(&bad, true), None, "{bad}");
    }
}

#[test]
fn muted_stretch_lists_say_muted_not_muted_or_nothing() {
    use serde_json::json;
    let stretch = json!({"duration": 30, "offset": 120});
    for (list, expected) in [
        (Some(json!([stretch, {"offset": 0, "duration": 10}])), Some(true)),
        (Some(json!(null)), Some(false)),
        (Some(json!([])), Some(false)),
        // The field absent (withheld, older answers) or unreadable: unknown, never "not muted".
        (None, None),
        (Some(json!([stretch, {"offset": "120", "duration": 30}])), None),
        (Some(json!([{"duration": 30}])), None),
        (Some(json!([{"offset": -5, "duration": 30}])), None),
        (Some(json!({"duration": 30, "offset": 120})), None),
        (Some(json!(true)), None),
    ] {
        assert_eq!(muted_from(list.as_ref()), expected, "{list:?}");
    }
}
