//! Notifications of lifecycle events, pure: which events a `[[notify]]` target wants, what
//! a webhook or ntfy request carries, the signature, the retry back-off and the backlog bound.
//!
//! The outbox is `events_v1` itself: events are already durable, ordered and written with their
//! change, so each target keeps only a cursor (the last sequence number it got) and delivery
//! reads the table after it. No second write per event; a target added later starts at the end.

use crate::config::{NotifyConfig, NotifyKind};
use crate::event::Event;
use crate::record::StreamRecord;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;

/// The header a webhook's signature travels in: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Vodprobe-Signature";

/// The first retry waits this long (clock time); each failure doubles it up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Failures in a row after which a target counts as failing in `/healthz`: a single refused
/// request is ordinary, a receiver down through three back-offs is not.
pub const FAILING_AFTER: u32 = 3;

/// The wait before the next attempt after `failures` failures in a row (at least one).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// A target's delivery state as the store keeps it (`state_v1` under [`cursor_state_name`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last event sequence number delivered or passed over (filtered out, dropped).
    pub through: u64,
    /// Events skipped without delivery since the target was added (pruned, or past the bound).
    pub dropped: u64,
}

/// The store state name of a target's cursor.
pub fn cursor_state_name(target: &str) -> String {
    format!("notify_v1/{target}")
}

impl Cursor {
    /// Skips what cannot be delivered any more, given the oldest and newest events stored:
    /// events pruned before delivery, and those past `max_backlog` behind the newest. Returns
    /// how many were skipped now.
    pub fn skip_ahead(&mut self, oldest: u64, newest: u64, max_backlog: u64) -> u64 {
        let mut skipped = 0;
        if oldest > self.through + 1 {
            skipped += oldest - 1 - self.through;
            self.through = oldest - 1;
        }
        if newest > self.through + max_backlog {
            skipped += newest - max_backlog - self.through;
            self.through = newest - max_backlog;
        }
        self.dropped += skipped;
        skipped
    }
}

/// Whether `target` wants `event` of a broadcast whose login is `login` (if still stored).
pub fn admits(target: &NotifyConfig, event: &Event, login: Option<&str>) -> bool {
    let channel = target.channels.is_empty()
        || target.channels.iter().any(|channel| {
            channel.parse::<u64>().ok() == Some(event.streamer_id) || Some(channel.as_str()) == login
        });
    channel && (target.events.is_empty() || target.events.contains(&event.kind))
}

/// The broadcast's basic fields beside the event in a webhook body.
#[derive(Clone, Debug, Serialize)]
pub struct BroadcastInfo {
    pub login: String,
    pub title: String,
    pub game_name: String,
    pub status: &'static str,
    /// The appliance's playlist path (as the API's `playlist_url`) while playable.
    pub playlist_url: Option<String>,
    /// The playlist on the CDN where it was found.
    pub cdn_url: Option<String>,
}

impl BroadcastInfo {
    /// `playable` is the API's judgement (found, segments not gone).
    pub fn new(record: &StreamRecord, playable: bool) -> BroadcastInfo {
        let archive = record.archive.as_ref().filter(|_| playable);
        BroadcastInfo {
            login: record.login.clone(),
            title: record.title.clone(),
            game_name: record.game_name.clone(),
            status: record.status.as_str(),
            playlist_url: archive.map(|_| format!("/vods/{}/{}.m3u8", record.stream_id, record.start_unix)),
            cdn_url: archive.map(|archive| archive.url.clone()),
        }
    }
}

#[derive(Serialize)]
struct Body<'a, E: Serialize> {
    #[serde(flatten)]
    event: &'a E,
    broadcast: Option<&'a BroadcastInfo>,
}

/// One HTTP POST to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The request for `event` (serialized as the events API shows it) to `target`.
pub fn request<E: Serialize>(
    target: &NotifyConfig,
    event: &E,
    kind: &str,
    detail: &str,
    broadcast: Option<&BroadcastInfo>,
) -> Request {
    match &target.kind {
        NotifyKind::Webhook { secret } => {
            let body = serde_json::to_vec(&Body { event, broadcast }).unwrap_or_default();
            Request {
                headers: vec![
                    ("Content-Type", "application/json".into()),
                    (SIGNATURE_HEADER, signature(secret, &body)),
                ],
                body,
            }
        }
        NotifyKind::Ntfy => ntfy(kind, detail, broadcast),
    }
}

/// ntfy: the message is the body; title, tags and the click URL are headers (ntfy's
/// "publish" API). Header values must be plain ASCII, so titles carry only the login and kind.
fn ntfy(kind: &str, detail: &str, broadcast: Option<&BroadcastInfo>) -> Request {
    let login = broadcast.map_or("a broadcast", |b| b.login.as_str());
    let mut text = format!("{login}: {}", kind.replace('_', " "));
    if let Some(broadcast) = broadcast {
        text.push_str(&format!(" — {}", broadcast.title));
    }
    if !detail.is_empty() {
        text.push_str(&format!(" ({detail})"));
    }
    let mut headers = vec![
        ("Title", format!("vodprobe: {login} {}", kind.replace('_', " "))),
        ("Tags", kind.to_string()),
    ];
    if let Some(url) = broadcast.and_then(|b| b.cdn_url.clone()) {
        headers.push(("Click", url));
    }
    Request {
        headers,
        body: text.into_bytes(),
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn target(kind: NotifyKind) -> NotifyConfig {
        NotifyConfig {
            name: "t".into(),
            kind,
            url: "http://x.test/".into(),
            events: vec![],
            channels: vec![],
            max_backlog: 10,
        }
    }

    fn event(kind: EventKind) -> Event {
        Event {
            at: 1,
            stream: (1_000, 7),
            streamer_id: 70,
            kind,
            detail: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_ten_minutes() {
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_cursor_skips_pruned_events_and_what_is_past_the_bound() {
        let mut cursor = Cursor {
            through: 5,
            dropped: 0,
        };
        assert_eq!(cursor.skip_ahead(6, 12, 10), 0);
        // 6..=9 pruned before delivery.
        assert_eq!(cursor.skip_ahead(10, 12, 10), 4);
        assert_eq!(cursor.through, 9);
        // 30 behind with a bound of 10: 20 dropped.
        assert_eq!(cursor.skip_ahead(10, 39, 10), 20);
        assert_eq!(
            cursor,
            Cursor {
                through: 29,
                dropped: 24
            }
        );
    }

    #[test]
    fn targets_filter_by_kind_and_channel() {
        let mut wanted = target(NotifyKind::Ntfy);
        assert!(admits(&wanted, &event(EventKind::Live), None));
        wanted.events = vec![EventKind::Deleted];
        wanted.channels = vec!["seven".into(), "71".into()];
        assert!(!admits(&wanted, &event(EventKind::Live), Some("seven")));
        assert!(admits(&wanted, &event(EventKind::Deleted), Some("seven")));
        assert!(!admits(&wanted, &event(EventKind::Deleted), Some("other")));
        wanted.channels = vec!["70".into()];
        assert!(admits(&wanted, &event(EventKind::Deleted), None));
    }

    #[test]
    fn a_webhook_is_signed_and_ntfy_gets_title_tags_and_click() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let broadcast = BroadcastInfo {
            login: "seven".into(),
            title: "Speedrun".into(),
            game_name: "Chess".into(),
            status: "found",
            playlist_url: Some("/vods/7/1000.m3u8".into()),
            cdn_url: Some("https://cdn.test/x/chunked/index-dvr.m3u8".into()),
        };
        let item = serde_json::json!({"id": "3", "kind": "captured"});
        let hook = request(
            &target(NotifyKind::Webhook { secret: "s".into() }),
            &item,
            "captured",
            "",
            Some(&broadcast),
        );
        let body: serde_json::Value = serde_json::from_slice(&hook.body).expect("json");
        assert_eq!(body["id"], "3");
        assert_eq!(body["broadcast"]["playlist_url"], "/vods/7/1000.m3u8");
        assert_eq!(hook.headers[1], (SIGNATURE_HEADER, signature("s", &hook.body)));
        let push = request(
            &target(NotifyKind::Ntfy),
            &item,
            "sub_only",
            "x",
            Some(&broadcast),
        );
        assert_eq!(
            push.headers,
            vec![
                ("Title", "vodprobe: seven sub only".to_string()),
                ("Tags", "sub_only".to_string()),
                ("Click", "https://cdn.test/x/chunked/index-dvr.m3u8".to_string()),
            ]
        );
        assert_eq!(
            String::from_utf8_lossy(&push.body),
            "seven: sub only — Speedrun (x)"
        );
    }
}
