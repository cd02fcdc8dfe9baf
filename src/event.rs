//! Lifecycle events: what happened to a broadcast, as the store saw its state change. Pure:
//! [`record_changes`] compares a record before and after a write, and the store records what
//! it returns in the same write transaction, so an event exists exactly when its change was
//! committed (a crash loses or repeats neither).

use crate::record::{Status, StreamKey, StreamRecord};
use serde::{Deserialize, Serialize};

/// What happened. Stored by position (postcard's variant index): append only, never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Live,
    Ended,
    Captured,
    Muted,
    OriginalAudioGone,
    SubOnly,
    Unlisted,
    Deleted,
    SegmentsPartial,
    SegmentsGone,
    TitleChanged,
    CategoryChanged,
    Renamed,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::Live,
        EventKind::Ended,
        EventKind::Captured,
        EventKind::Muted,
        EventKind::OriginalAudioGone,
        EventKind::SubOnly,
        EventKind::Unlisted,
        EventKind::Deleted,
        EventKind::SegmentsPartial,
        EventKind::SegmentsGone,
        EventKind::TitleChanged,
        EventKind::CategoryChanged,
        EventKind::Renamed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Live => "live",
            EventKind::Ended => "ended",
            EventKind::Captured => "captured",
            EventKind::Muted => "muted",
            EventKind::OriginalAudioGone => "original_audio_gone",
            EventKind::SubOnly => "sub_only",
            EventKind::Unlisted => "unlisted",
            EventKind::Deleted => "deleted",
            EventKind::SegmentsPartial => "segments_partial",
            EventKind::SegmentsGone => "segments_gone",
            EventKind::TitleChanged => "title_changed",
            EventKind::CategoryChanged => "category_changed",
            EventKind::Renamed => "renamed",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One event as stored (`events_v1`, keyed by its sequence number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (unix seconds), as the state that changed says.
    pub at: i64,
    pub stream: StreamKey,
    pub streamer_id: u64,
    pub kind: EventKind,
    /// What changed, for a reader: the muted segment counts and stretches, the old and new login.
    pub detail: String,
}

/// `segments 360–719 (1:00:00–2:00:00)`: indices as listed, times into the broadcast.
fn describe_range(range: &crate::playlist::MutedRange) -> String {
    let clock = |seconds: f64| {
        let s = seconds.round() as u64;
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let segments = if range.first == range.last {
        format!("segment {}", range.first)
    } else {
        format!("segments {}–{}", range.first, range.last)
    };
    format!(
        "{segments} ({}–{})",
        clock(range.from_seconds),
        clock(range.to_seconds)
    )
}

/// The events a write of `new` over `old` (none: a new broadcast) makes.
pub fn record_changes(old: Option<&StreamRecord>, new: &StreamRecord) -> Vec<Event> {
    record_changes_with(old, new, None)
}

/// As [`record_changes`], with the playlist stored by the same write (a capture), so a
/// `muted` event says which stretches are muted and where, not only how many segments.
pub fn record_changes_with(
    old: Option<&StreamRecord>,
    new: &StreamRecord,
    playlist: Option<&str>,
) -> Vec<Event> {
    let event = |at: i64, kind: EventKind, detail: String| Event {
        at,
        stream: new.key(),
        streamer_id: new.streamer_id,
        kind,
        detail,
    };
    let mut events = Vec::new();
    let was = |status: Status| old.is_some_and(|old| old.status == status);
    if new.status == Status::Live && old.is_none() {
        events.push(event(new.first_seen, EventKind::Live, String::new()));
    }
    if was(Status::Live) && new.status != Status::Live {
        events.push(event(
            new.ended_at.unwrap_or(new.last_seen),
            EventKind::Ended,
            String::new(),
        ));
    }
    let fetched_at = new
        .archive
        .as_ref()
        .map_or(new.last_seen, |archive| archive.fetched_at);
    if new.status == Status::Found && !was(Status::Found) {
        events.push(event(fetched_at, EventKind::Captured, String::new()));
    }
    let muted = |record: &StreamRecord| record.archive.as_ref().map(|archive| archive.muted_segments);
    if let (Some(before), Some(after)) = (old.and_then(muted), muted(new))
        && was(Status::Found)
        && after > before
    {
        let mut detail = format!("muted segments {before} → {after}");
        let ranges = playlist.map(crate::playlist::muted_ranges).unwrap_or_default();
        if !ranges.is_empty() {
            let listed: Vec<String> = ranges.iter().map(describe_range).collect();
            detail.push_str(&format!("; muted: {}", listed.join(", ")));
        }
        events.push(event(fetched_at, EventKind::Muted, detail));
    }
    if let Some(old) = old {
        if old.title != new.title {
            let detail = format!("{} → {}", old.title, new.title);
            events.push(event(new.last_seen, EventKind::TitleChanged, detail));
        }
        if old.game_id != new.game_id {
            let detail = format!("{} → {}", old.game_name, new.game_name);
            events.push(event(new.last_seen, EventKind::CategoryChanged, detail));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::Container;
    use crate::record::{ArchiveInfo, ProbeState};

    fn record(status: Status) -> StreamRecord {
        StreamRecord {
            start_unix: 1_000,
            stream_id: 7,
            streamer_id: 70,
            login: "seven".into(),
            title: "t".into(),
            game_id: "1".into(),
            game_name: "Chess".into(),
            language: "en".into(),
            is_mature: false,
            max_viewers: 10,
            first_seen: 1_010,
            last_seen: 1_500,
            ended_at: None,
            status,
            public: None,
            probe: ProbeState::default(),
            archive: None,
        }
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|event| event.kind).collect()
    }

    #[test]
    fn each_change_makes_its_event_once() {
        let live = record(Status::Live);
        assert_eq!(kinds(&record_changes(None, &live)), [EventKind::Live]);
        // Seen again while live: nothing new.
        let mut seen = live.clone();
        seen.last_seen = 1_600;
        assert!(record_changes(Some(&live), &seen).is_empty());
        let mut ended = seen.clone();
        ended.status = Status::Pending;
        ended.ended_at = Some(1_700);
        let events = record_changes(Some(&seen), &ended);
        assert_eq!((kinds(&events), events[0].at), (vec![EventKind::Ended], 1_700));
        let mut found = ended.clone();
        found.status = Status::Found;
        found.archive = Some(ArchiveInfo {
            domain: "http://a.test/".into(),
            domains: vec![],
            timestamp_form: "unix".into(),
            ts: "1000".into(),
            url: String::new(),
            duration_seconds: 60.0,
            segments: 6,
            muted_segments: 0,
            container: Container::Ts,
            qualities: vec![],
            fetched_at: 1_800,
            ended: true,
            rebuilt: false,
        });
        assert_eq!(
            kinds(&record_changes(Some(&ended), &found)),
            [EventKind::Captured]
        );
        assert!(record_changes(Some(&found), &found).is_empty());
        let mut muted = found.clone();
        if let Some(archive) = muted.archive.as_mut() {
            archive.muted_segments = 3;
        }
        let events = record_changes(Some(&found), &muted);
        assert_eq!(kinds(&events), [EventKind::Muted]);
        assert_eq!(events[0].detail, "muted segments 0 → 3");
        let playlist = "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1-unmuted.ts\n#EXTINF:10.000,\n2-unmuted.ts\n#EXTINF:10.000,\n3-muted.ts\n#EXTINF:10.000,\n4.ts\n";
        let events = record_changes_with(Some(&found), &muted, Some(playlist));
        assert_eq!(
            events[0].detail,
            "muted segments 0 → 3; muted: segments 1–3 (0:00:10–0:00:40)"
        );
        let mut renamed_game = muted.clone();
        renamed_game.game_id = "2".into();
        renamed_game.title = "u".into();
        assert_eq!(
            kinds(&record_changes(Some(&muted), &renamed_game)),
            [EventKind::TitleChanged, EventKind::CategoryChanged]
        );
    }

    #[test]
    fn kinds_parse_back() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
