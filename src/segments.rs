//! Whether a capture still plays: the pure rules of the segment check. A playlist can answer
//! while its segments answer 403 (the archive looks found but plays nothing), so after a
//! capture a few segments are asked on the domain that holds it: which ones ([`pick`]), what
//! their answers mean ([`classify`]) and how a conclusive check changes what is stored
//! ([`SegmentStatus::concluded`]), and when a capture is checked again ([`next_watch`], the
//! survival watch) and whether it is at risk now ([`at_risk_until`]).
//!
//! No I/O here: `search::check_segments` asks, the daemon schedules, the store keeps
//! [`SegmentStatus`] beside the record.

use serde::Serialize;

/// What the last conclusive check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentState {
    /// Every segment asked answered.
    Ok,
    /// Some answered "missing" (403), some did not.
    Partial,
    /// Every segment asked answered "missing": the capture plays nothing.
    Gone,
}

impl SegmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentState::Ok => "ok",
            SegmentState::Partial => "partial",
            SegmentState::Gone => "gone",
        }
    }

    /// The one-byte code the store keeps. Stored on disk: never renumber (0 is "unchecked").
    pub fn code(self) -> u8 {
        match self {
            SegmentState::Ok => 1,
            SegmentState::Partial => 2,
            SegmentState::Gone => 3,
        }
    }

    /// The state of a stored code; `None` for 0 (unchecked) and unknown codes.
    pub fn from_code(code: u8) -> Option<SegmentState> {
        match code {
            1 => Some(SegmentState::Ok),
            2 => Some(SegmentState::Partial),
            3 => Some(SegmentState::Gone),
            _ => None,
        }
    }
}

/// A capture's segment check as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStatus {
    /// `None` while unchecked.
    pub state: Option<SegmentState>,
    /// When the last conclusive check ran (unix seconds).
    pub checked_at: Option<i64>,
    /// The first time a check found the capture partial or gone; kept once set, since a loss
    /// is the fact users need to date.
    pub lost_at: Option<i64>,
    /// When a check is next due; `None` when none is waiting.
    pub due: Option<i64>,
}

impl SegmentStatus {
    /// A fresh capture: unchecked and due at `now`.
    pub fn unchecked(now: i64) -> SegmentStatus {
        SegmentStatus {
            due: Some(now),
            ..SegmentStatus::default()
        }
    }

    /// The status after a conclusive check at `now` found `state` on a broadcast that started
    /// at `start`; the next check is the watch's ([`next_watch`]).
    pub fn concluded(self, state: SegmentState, start: i64, now: i64) -> SegmentStatus {
        let lost = state != SegmentState::Ok;
        SegmentStatus {
            state: Some(state),
            checked_at: Some(now),
            lost_at: self.lost_at.or(lost.then_some(now)),
            due: next_watch(start, state, now),
        }
    }

    /// Whether the last conclusive check heard at least some segments answer.
    pub fn alive(&self) -> bool {
        matches!(self.state, Some(SegmentState::Ok | SegmentState::Partial))
    }
}

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;

/// The ages (seconds after the broadcast's start) at which Twitch deletes past broadcasts: 7
/// days by default, 14 for affiliates, 60 for partners (`reference/twitch.md`, "Domains").
/// Which one applies to a channel is not known here, so every capture is watched at all three.
pub const RETENTION_EDGES: [i64; 3] = [7 * DAY, 14 * DAY, 60 * DAY];

/// A capture is at risk this long before a retention edge (N = 24 hours): a day is enough for
/// a user to see the warning and save it. The watch also checks once as the window opens, so a
/// capture listed as at risk was heard alive within that day.
pub const AT_RISK_WINDOW: i64 = DAY;

/// The watch checks this long after an edge: deletions run in batches, not at the second.
pub const AFTER_EDGE: i64 = 2 * HOUR;

/// The background cadence between the edges, as ages in days: it doubles up to 16 days,
/// because a loss that is not a retention deletion (a streamer deleting) is most likely while
/// the broadcast is young and talked about; then every 8 days, so a partner's broadcast deleted
/// in its second month is not noticed only at the 60-day edge (the survival benchmark had a
/// p99 of 21 days with 32 as the last step).
const BACKGROUND_DAYS: [i64; 10] = [1, 2, 4, 8, 16, 24, 32, 40, 48, 56];

/// Never two checks of one capture closer than this: at most 3 requests a check, so a capture
/// costs at most 12 requests a day even when the cadence and the edges crowd together.
pub const MIN_INTERVAL: i64 = 6 * HOUR;

/// Past this age nothing is watched: the longest retention and its check are behind it.
pub const WATCH_UNTIL: i64 = 60 * DAY + AFTER_EDGE + DAY;

/// When the survival watch next checks a capture of a broadcast that started at `start`,
/// after a conclusive check at `now` found `state`; `None` when the watch is over: the
/// segments are gone (a loss is final) or the broadcast is older than [`WATCH_UNTIL`].
///
/// The times are the background cadence ([`BACKGROUND_DAYS`] after the start) and, for each
/// retention edge, one as its at-risk window opens and one [`AFTER_EDGE`] after it; the first
/// of them after `now`, but never sooner than [`MIN_INTERVAL`] after `now`.
pub fn next_watch(start: i64, state: SegmentState, now: i64) -> Option<i64> {
    if state == SegmentState::Gone {
        return None;
    }
    let background = BACKGROUND_DAYS.iter().map(|days| days * DAY);
    let edges = RETENTION_EDGES
        .iter()
        .flat_map(|edge| [edge - AT_RISK_WINDOW, edge + AFTER_EDGE]);
    let next = background
        .chain(edges)
        .map(|age| start + age)
        .filter(|at| *at > now)
        .min()?;
    let next = next.max(now + MIN_INTERVAL);
    (next <= start + WATCH_UNTIL).then_some(next)
}

/// The retention edge a capture that was last heard alive (ok or partial) must be saved
/// before: the first edge after its last conclusive check. `None` when its segments are gone
/// or unchecked, or when the check came after the last edge. It depends only on what is
/// stored, so a list answer is the same whenever it is computed; the edge may be past when
/// the check after it has not run yet.
pub fn at_risk_until(start: i64, status: &SegmentStatus) -> Option<i64> {
    if !status.alive() {
        return None;
    }
    let checked = status.checked_at?;
    RETENTION_EDGES
        .iter()
        .map(|edge| start + edge)
        .find(|at| *at > checked)
}

/// Whether a capture is at risk at `now`: heard alive, and `now` is within [`AT_RISK_WINDOW`]
/// of (or past) the edge of [`at_risk_until`].
pub fn at_risk(start: i64, status: &SegmentStatus, now: i64) -> bool {
    at_risk_until(start, status).is_some_and(|edge| now >= edge - AT_RISK_WINDOW)
}

/// How one segment answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentAnswer {
    /// 200 or 206: the segment is there.
    Live,
    /// A "missing" status of the domain's probe module (403 on S3 behind CloudFront).
    Missing,
    /// No answer, or one that says nothing about the object (5xx, 429): why.
    Failed(String),
}

/// What a check's answers mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentVerdict {
    Conclusive(SegmentState),
    /// A failure or no answer at all: the stored state stays, the check is repeated later.
    Inconclusive(String),
}

/// The segments to ask out of `count`: the first, the middle and the last (fewer when the
/// playlist is that short). The ends are where Twitch's deletions show first (a cut tail, a
/// purged head); the middle catches a capture whose media went wholesale.
pub fn pick(count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let mut picked = vec![0, count / 2, count - 1];
    picked.dedup();
    picked
}

/// The verdict of a check's answers: any failure makes it inconclusive (a domain in trouble
/// says nothing about the media), otherwise ok, partial or gone by how many were missing.
pub fn classify(answers: &[SegmentAnswer]) -> SegmentVerdict {
    if answers.is_empty() {
        return SegmentVerdict::Inconclusive("no segment was asked".to_string());
    }
    if let Some(SegmentAnswer::Failed(reason)) =
        answers.iter().find(|a| matches!(a, SegmentAnswer::Failed(_)))
    {
        return SegmentVerdict::Inconclusive(reason.clone());
    }
    let missing = answers.iter().filter(|a| **a == SegmentAnswer::Missing).count();
    SegmentVerdict::Conclusive(if missing == 0 {
        SegmentState::Ok
    } else if missing == answers.len() {
        SegmentState::Gone
    } else {
        SegmentState::Partial
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_first_middle_and_last() {
        fn check(count: usize, expected: &[usize]) {
            assert_eq!(pick(count), expected, "count {count}");
        }
        check(0, &[]);
        check(1, &[0]);
        check(2, &[0, 1]);
        check(3, &[0, 1, 2]);
        check(30, &[0, 15, 29]);
        check(2066, &[0, 1033, 2065]);
    }

    #[test]
    fn classifies_answers() {
        use SegmentAnswer::{Failed, Live, Missing};
        fn check(answers: &[SegmentAnswer], expected: SegmentVerdict) {
            assert_eq!(classify(answers), expected, "{answers:?}");
        }
        let conclusive = SegmentVerdict::Conclusive;
        check(&[Live, Live, Live], conclusive(SegmentState::Ok));
        check(&[Live, Missing, Live], conclusive(SegmentState::Partial));
        check(&[Missing, Missing, Missing], conclusive(SegmentState::Gone));
        check(&[Missing], conclusive(SegmentState::Gone));
        check(
            &[Missing, Failed("HTTP 503".into()), Missing],
            SegmentVerdict::Inconclusive("HTTP 503".into()),
        );
        assert!(matches!(classify(&[]), SegmentVerdict::Inconclusive(_)));
    }

    #[test]
    fn the_first_loss_is_kept() {
        let fresh = SegmentStatus::unchecked(100);
        assert_eq!(fresh.due, Some(100));
        let ok = fresh.concluded(SegmentState::Ok, 0, 110);
        assert_eq!(
            ok,
            SegmentStatus {
                state: Some(SegmentState::Ok),
                checked_at: Some(110),
                lost_at: None,
                due: Some(DAY)
            }
        );
        let partial = ok.concluded(SegmentState::Partial, 0, 200);
        assert_eq!(partial.lost_at, Some(200));
        assert_eq!(partial.due, Some(DAY), "a partial capture is still watched");
        let gone = partial.concluded(SegmentState::Gone, 0, 300);
        assert_eq!((gone.checked_at, gone.lost_at), (Some(300), Some(200)));
        assert_eq!(gone.due, None, "a loss is final: the watch is over");
    }

    /// The ages, in hours, at which a capture checked at `first_check` (hours after the start)
    /// and found ok every time is checked until the watch ends.
    fn watch_ages(first_check: i64) -> Vec<i64> {
        let start = 1_700_000_000;
        let mut now = start + first_check * HOUR;
        let mut ages = Vec::new();
        while let Some(next) = next_watch(start, SegmentState::Ok, now) {
            assert!(next >= now + MIN_INTERVAL, "at most every {MIN_INTERVAL} s");
            ages.push((next - start) / HOUR);
            now = next;
        }
        ages
    }

    #[test]
    fn the_watch_checks_around_each_retention_edge_and_slows_with_age() {
        let day = 24;
        assert_eq!(
            watch_ages(1),
            [
                day,
                2 * day,
                4 * day,
                6 * day,     // the 7-day edge's window opens
                7 * day + 2, // just after it
                8 * day,
                13 * day, // the 14-day edge's window
                14 * day + 2,
                16 * day,
                24 * day,
                32 * day,
                40 * day,
                48 * day,
                56 * day,
                59 * day,     // the 60-day edge's window
                60 * day + 2, // the last check
            ]
        );
        // A capture first checked late (a lookup of an old broadcast) joins where it is.
        assert_eq!(watch_ages(13 * day + 20)[..2], [14 * day + 2, 16 * day]);
        // Two times closer than the minimum interval: the second waits.
        assert_eq!(watch_ages(7 * day - 1)[0], 7 * day + 5);
        assert!(watch_ages(60 * day + 3).is_empty(), "past the last edge");
    }

    #[test]
    fn a_capture_is_at_risk_near_the_edge_after_its_last_check() {
        let start = 1_000_000;
        let checked = |state, at| SegmentStatus {
            state: Some(state),
            checked_at: Some(start + at),
            lost_at: None,
            due: None,
        };
        let ok = checked(SegmentState::Ok, 6 * DAY);
        assert_eq!(at_risk_until(start, &ok), Some(start + 7 * DAY));
        assert!(!at_risk(start, &ok, start + 6 * DAY - 1));
        assert!(at_risk(start, &ok, start + 6 * DAY));
        // Past the edge and not checked since: still at risk, nothing says it survived.
        assert!(at_risk(start, &ok, start + 7 * DAY + HOUR));
        let survived = checked(SegmentState::Ok, 7 * DAY + 2 * HOUR);
        assert_eq!(at_risk_until(start, &survived), Some(start + 14 * DAY));
        assert!(!at_risk(start, &survived, start + 8 * DAY));
        let partial = checked(SegmentState::Partial, 6 * DAY);
        assert!(
            at_risk(start, &partial, start + 6 * DAY + HOUR),
            "partly playable"
        );
        let gone = checked(SegmentState::Gone, 6 * DAY);
        assert_eq!(at_risk_until(start, &gone), None);
        assert_eq!(at_risk_until(start, &SegmentStatus::unchecked(start)), None);
        assert_eq!(at_risk_until(start, &checked(SegmentState::Ok, 61 * DAY)), None);
    }

    #[test]
    fn codes_round_trip() {
        for state in [SegmentState::Ok, SegmentState::Partial, SegmentState::Gone] {
            assert_eq!(SegmentState::from_code(state.code()), Some(state));
        }
        assert_eq!(SegmentState::from_code(0), None);
    }
}
