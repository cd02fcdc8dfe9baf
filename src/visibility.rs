//! Pure rules of the video-list re-read: which captured channel's list to read next, and what
//! it says happened to the captures. A capture whose video was listed publicly and is now
//! listed as sub-only was made sub-only; one whose video vanished while its archive is known
//! was deleted or unlisted — the list cannot tell those apart (an unlisted video is simply not
//! listed, see the reference's "Media playlist" and videos notes), so both are `deleted` with a
//! detail saying so.

use crate::discover::VideoHint;
use crate::event::EventKind;
use crate::probe::own_video;
use crate::record::{Status, StreamKey, StreamRecord};
use std::collections::HashMap;

/// Captures this recent are watched.
pub const WATCH_DAYS: i64 = 14;
/// Videos asked for per list: more than a channel streams in [`WATCH_DAYS`] on most channels.
pub const VIDEOS_PER_READ: u32 = 100;

/// The detail of a `deleted` event, which may also be an unlisting.
pub const VANISHED: &str = "vanished from the video list (deleted or unlisted)";

/// The channel to re-read next: the one with the newest capture not read within `every`
/// seconds. `captures` newest first; `last_read` streamer id → when its list was last read.
pub fn next_channel(
    captures: &[StreamRecord],
    last_read: &HashMap<u64, i64>,
    now: i64,
    every: i64,
) -> Option<u64> {
    captures
        .iter()
        .filter(|record| watched(record))
        .map(|record| record.streamer_id)
        .find(|id| last_read.get(id).is_none_or(|at| now - at >= every))
}

/// A capture worth re-reading: found, its archive known, and last seen listed publicly.
fn watched(record: &StreamRecord) -> bool {
    record.status == Status::Found && record.archive.is_some() && record.public == Some(true)
}

/// What one channel's video list says of its watched captures: `(key, kind)` with kind
/// `SubOnly` or `Deleted`. `full`: the list returned as many videos as asked, so captures
/// older than the oldest one it shows may just be cut off and are not judged.
pub fn changes(records: &[StreamRecord], videos: &[VideoHint], full: bool) -> Vec<(StreamKey, EventKind)> {
    let oldest_listed = records
        .iter()
        .filter(|record| own_video(record, videos).is_some())
        .map(|record| record.start_unix)
        .min();
    records
        .iter()
        .filter(|record| watched(record))
        .filter_map(|record| match own_video(record, videos) {
            Some(video) if !video.public => Some((record.key(), EventKind::SubOnly)),
            Some(_) => None,
            None if full && oldest_listed.is_none_or(|oldest| record.start_unix < oldest) => None,
            None => Some((record.key(), EventKind::Deleted)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::VideoOf;
    use crate::playlist::Container;
    use crate::record::{ArchiveInfo, ProbeState};

    fn capture(stream_id: u64, start: i64, public: Option<bool>) -> StreamRecord {
        StreamRecord {
            start_unix: start,
            stream_id,
            streamer_id: 5,
            login: "five".into(),
            title: "t".into(),
            game_id: "1".into(),
            game_name: "Chess".into(),
            language: "en".into(),
            is_mature: false,
            max_viewers: 10,
            first_seen: start,
            last_seen: start + 100,
            ended_at: Some(start + 100),
            status: Status::Found,
            public,
            probe: ProbeState::default(),
            archive: Some(ArchiveInfo {
                domain: "http://a.test/".into(),
                domains: vec![],
                timestamp_form: "unix".into(),
                ts: start.to_string(),
                url: String::new(),
                duration_seconds: 60.0,
                segments: 6,
                muted_segments: 0,
                container: Container::Ts,
                qualities: vec![],
                fetched_at: start + 200,
                ended: true,
                rebuilt: false,
            }),
        }
    }

    fn video(stream_id: u64, public: bool) -> VideoHint {
        VideoHint {
            broadcast: VideoOf::Stream(stream_id),
            domain: "http://a.test/".into(),
            folder: String::new(),
            ts: String::new(),
            public,
            muted: None,
            muted_stretches: Vec::new(),
        }
    }

    #[test]
    fn a_vanished_video_is_deleted_and_a_restricted_one_sub_only() {
        let records = [
            capture(1, 1_000, Some(true)),
            capture(2, 2_000, Some(true)),
            capture(3, 3_000, Some(true)),
            // Never seen listed: nothing to say about it.
            capture(4, 4_000, Some(false)),
            capture(5, 5_000, None),
        ];
        let videos = [video(2, false), video(3, true)];
        assert_eq!(
            changes(&records, &videos, false),
            [((1_000, 1), EventKind::Deleted), ((2_000, 2), EventKind::SubOnly)]
        );
        // A full list may have cut the oldest off: it is not judged.
        assert_eq!(
            changes(&records, &videos, true),
            [((2_000, 2), EventKind::SubOnly)]
        );
    }

    #[test]
    fn the_newest_capture_not_read_lately_goes_first() {
        let mut other = capture(9, 9_000, Some(true));
        other.streamer_id = 6;
        let captures = [other, capture(3, 3_000, Some(true))];
        let mut read = HashMap::new();
        assert_eq!(next_channel(&captures, &read, 10_000, 600), Some(6));
        read.insert(6, 9_500);
        assert_eq!(next_channel(&captures, &read, 10_000, 600), Some(5));
        read.insert(5, 9_500);
        assert_eq!(next_channel(&captures, &read, 10_000, 600), None);
        assert_eq!(next_channel(&captures, &read, 10_100, 600), Some(6));
    }
}
