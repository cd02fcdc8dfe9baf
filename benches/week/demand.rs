//! The week benchmark's demand by kind: what each recordable broadcast asks for, from the
//! world's truth alone, and the tables that print it.

use super::DAY;
use std::collections::{HashMap, HashSet};
use vodprobe_sim::TruthBroadcast;

/// What each recordable broadcast asks for, from the world's truth alone (a restart's halves
/// apart), keyed by (listed start, stream id): [`KINDS`] index, and whether its channel is
/// recorded for the first time.
pub fn demand_kinds(
    truth: &[TruthBroadcast],
    start: i64,
    min_record: u32,
) -> HashMap<(i64, u64), (usize, bool)> {
    let mut by_channel: HashMap<u64, Vec<&TruthBroadcast>> = HashMap::new();
    for b in truth {
        by_channel.entry(b.streamer_id).or_default().push(b);
    }
    let mut ended: Vec<&TruthBroadcast> = truth
        .iter()
        .filter(|b| b.listed_start >= start && b.peak_viewers >= min_record && b.ended_at.is_some())
        .collect();
    ended.sort_by_key(|b| b.ended_at);
    let mut seen = HashSet::new();
    let mut kinds = HashMap::new();
    for b in ended {
        let end = b.ended_at.unwrap_or_default();
        let first = seen.insert(b.streamer_id);
        let other_video = by_channel[&b.streamer_id].iter().any(|o| {
            o.stream_id != b.stream_id
                && o.has_video
                && o.listed_start < end
                && o.listed_start > end - 7 * DAY
                && o.deleted_at.is_none_or(|d| d > end)
        });
        let kind = match (b.path_ts.is_some(), b.has_video, other_video, first) {
            (true, true, _, _) => 0,
            (true, false, true, _) => 1,
            (true, false, false, _) => 2,
            (false, _, _, true) => 3,
            (false, _, _, false) => 4,
        };
        kinds.insert((b.listed_start, b.stream_id), (kind, first));
    }
    kinds
}

/// The kinds of [`demand_kinds`], as the tables name them.
pub const KINDS: [&str; 5] = [
    "stored, video names the path",
    "stored, another video names the domain",
    "stored, no video anywhere",
    "nothing stored, channel new",
    "nothing stored, channel seen",
];

/// What the day's recordable broadcasts ask for, by [`demand_kinds`], and how many channels
/// are recorded for the first time.
pub fn print_demand(truth: &[TruthBroadcast], start: i64, days: i64, min_record: u32) {
    let kinds = demand_kinds(truth, start, min_record);
    let mut rows = vec![[0usize; 7]; days as usize];
    for b in truth {
        let (Some(&(kind, first)), Some(end)) = (kinds.get(&(b.listed_start, b.stream_id)), b.ended_at)
        else {
            continue;
        };
        let Some(row) = rows.get_mut(((end - start) / DAY) as usize) else {
            continue;
        };
        row[0] += 1;
        row[kind + 1] += 1;
        row[6] += usize::from(first);
    }
    println!(
        "\ndemand from the world's truth, per day (recordable broadcasts by what they ask for)\n\
         | day | recordable | {} | channels recorded for the first time |\n|---|---|---|---|---|---|---|---|",
        KINDS.join(" | ")
    );
    for (day, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(usize::to_string).collect();
        println!("| {} | {} |", day + 1, cells.join(" | "));
    }
}

/// Where the requests of each pooled row went, and what they bought, by what the broadcasts
/// ask for ([`KINDS`]).
pub fn print_by_kind(pooled: &[(&str, [[usize; 7]; 5])]) {
    println!(
        "\nby what the broadcasts ask for: broadcasts, captured (stored kinds), shed, CDN requests \
         per stream (of which after the hour; after the capture), share of the days' probe requests\n\
         | days | kind | broadcasts | captured | shed | req / stream (after the hour; after the capture) | share of requests |\n\
         |---|---|---|---|---|---|---|"
    );
    for (label, row) in pooled {
        let all: usize = row.iter().map(|k| k[4]).sum();
        for (name, k) in KINDS.iter().zip(row) {
            println!(
                "| {label} | {name} | {} | {} | {} | {:.2} ({:.2}; {:.2}) | {:.1} % |",
                k[0],
                if name.starts_with("stored") {
                    format!("{:.1} %", pct(k[1], k[0]))
                } else {
                    "–".to_string()
                },
                k[2],
                ratio(k[4], k[3]),
                ratio(k[5], k[3]),
                ratio(k[6], k[3]),
                pct(k[4], all)
            );
        }
    }
}

pub fn pct(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

pub fn ratio(part: usize, whole: usize) -> f64 {
    part as f64 / whole.max(1) as f64
}
