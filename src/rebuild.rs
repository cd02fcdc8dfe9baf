//! Pure rules for rebuilding a deleted broadcast's playlist from its segments (no I/O).
//!
//! A deleted VOD's playlist can answer 403 while `0.ts`, `1.ts`, … still answer (reference,
//! "Domains"). Segments are numbered from 0 and are 10 s long except the last, so the playlist
//! is known once the container, the last segment and which segments are muted are known.
//! [`Rebuild`] is a planner: the caller asks what [`Rebuild::next`] names, feeds the answer to
//! [`Rebuild::answer`], and when `next` returns `None` writes the playlist with
//! [`Rebuild::playlist`]. Keeping the decisions here makes their request counts testable
//! without a network.
//!
//! The last segment is found by a binary search under an assumed bound ([`ASSUMED_SEGMENTS`],
//! about 22.7 hours), growing the bound exponentially if the broadcast is longer: about 15
//! requests for any broadcast up to the bound. Muting renames `N.ts` to `N-unmuted.ts` and adds
//! `N-muted.ts`, so a plain name that misses may be muted rather than past the end: a search
//! step asks the name its lower bound answered with, and the end is only concluded when both
//! names miss. Muted runs the search touched are then widened to their edges by binary search;
//! a run lying wholly between two plain answers is not seen (it would take a request per
//! segment).

use crate::playlist::Container;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Twitch's segment length, in seconds (all but the last).
pub const SEGMENT_SECONDS: f64 = 10.0;

/// The search assumes segment `ASSUMED_SEGMENTS` does not exist until it has to look past it:
/// 2^13 segments is about 22.7 hours, longer than nearly every broadcast, and a power of two
/// keeps the binary search at 13 steps.
pub const ASSUMED_SEGMENTS: u32 = 8192;

/// The names to try for segment 0, in order, to learn the container and whether it is muted:
/// TS is the common case, fMP4 the newer one, a muted first segment the rare one.
pub const FIRST_SEGMENT: [(Container, bool); 4] = [
    (Container::Ts, false),
    (Container::Fmp4, false),
    (Container::Ts, true),
    (Container::Fmp4, true),
];

/// A segment's file name: `N.ts`, `N-muted.ts`, `N.mp4`, `N-muted.mp4`.
pub fn segment_name(container: Container, index: u32, muted: bool) -> String {
    let ext = match container {
        Container::Ts => "ts",
        Container::Fmp4 => "mp4",
    };
    if muted {
        format!("{index}-muted.{ext}")
    } else {
        format!("{index}.{ext}")
    }
}

/// What an earlier, partial copy of the playlist tells a rebuild: how many segments it
/// listed, and its `#EXT-X-TWITCH-TOTAL-SECS`.
pub fn partial_hints(text: &str) -> (u32, Option<f64>) {
    let segments = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count();
    let total = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("#EXT-X-TWITCH-TOTAL-SECS:"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|total| total.is_finite() && *total > 0.0);
    (u32::try_from(segments).unwrap_or(u32::MAX), total)
}

/// One request the planner wants answered: does this segment exist under this name?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    pub index: u32,
    pub muted: bool,
}

/// What was heard of one segment: each name asked, whether it answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    plain: Option<bool>,
    muted: Option<bool>,
}

impl Seen {
    fn present(self) -> bool {
        self.plain == Some(true) || self.muted == Some(true)
    }

    /// Both names missed: no such segment.
    fn gone(self) -> bool {
        self.plain == Some(false) && self.muted == Some(false)
    }

    /// Whether to call it muted: it answered muted, or its plain name missed and the muted one
    /// was not asked (inside the broadcast, a missing plain name means muted).
    fn muted_kind(self) -> bool {
        self.muted == Some(true) || (self.plain == Some(false) && self.muted.is_none())
    }
}

/// A rebuild in progress: what segment 0 told (the container), what each later ask answered.
#[derive(Clone, Debug)]
pub struct Rebuild {
    container: Container,
    seen: BTreeMap<u32, Seen>,
    /// Segments below this existed (an earlier partial copy listed them): the search starts
    /// here. Not an answer: which name they answer under now (muted or not) is unknown.
    floor: u32,
    /// Set once both names of the segment after the last one missed.
    last: Option<u32>,
    requests: u32,
}

impl Rebuild {
    /// Starts from segment 0, which answered under `container` (muted or not).
    /// `known_segments` is how many segments an earlier partial copy listed (0 if none): they
    /// existed, so the search starts above them.
    pub fn new(container: Container, first_muted: bool, known_segments: u32) -> Rebuild {
        let mut seen = BTreeMap::new();
        seen.insert(0, answered(first_muted));
        Rebuild {
            container,
            seen,
            floor: known_segments.saturating_sub(1),
            last: None,
            requests: 0,
        }
    }

    pub fn container(&self) -> Container {
        self.container
    }

    /// Requests answered so far (not counting segment 0's, which the caller made).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The next request to make, or `None` when the playlist is known.
    pub fn next(&self) -> Option<Ask> {
        match self.last {
            None => Some(self.next_for_end()),
            Some(last) => self.next_for_runs(last),
        }
    }

    /// Records the answer to `ask`: whether that name exists.
    pub fn answer(&mut self, ask: Ask, exists: bool) {
        self.requests += 1;
        let seen = self.seen.entry(ask.index).or_default();
        if ask.muted {
            seen.muted = Some(exists);
        } else {
            seen.plain = Some(exists);
        }
        if self.last.is_none() {
            let lo = self.lower();
            if self.seen.get(&(lo + 1)).is_some_and(|s| s.gone()) {
                self.last = Some(lo);
            }
        }
    }

    /// The highest segment known to exist.
    fn lower(&self) -> u32 {
        self.seen
            .iter()
            .rev()
            .find(|(_, s)| s.present())
            .map_or(0, |(&i, _)| i)
            .max(self.floor)
    }

    /// Whether the answered segment at or nearest below `index` was muted: the name to ask
    /// first above it.
    fn muted_below(&self, index: u32) -> bool {
        self.seen
            .range(..=index)
            .rev()
            .find(|(_, s)| s.present())
            .is_some_and(|(_, s)| s.muted_kind())
    }

    fn next_for_end(&self) -> Ask {
        let lo = self.lower();
        let lo_muted = self.muted_below(lo);
        let hi = self
            .seen
            .range(lo + 1..)
            .find(|(_, s)| !s.present())
            .map(|(&i, _)| i)
            .unwrap_or(if lo < ASSUMED_SEGMENTS {
                ASSUMED_SEGMENTS
            } else {
                // Longer than assumed: double the bound.
                lo.saturating_mul(2)
            });
        if hi - lo >= 2 {
            return Ask {
                index: lo + (hi - lo) / 2,
                muted: lo_muted,
            };
        }
        // `hi` is right above the highest known segment: ask whichever name it has not
        // answered yet, the one `lo` has first.
        let seen = self.seen.get(&hi).copied().unwrap_or_default();
        let muted = match (seen.plain, seen.muted) {
            (None, None) => lo_muted,
            (None, Some(_)) => false,
            _ => true,
        };
        Ask { index: hi, muted }
    }

    /// Widens each muted run the search touched: between neighbouring asked segments of
    /// different kinds, asks the middle one until they are adjacent.
    fn next_for_runs(&self, last: u32) -> Option<Ask> {
        let mut previous: Option<(u32, bool)> = None;
        for (&index, &seen) in self.seen.range(..=last) {
            if seen.gone() {
                continue;
            }
            let muted = seen.muted_kind();
            if let Some((before, before_muted)) = previous
                && before_muted != muted
                && index - before >= 2
            {
                return Some(Ask {
                    index: before + (index - before) / 2,
                    muted: before_muted,
                });
            }
            previous = Some((index, muted));
        }
        None
    }

    /// The last segment, once known.
    pub fn last(&self) -> Option<u32> {
        self.last
    }

    /// Whether segment `index` (at most the last) is muted: its own answer, else that of the
    /// asked segments around it when both were muted.
    fn is_muted(&self, index: u32) -> bool {
        if let Some(seen) = self.seen.get(&index)
            && !seen.gone()
        {
            return seen.muted_kind();
        }
        let below = self.seen.range(..index).rev().find(|(_, s)| !s.gone());
        let above = self.seen.range(index + 1..).find(|(_, s)| !s.gone());
        matches!((below, above), (Some((_, b)), Some((_, a))) if b.muted_kind() && a.muted_kind())
    }

    /// The rebuilt playlist, once [`Rebuild::next`] is `None`: Twitch's layout (an EVENT
    /// playlist that has ended, relative URIs), so it is stored and served like a captured
    /// one. `total_seconds` (`#EXT-X-TWITCH-TOTAL-SECS` of a partial copy) gives the last
    /// segment's length when it falls within that segment; otherwise it is taken as 10 s.
    pub fn playlist(&self, total_seconds: Option<f64>) -> Option<String> {
        if self.next().is_some() {
            return None;
        }
        let last = self.last?;
        let before_last = f64::from(last) * SEGMENT_SECONDS;
        let last_seconds = total_seconds
            .map(|total| total - before_last)
            .filter(|seconds| *seconds > 0.0 && *seconds <= SEGMENT_SECONDS)
            .unwrap_or(SEGMENT_SECONDS);
        let total = before_last + last_seconds;
        let version = match self.container {
            Container::Ts => 3,
            Container::Fmp4 => 6,
        };
        let mut text = String::new();
        let _ = write!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:10\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-TWITCH-ELAPSED-SECS:0.000\n#EXT-X-TWITCH-TOTAL-SECS:{total:.3}\n"
        );
        if self.container == Container::Fmp4 {
            text.push_str("#EXT-X-MAP:URI=\"init-0.mp4\"\n");
        }
        for index in 0..=last {
            let seconds = if index == last {
                last_seconds
            } else {
                SEGMENT_SECONDS
            };
            let name = segment_name(self.container, index, self.is_muted(index));
            let _ = write!(text, "#EXTINF:{seconds:.3},\n{name}\n");
        }
        text.push_str("#EXT-X-ENDLIST\n");
        Some(text)
    }
}

fn answered(muted: bool) -> Seen {
    if muted {
        Seen {
            plain: None,
            muted: Some(true),
        }
    } else {
        Seen {
            plain: Some(true),
            muted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist;

    fn runs(pairs: &[(u32, u32)]) -> Vec<std::ops::Range<u32>> {
        pairs.iter().map(|&(from, to)| from..to).collect()
    }

    /// A broadcast as the CDN holds it: `segments` of them, these muted.
    struct Held {
        segments: u32,
        muted: Vec<std::ops::Range<u32>>,
    }

    impl Held {
        fn exists(&self, ask: Ask) -> bool {
            let muted = self.muted.iter().any(|r| r.contains(&ask.index));
            ask.index < self.segments && muted == ask.muted
        }
    }

    /// Runs a rebuild against `held` and returns the playlist and the requests it took
    /// (segment 0's included).
    fn run(held: &Held, container: Container, known: u32, total: Option<f64>) -> (String, u32) {
        let first_muted = held.muted.iter().any(|r| r.contains(&0));
        let mut rebuild = Rebuild::new(container, first_muted, known);
        while let Some(ask) = rebuild.next() {
            assert!(rebuild.requests() < 200, "runaway search");
            rebuild.answer(ask, held.exists(ask));
        }
        assert_eq!(rebuild.last(), Some(held.segments - 1));
        (rebuild.playlist(total).unwrap(), rebuild.requests() + 1)
    }

    fn uris(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn expected(held: &Held, container: Container) -> Vec<String> {
        (0..held.segments)
            .map(|i| segment_name(container, i, held.muted.iter().any(|r| r.contains(&i))))
            .collect()
    }

    #[test]
    fn finds_the_end_for_every_small_length_and_powers_of_two() {
        let lengths = (1..=70).chain([127, 128, 129, 255, 256, 257, 4095, 4096, 4097, 8191, 8192, 8193]);
        for segments in lengths {
            let held = Held {
                segments,
                muted: Vec::new(),
            };
            let (text, requests) = run(&held, Container::Ts, 0, None);
            assert_eq!(uris(&text), expected(&held, Container::Ts), "{segments} segments");
            let summary = playlist::validate(text.as_bytes(), usize::MAX).unwrap();
            assert_eq!(summary.segments, segments);
            assert!(summary.ended);
            assert!(
                requests <= 15 || segments >= ASSUMED_SEGMENTS,
                "{segments}: {requests}"
            );
        }
    }

    #[test]
    fn one_segment_broadcast_lasts_what_the_partial_copy_said() {
        let held = Held {
            segments: 1,
            muted: Vec::new(),
        };
        let (text, _) = run(&held, Container::Ts, 0, Some(4.5));
        assert!(text.contains("#EXTINF:4.500,\n0.ts\n#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains("#EXT-X-TWITCH-TOTAL-SECS:4.500\n"));
    }

    #[test]
    fn last_segment_is_ten_seconds_unless_the_total_falls_within_it() {
        let held = Held {
            segments: 3,
            muted: Vec::new(),
        };
        let (text, _) = run(&held, Container::Ts, 0, Some(27.25));
        assert!(text.contains("#EXTINF:7.250,\n2.ts\n"), "{text}");
        // A partial copy's total from before the end says nothing about the last segment.
        let (text, _) = run(&held, Container::Ts, 0, Some(12.0));
        assert!(text.contains("#EXTINF:10.000,\n2.ts\n"), "{text}");
        assert!(text.contains("#EXT-X-TWITCH-TOTAL-SECS:30.000\n"));
    }

    #[test]
    fn fmp4_lists_its_init_section_and_mp4_segments() {
        let held = Held {
            segments: 5,
            muted: runs(&[(3, 5)]),
        };
        let (text, _) = run(&held, Container::Fmp4, 0, None);
        assert!(text.contains("#EXT-X-MAP:URI=\"init-0.mp4\"\n"));
        assert_eq!(uris(&text), expected(&held, Container::Fmp4));
        let summary = playlist::validate(text.as_bytes(), usize::MAX).unwrap();
        assert_eq!(summary.container, Container::Fmp4);
        assert_eq!(summary.muted_segments, 2);
    }

    #[test]
    fn muted_runs_the_search_touches_are_listed_muted_to_their_edges() {
        for (segments, muted) in [
            (30, runs(&[(10, 20)])),
            (30, runs(&[(0, 30)])),
            (30, runs(&[(0, 7)])),
            (30, runs(&[(25, 30)])),
            (4320, runs(&[(3900, 4320)])),
            (4320, runs(&[(4000, 4200), (4300, 4310)])),
            (1, runs(&[(0, 1)])),
        ] {
            let held = Held { segments, muted };
            let (text, requests) = run(&held, Container::Ts, 0, None);
            assert_eq!(uris(&text), expected(&held, Container::Ts), "{:?}", held.muted);
            assert!(requests <= 80, "{requests}");
        }
    }

    #[test]
    fn a_muted_run_between_two_plain_answers_is_not_seen() {
        // Known limit: nothing asked lands in 3..5 (it would take a request per segment).
        let held = Held {
            segments: 30,
            muted: runs(&[(3, 5)]),
        };
        let (text, _) = run(&held, Container::Ts, 0, None);
        assert!(uris(&text).contains(&"3.ts".to_string()));
    }

    #[test]
    fn partial_hints_read_the_listed_segments_and_total() {
        let text = "#EXTM3U\n#EXT-X-TWITCH-TOTAL-SECS:24.500\n#EXTINF:10.000,\n0.ts\n\
                    #EXTINF:10.000,\n1-unmuted.ts\n#EXTINF:4.500,\n2.ts\n";
        assert_eq!(partial_hints(text), (3, Some(24.5)));
        assert_eq!(partial_hints("#EXTM3U\n#EXT-X-TWITCH-TOTAL-SECS:x\n"), (0, None));
    }

    #[test]
    fn a_partial_copy_starts_the_search_above_what_it_listed() {
        let held = Held {
            segments: 4320,
            muted: Vec::new(),
        };
        let (_, cold) = run(&held, Container::Ts, 0, None);
        let (text, warm) = run(&held, Container::Ts, 4000, None);
        assert_eq!(uris(&text).len(), 4320);
        assert!(warm <= cold, "{warm} > {cold}");
        // What the copy listed is a floor, not an answer: a tail muted since is still named
        // -muted, from the floor's own segment on.
        let held = Held {
            segments: 4320,
            muted: runs(&[(99, 4320)]),
        };
        let (text, _) = run(&held, Container::Ts, 100, None);
        assert_eq!(uris(&text), expected(&held, Container::Ts));
    }

    /// Rebuilds' requests per broadcast by length, segment 0's request included (printed for
    /// the README's figures: `cargo test --lib rebuild::tests::requests_per_length -- --nocapture`).
    #[test]
    fn requests_per_length() {
        for hours in [1u32, 4, 12, 48] {
            let held = Held {
                segments: hours * 360,
                muted: Vec::new(),
            };
            let (_, requests) = run(&held, Container::Ts, 0, None);
            println!("rebuild of a {hours} h broadcast: {requests} requests");
            let bound = if hours * 360 < ASSUMED_SEGMENTS { 15 } else { 32 };
            assert!(requests <= bound, "{hours} h: {requests}");
        }
    }
}
