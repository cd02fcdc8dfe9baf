//! Which tracked channels the current pass of the listing has gone past without showing.
//!
//! The listing is read most viewed first, so once a pass has read pages down to fewer viewers
//! than a channel had at its last sighting, that channel should have been on them. Not there,
//! it has most likely ended (or lost viewers): the confirmation stage asks about it before the
//! merely stale ones. Without this a pass cut by `restart_every` (the rule at Twitch's scale:
//! the listing below the record floor is long) told nothing about ends, only refreshed what it
//! showed, and an ended stream waited for the confirmations' round through every live one.
//! Kept in memory only: after a restart, confirmations go stalest first until a pass is read.

use crate::record::Sighting;
use std::collections::HashMap;

/// A channel counts as gone past once the pass reads below its last viewers divided by this:
/// viewers drift between passes (Twitch updates them about once a minute), and a wrong guess
/// costs a hundredth of a confirmation request.
const MARGIN: f64 = 1.25;

/// Viewers of the channels the listing showed, in the last finished pass and in this one.
#[derive(Debug, Default)]
pub struct PassedOver {
    /// Each channel's viewers at its sighting in the passes before this one.
    before: HashMap<u64, u32>,
    /// The channels this pass has shown so far.
    this_pass: HashMap<u64, u32>,
    /// The fewest viewers on a page this pass has read.
    floor: Option<u32>,
}

impl PassedOver {
    /// A page of the current pass was read (`sightings` as the listing gave them, most viewed
    /// first).
    pub fn page(&mut self, sightings: &[Sighting]) {
        for sighting in sightings {
            self.this_pass.insert(sighting.streamer_id, sighting.viewers);
        }
        if let Some(lowest) = sightings.iter().map(|s| s.viewers).min() {
            self.floor = Some(self.floor.map_or(lowest, |floor| floor.min(lowest)));
        }
    }

    /// A pass ended, read down to the record floor (complete or cut): what it showed is what
    /// the next one is compared with. A channel it did not show is dropped, so a stream
    /// confirmed live although its viewers fell is asked about by staleness alone after that.
    pub fn finished(&mut self) {
        self.before = std::mem::take(&mut self.this_pass);
        self.floor = None;
    }

    /// A pass was abandoned (a failed page, a refused cursor, new settings): what it showed so
    /// far still counts as a sighting, and the next pass starts from the top.
    pub fn abandoned(&mut self) {
        let shown = std::mem::take(&mut self.this_pass);
        self.before.extend(shown);
        self.floor = None;
    }

    /// Whether this pass has read past `streamer_id`'s viewers without showing it.
    pub fn passed(&self, streamer_id: u64) -> bool {
        let Some(floor) = self.floor else {
            return false;
        };
        !self.this_pass.contains_key(&streamer_id)
            && self
                .before
                .get(&streamer_id)
                .is_some_and(|viewers| f64::from(*viewers) >= f64::from(floor) * MARGIN && *viewers > floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(streamer_id: u64, viewers: u32) -> Sighting {
        Sighting {
            stream_id: streamer_id + 1000,
            streamer_id,
            login: format!("chan{streamer_id}"),
            title: String::new(),
            game_id: String::new(),
            game_name: String::new(),
            language: "en".to_string(),
            is_mature: false,
            viewers,
            started_at: 0,
        }
    }

    #[test]
    fn a_channel_is_passed_once_the_pass_reads_below_its_viewers_without_it() {
        let mut passed = PassedOver::default();
        passed.page(&[seen(1, 1000), seen(2, 500), seen(3, 100)]);
        passed.page(&[seen(4, 40), seen(5, 20)]);
        passed.finished();
        // Nothing is passed before the next pass reads a page.
        assert!(!(1..=5).any(|id| passed.passed(id)));
        // Page 1 again: 1 and 3 shown, 2 (500) is missing from pages down to 90 viewers.
        passed.page(&[seen(1, 900), seen(3, 95), seen(6, 90)]);
        assert!(passed.passed(2));
        assert!(!passed.passed(1) && !passed.passed(3), "shown this pass");
        // 4 had 40: within reach of later pages, not passed yet; 5 and 6 likewise; 7 unknown.
        assert!(!passed.passed(4) && !passed.passed(5) && !passed.passed(7));
        // Down to 20 viewers: 4 (40) is passed; 5 (20) is not beyond the margin.
        passed.page(&[seen(8, 30), seen(9, 20)]);
        assert!(passed.passed(4) && !passed.passed(5));
        // Down to 10: 5 (20) would have been shown.
        passed.page(&[seen(10, 10)]);
        assert!(passed.passed(5));
    }

    #[test]
    fn a_finished_pass_forgets_what_it_did_not_show_and_an_abandoned_one_keeps_its_sightings() {
        let mut passed = PassedOver::default();
        passed.page(&[seen(1, 1000), seen(2, 500)]);
        passed.finished();
        // Abandoned after showing 1 only: 1's new viewers count, 2 keeps its old ones.
        passed.page(&[seen(1, 300)]);
        passed.abandoned();
        passed.page(&[seen(3, 200)]);
        assert!(passed.passed(1) && passed.passed(2));
        // A finished pass that showed 3 only: 1 and 2 are no longer compared.
        passed.finished();
        passed.page(&[seen(4, 10)]);
        assert!(!passed.passed(1) && !passed.passed(2) && passed.passed(3));
    }
}
