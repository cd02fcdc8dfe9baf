//! Scoring the compressed day and the week against the simulated CDN's request logs: which
//! broadcast each playlist request was for, and what was background work.

#![allow(dead_code)]

use std::collections::HashMap;
use vodprobe::record::{Status, StreamRecord};
use vodprobe_sim::SimCdn;

/// Background requests, paid from spare budget and counted apart from the probes'.
#[derive(Clone, Copy, Default)]
pub struct Background {
    /// Other quality folders' playlists.
    pub qualities: usize,
    /// Segments asked after a capture (anything but a playlist).
    pub segments: usize,
    /// Domain health checks (a playlist that cannot exist, for login `vodprobe`, id 0); a
    /// fixed cost per domain, whatever the population.
    pub health: usize,
}

/// Login and stream id of the health check's impossible playlist (`search::check_domains`).
const HEALTH_KEY: (&str, u64) = ("vodprobe", 0);

/// What one logged CDN request was for.
enum Asked {
    /// A probe of this broadcast's primary quality (login, stream id).
    Probe(String, u64),
    Quality,
    Segment,
    Health,
    Other,
}

fn asked(path: &str) -> Asked {
    if !path.ends_with(".m3u8") {
        return Asked::Segment;
    }
    if !path.contains("/chunked/") {
        return Asked::Quality;
    }
    match broadcast_of(path) {
        None => Asked::Other,
        Some((login, id)) if (login.as_str(), id) == HEALTH_KEY => Asked::Health,
        Some((login, id)) => Asked::Probe(login, id),
    }
}

/// The (login, stream id) a CDN path's folder names (`/{hash}_{login}_{id}_{ts}/…`).
fn broadcast_of(path: &str) -> Option<(String, u64)> {
    let folder = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let (_, base) = folder.split_once('_')?;
    let mut parts = base.rsplitn(3, '_');
    let (Some(_ts), Some(id), Some(login)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some((login.to_string(), id.parse::<u64>().ok()?))
}

/// Segment requests a probe made for a broadcast before it was captured (or never captured):
/// a rebuild's segment 0 after its playlist answered missing, part of the broadcast's cost,
/// not a background check (those follow a capture). Each as (login, stream id, CDN clock
/// time, domain and path); `captured_at` per (login, stream id).
pub fn probe_segments(
    cdn: &SimCdn,
    domains: usize,
    captured_at: &HashMap<(String, u64), i64>,
) -> Vec<(String, u64, i64, String)> {
    let mut found = Vec::new();
    for domain in 0..domains {
        for request in cdn.request_log(domain) {
            if !matches!(asked(&request.target), Asked::Segment) {
                continue;
            }
            let (Some((login, id)), Some(at)) = (broadcast_of(&request.target), request.at) else {
                continue;
            };
            let before = captured_at
                .get(&(login.clone(), id))
                .is_none_or(|&captured| at < captured);
            if before {
                found.push((login, id, at, format!("{domain}{}", request.target)));
            }
        }
    }
    found
}

/// Probe requests (for the primary quality) per (login, stream id), and the background
/// requests (any other quality folder, segments, health checks), counted apart.
pub fn requests_by_broadcast(
    cdn: &SimCdn,
    domains: usize,
) -> (HashMap<(String, u64), Vec<String>>, Background) {
    let mut by: HashMap<(String, u64), Vec<String>> = HashMap::new();
    let mut background = Background::default();
    for domain in 0..domains {
        for path in cdn.requests(domain) {
            match asked(&path) {
                Asked::Probe(login, id) => by.entry((login, id)).or_default().push(format!("{domain}{path}")),
                Asked::Quality => background.qualities += 1,
                Asked::Segment => background.segments += 1,
                Asked::Health => background.health += 1,
                Asked::Other => {}
            }
        }
    }
    (by, background)
}

/// When (the CDN's clock) each probe request of a broadcast arrived, per (login, stream id).
pub fn probe_times(cdn: &SimCdn, domains: usize) -> HashMap<(String, u64), Vec<i64>> {
    let mut by: HashMap<(String, u64), Vec<i64>> = HashMap::new();
    for domain in 0..domains {
        for request in cdn.request_log(domain) {
            if let (Asked::Probe(login, id), Some(at)) = (asked(&request.target), request.at) {
                by.entry((login, id)).or_default().push(at);
            }
        }
    }
    by
}

/// A broadcast's requests (`asked`, as [`requests_by_broadcast`] lists them, and `when`, as
/// [`probe_times`] does, in the same order) in time order, each as `domain:ts@seconds after
/// the end` (`end`).
pub fn request_trail(asked: &[String], when: &[i64], end: i64) -> String {
    let mut pairs: Vec<(&String, i64)> = asked.iter().zip(when.iter().copied()).collect();
    pairs.sort_by_key(|&(_, at)| at);
    let trail: Vec<String> = pairs
        .into_iter()
        .map(|(path, at)| {
            let domain = path.split('/').next().unwrap_or("?");
            let ts = path
                .split('_')
                .next_back()
                .and_then(|t| t.split('/').next())
                .unwrap_or("?");
            format!("{domain}:{ts}@{:+}", at - end)
        })
        .collect();
    trail.join(" ")
}

/// A stored broadcast counts as captured when its record holds a playlist and was not given up.
pub fn captured(record: Option<&StreamRecord>) -> bool {
    record.is_some_and(|r| {
        r.archive.is_some() && matches!(r.status, Status::Found | Status::Live | Status::Pending)
    })
}

/// The `p` quantile of sorted values (0 when empty).
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
