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
            if !path.ends_with(".m3u8") {
                background.segments += 1;
                continue;
            }
            if !path.contains("/chunked/") {
                background.qualities += 1;
                continue;
            }
            let Some(folder) = path.trim_start_matches('/').split('/').next() else {
                continue;
            };
            let Some((_, base)) = folder.split_once('_') else {
                continue;
            };
            let mut parts = base.rsplitn(3, '_');
            let (Some(_ts), Some(id), Some(login)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(id) = id.parse::<u64>() else { continue };
            if (login, id) == HEALTH_KEY {
                background.health += 1;
                continue;
            }
            by.entry((login.to_string(), id))
                .or_default()
                .push(format!("{domain}{path}"));
        }
    }
    (by, background)
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
