//! Whether a capture still plays: the pure rules of the segment check. A playlist can answer
//! while its segments answer 403 (the archive looks found but plays nothing), so after a
//! capture a few segments are asked on the domain that holds it: which ones ([`pick`]), what
//! their answers mean ([`classify`]) and how a conclusive check changes what is stored
//! ([`SegmentStatus::concluded`]).
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

    /// The status after a conclusive check at `now` found `state`; nothing more is due.
    pub fn concluded(self, state: SegmentState, now: i64) -> SegmentStatus {
        let lost = state != SegmentState::Ok;
        SegmentStatus {
            state: Some(state),
            checked_at: Some(now),
            lost_at: self.lost_at.or(lost.then_some(now)),
            due: None,
        }
    }
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
        let ok = fresh.concluded(SegmentState::Ok, 110);
        assert_eq!(
            ok,
            SegmentStatus {
                state: Some(SegmentState::Ok),
                checked_at: Some(110),
                lost_at: None,
                due: None
            }
        );
        let partial = ok.concluded(SegmentState::Partial, 200);
        assert_eq!(partial.lost_at, Some(200));
        let gone = partial.concluded(SegmentState::Gone, 300);
        assert_eq!((gone.checked_at, gone.lost_at), (Some(300), Some(200)));
    }

    #[test]
    fn codes_round_trip() {
        for state in [SegmentState::Ok, SegmentState::Partial, SegmentState::Gone] {
            assert_eq!(SegmentState::from_code(state.code()), Some(state));
        }
        assert_eq!(SegmentState::from_code(0), None);
    }
}
