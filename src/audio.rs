//! Original audio while it lasts: the pure rules of the original-audio watch. Twitch mutes
//! copyrighted audio in passes on the hour; the playlist then lists `N-unmuted.ts`, a silent
//! `N-muted.ts` exists, and the original `N-unmuted.ts` keeps answering for about a day before
//! it answers 403. While it answers, a capture can be served with its original audio.
//!
//! A capture whose stored playlist lists `-unmuted` segments is watched: one or two originals
//! ([`pick`]) are asked on the holding domain, and [`OriginalAudio`] records when they were
//! last seen answering and when first seen gone. Re-checked every `pipeline.original_audio_every`
//! (3 h by default) while they answer (they last about a day, so a few checks cover it), at
//! least every [`RECHECK_NEAR_END`] once the estimated end is near, never again once gone.
//!
//! No I/O here: `search::check_segments` asks, `daemon::audio` schedules, the store keeps
//! [`OriginalAudio`] in `original_audio_v1`.

use crate::segments::SegmentState;
use serde::Serialize;

/// How long the originals are taken to last after the mute pass (seconds): the reference's
/// "about a day" (VodRecovery #50).
pub const GRACE: i64 = 86_400;

/// How often they are asked at most once the estimated end ([`OriginalAudio::until`]) is near
/// or past (seconds): the route stops offering originals that went within the hour.
pub const RECHECK_NEAR_END: i64 = 3_600;

/// What the last conclusive check of the originals found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioState {
    /// The originals asked answered: `?audio=original` serves them.
    Available,
    /// At least one answered "missing": the muted copies are all there is.
    Gone,
}

impl AudioState {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioState::Available => "available",
            AudioState::Gone => "gone",
        }
    }
}

/// A capture's original-audio watch as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginalAudio {
    /// When a playlist listing `-unmuted` segments was first captured (unix seconds): the mute
    /// pass ran before it.
    pub listed_at: i64,
    /// The last check that found the originals answering.
    pub seen_at: Option<i64>,
    /// The first check that found them gone; kept once set, and nothing is due after it.
    pub gone_at: Option<i64>,
    /// When the next check is due; `None` when none is waiting.
    pub due: Option<i64>,
}

impl OriginalAudio {
    /// A capture just seen listing `-unmuted` segments at `listed_at`: checked at once.
    pub fn watch(listed_at: i64) -> OriginalAudio {
        OriginalAudio {
            listed_at,
            seen_at: None,
            gone_at: None,
            due: Some(listed_at),
        }
    }

    /// `None` until a check concluded.
    pub fn state(&self) -> Option<AudioState> {
        if self.gone_at.is_some() {
            Some(AudioState::Gone)
        } else {
            self.seen_at.map(|_| AudioState::Available)
        }
    }

    /// Until when the originals are likely to answer, while they do: [`GRACE`] after the hour
    /// the `-unmuted` listing was first captured in (passes run on the hour, so the pass ran at
    /// or before it). An estimate: the pass may have run hours earlier than the capture.
    pub fn until(&self) -> Option<i64> {
        (self.state() == Some(AudioState::Available)).then(|| self.estimated_end())
    }

    fn estimated_end(&self) -> i64 {
        self.listed_at - self.listed_at.rem_euclid(3_600) + GRACE
    }

    /// The watch after a conclusive check at `now` found the segments asked in `state`, next
    /// due `every` seconds later while they answer: a partial answer counts as gone, since a
    /// player would stop at the first missing one.
    pub fn concluded(self, state: SegmentState, now: i64, every: i64) -> OriginalAudio {
        match state {
            SegmentState::Ok => {
                let step = if now + every < self.estimated_end() {
                    every
                } else {
                    every.min(RECHECK_NEAR_END)
                };
                OriginalAudio {
                    seen_at: Some(now),
                    due: Some(now + step),
                    ..self
                }
            }
            SegmentState::Partial | SegmentState::Gone => OriginalAudio {
                gone_at: self.gone_at.or(Some(now)),
                due: None,
                ..self
            },
        }
    }
}

/// Which of a capture's `-unmuted` originals to ask: the first and the last, as listed.
pub fn pick(originals: &[String]) -> Vec<String> {
    let mut picked: Vec<String> = originals
        .first()
        .into_iter()
        .chain(originals.last())
        .cloned()
        .collect();
    picked.dedup();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: i64 = 3 * 3_600;

    #[test]
    fn a_watch_moves_from_unchecked_to_available_to_gone() {
        let listed = 10 * 3_600 + 1_234;
        let fresh = OriginalAudio::watch(listed);
        assert_eq!(
            (fresh.state(), fresh.due, fresh.until()),
            (None, Some(listed), None)
        );
        let seen = fresh.concluded(SegmentState::Ok, listed + 5, EVERY);
        assert_eq!(seen.state(), Some(AudioState::Available));
        assert_eq!(seen.seen_at, Some(listed + 5));
        assert_eq!(seen.due, Some(listed + 5 + EVERY));
        // A day after the hour the listing was first seen in.
        assert_eq!(seen.until(), Some(10 * 3_600 + GRACE));
        let later = seen.concluded(SegmentState::Ok, listed + 100, EVERY);
        assert_eq!(later.seen_at, Some(listed + 100));
        // Near the estimated end, hourly.
        let end = 10 * 3_600 + GRACE;
        let late = later.concluded(SegmentState::Ok, end - 600, EVERY);
        assert_eq!(late.due, Some(end - 600 + RECHECK_NEAR_END));
        let gone = later.concluded(SegmentState::Gone, listed + 200, EVERY);
        assert_eq!(gone.state(), Some(AudioState::Gone));
        assert_eq!(
            (gone.seen_at, gone.gone_at, gone.due),
            (Some(listed + 100), Some(listed + 200), None)
        );
        assert_eq!(gone.until(), None);
        // The first loss is the date kept.
        assert_eq!(
            gone.concluded(SegmentState::Gone, listed + 900, EVERY).gone_at,
            Some(listed + 200)
        );
    }

    #[test]
    fn a_day_of_originals_costs_eleven_checks() {
        // Listed 20 minutes past an hour; the originals answer until the estimated end, then
        // 403. Every check asks two originals.
        fn checks(listed: i64, gone: i64, every: i64) -> (u32, i64) {
            let mut watch = OriginalAudio::watch(listed);
            let mut count = 0;
            while let Some(due) = watch.due {
                count += 1;
                let state = if due < gone {
                    SegmentState::Ok
                } else {
                    SegmentState::Gone
                };
                watch = watch.concluded(state, due, every);
            }
            (count, watch.gone_at.unwrap_or_default() - gone)
        }
        let listed = 10 * 3_600 + 1_200;
        let end = 10 * 3_600 + GRACE;
        // 3 h apart for the first 21 hours, hourly after: 11 checks (22 requests) with the one
        // that finds them gone, the loss seen within the hour.
        let (count, late) = checks(listed, end, EVERY);
        assert_eq!(count, 11);
        assert!((0..=RECHECK_NEAR_END).contains(&late), "seen {late} s late");
        // Originals lasting two days: hourly after the estimate, 24 more checks.
        assert_eq!(checks(listed, end + GRACE, EVERY).0, 35);
    }

    #[test]
    fn partly_answering_originals_count_as_gone() {
        let watch = OriginalAudio::watch(100).concluded(SegmentState::Partial, 200, EVERY);
        assert_eq!(watch.state(), Some(AudioState::Gone));
    }

    #[test]
    fn picks_the_first_and_last_original() {
        fn check(originals: &[&str], expected: &[&str]) {
            let owned: Vec<String> = originals.iter().map(|s| s.to_string()).collect();
            assert_eq!(pick(&owned), expected, "{originals:?}");
        }
        check(&[], &[]);
        check(&["a/1-unmuted.ts"], &["a/1-unmuted.ts"]);
        check(
            &["a/1-unmuted.ts", "a/2-unmuted.ts", "a/9-unmuted.ts"],
            &["a/1-unmuted.ts", "a/9-unmuted.ts"],
        );
    }
}
