//! The probe's last resort: a broadcast whose location is known (learned while live, from its
//! video object, or an earlier capture) and whose playlist now answers "missing" is rebuilt
//! from its segments when segment 0 still answers (reference, "Domains": a deleted VOD's
//! playlist answers 403 while its segments may live on).
//!
//! Only for an ended broadcast without a complete capture: while live a miss means no archive,
//! and a stored complete copy beats a rebuilt one. The requests go through the probe's budget
//! like its search's: segment 0 costs one request per retry of a deleted broadcast, a rebuild
//! about fifteen.

use super::ProbeResult;
use crate::record::{ArchiveInfo, Learned, Status, StreamRecord};
use crate::search::rebuild::{RebuildOutcome, rebuild_at};
use crate::search::{Cdn, HandedBack};

/// What a rebuild attempt after a miss made of the probe.
pub(super) struct AfterMiss {
    /// `None`: stopped (shutdown); the probe is handed back.
    pub result: Option<ProbeResult>,
    pub requests: usize,
    /// The rebuilt playlist, for the store.
    pub playlist: Option<String>,
}

/// Whether a miss of `record` is worth a rebuild attempt, and where: the learned domain and
/// the playlist URL there.
pub(super) fn location(cdn: Cdn<'_>, record: &StreamRecord) -> Option<(String, String)> {
    if matches!(record.status, Status::Live | Status::Found) {
        return None;
    }
    // Tried at an earlier miss and no segment answered: segments do not come back.
    if record.probe.last_error.as_deref() == Some(crate::track::GONE_WHERE_IT_WAS) {
        return None;
    }
    let learned = record.probe.learned.as_ref()?;
    let domain = cdn
        .config
        .domains
        .iter()
        .find(|domain| domain.enabled && domain.url == learned.domain)?;
    let module = cdn.config.module_of(domain);
    let path = module.path(
        &record.login,
        record.stream_id,
        &learned.ts,
        module.primary_quality(),
    );
    Some((domain.url.clone(), format!("{}{path}", domain.url)))
}

/// Tries the rebuild at `domain_url` / `playlist_url` (see [`location`]); `partial` is the
/// playlist an earlier capture stored (a copy taken while live), if any.
pub(super) fn attempt(
    cdn: Cdn<'_>,
    record: &StreamRecord,
    (domain_url, playlist_url): (String, String),
    partial: Option<&str>,
    now: i64,
) -> AfterMiss {
    // A copy taken while live told the container: two names of segment 0 to ask, not four.
    let container = record.archive.as_ref().map(|archive| archive.container);
    let attempt = rebuild_at(cdn, &domain_url, &playlist_url, container, partial, false);
    let mut after = AfterMiss {
        result: None,
        requests: attempt.requests,
        playlist: None,
    };
    after.result = match attempt.outcome {
        RebuildOutcome::Rebuilt(rebuilt) => {
            let learned = record.probe.learned.clone().unwrap_or_else(|| Learned {
                domain: domain_url.clone(),
                form: String::new(),
                ts: String::new(),
            });
            let qualities = cdn
                .config
                .domains
                .iter()
                .find(|domain| domain.url == domain_url)
                .map(|domain| vec![cdn.config.module_of(domain).primary_quality().to_string()])
                .unwrap_or_default();
            let archive = ArchiveInfo {
                domain: domain_url.clone(),
                domains: vec![domain_url],
                timestamp_form: learned.form.clone(),
                ts: learned.ts.clone(),
                url: rebuilt.url,
                duration_seconds: rebuilt.summary.duration_seconds,
                segments: rebuilt.summary.segments,
                muted_segments: rebuilt.summary.muted_segments,
                container: rebuilt.summary.container,
                qualities,
                fetched_at: now,
                ended: rebuilt.summary.ended,
                rebuilt: true,
            };
            after.playlist = Some(rebuilt.raw);
            Some(ProbeResult::Hit {
                archive: Box::new(archive),
                learned,
            })
        }
        RebuildOutcome::NoSegments => Some(ProbeResult::Miss),
        RebuildOutcome::Inconclusive(reason) => Some(ProbeResult::Inconclusive {
            reason: format!("the playlist is gone; its rebuild from the segments failed: {reason}"),
        }),
        RebuildOutcome::HandedBack(HandedBack::Stopped) => None,
        // The domain left the configuration meanwhile (or no slot came, which a probe's
        // waiting rebuild never hears): the miss stands.
        RebuildOutcome::HandedBack(HandedBack::NotConfigured(_) | HandedBack::NoBudget) => {
            Some(ProbeResult::Miss)
        }
    };
    after
}

#[cfg(test)]
mod tests {
    use super::super::{DomainBook, ProbeStart, run};
    use super::*;
    use crate::budget::Budget;
    use crate::config::{Config, parse};
    use crate::fetch::{FetchSettings, Fetcher};
    use crate::record::ProbeState;
    use vodprobe_sim::{Broadcast, DomainSpec, Fault, SimCdn};

    const START: i64 = 1_664_038_929;

    fn config(cdn: &SimCdn) -> Config {
        let text = format!(
            "[limits]\nrequests_per_second = 1000\nrequest_timeout = \"1s\"\n\
             [[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(0)
        );
        parse(None, &text, &[]).expect("valid")
    }

    /// An ended broadcast whose path was learned on the CDN's only domain.
    fn record(cdn: &SimCdn, status: Status) -> StreamRecord {
        StreamRecord {
            start_unix: START,
            stream_id: 77,
            streamer_id: 7,
            login: "deleted".into(),
            title: String::new(),
            game_id: String::new(),
            game_name: String::new(),
            language: "en".into(),
            is_mature: false,
            max_viewers: 100,
            first_seen: 0,
            last_seen: 0,
            ended_at: Some(START + 300),
            status,
            public: None,
            probe: ProbeState {
                learned: Some(Learned {
                    domain: cdn.base_url(0),
                    form: "unix".into(),
                    ts: START.to_string(),
                }),
                ..ProbeState::default()
            },
            archive: None,
        }
    }

    fn probe(cdn: &SimCdn, record: &StreamRecord, partial: Option<&str>) -> (ProbeResult, usize, bool) {
        let config = config(cdn);
        let fetcher = Fetcher::new(FetchSettings::from_limits(&config.limits));
        let budget = Budget::new(1000.0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let cdn = Cdn {
            config: &config,
            fetcher: &fetcher,
            budget: &budget,
            steer: &|| false,
        };
        let (result, report) = run(
            cdn,
            record,
            &ProbeStart::default(),
            &DomainBook::default(),
            10,
            partial,
        )
        .expect("not interrupted");
        (result, report.requests, report.playlist.is_some())
    }

    fn deleted(segments: u32) -> (SimCdn, usize) {
        let cdn = SimCdn::start(vec![DomainSpec::healthy()]).expect("cdn");
        let mut broadcast = Broadcast::new("deleted", 77, &START.to_string(), vec![0]);
        broadcast.segments = segments;
        broadcast.total_seconds = f64::from(segments) * 10.0 - 3.0;
        let id = cdn.add_broadcast(broadcast);
        cdn.delete_playlist(id);
        (cdn, id)
    }

    #[test]
    fn a_known_location_whose_playlist_is_gone_is_rebuilt_with_the_partial_copys_length() {
        let (cdn, _) = deleted(40);
        let partial = "#EXTM3U\n#EXT-X-TWITCH-TOTAL-SECS:397.000\n#EXTINF:10.000,\n0.ts\n";
        let (result, requests, stored) = probe(&cdn, &record(&cdn, Status::Pending), Some(partial));
        let ProbeResult::Hit { archive, learned } = result else {
            panic!("{result:?}");
        };
        assert!(archive.rebuilt && archive.ended && stored);
        assert_eq!((archive.segments, archive.duration_seconds), (40, 397.0));
        assert_eq!(learned.ts, START.to_string());
        assert!(requests <= 17, "{requests}");
    }

    #[test]
    fn no_rebuild_while_live_after_a_complete_capture_or_without_segments() {
        let (cdn, _) = deleted(40);
        for status in [Status::Live, Status::Found] {
            let (result, requests, _) = probe(&cdn, &record(&cdn, status), None);
            assert_eq!((result, requests), (ProbeResult::Miss, 1), "{status:?}");
        }
        // Nothing at all there: the four names of segment 0 miss, and so does the probe; two
        // when a copy taken while live told the container.
        let empty = SimCdn::start(vec![DomainSpec::healthy()]).expect("cdn");
        let mut pending = record(&empty, Status::Pending);
        let (result, requests, _) = probe(&empty, &pending, None);
        assert_eq!((result, requests), (ProbeResult::Miss, 5));
        pending.archive = Some(ArchiveInfo {
            domain: empty.base_url(0),
            domains: vec![empty.base_url(0)],
            timestamp_form: "unix".into(),
            ts: START.to_string(),
            url: String::new(),
            duration_seconds: 10.0,
            segments: 1,
            muted_segments: 0,
            container: crate::playlist::Container::Ts,
            qualities: vec!["chunked".into()],
            fetched_at: 0,
            ended: false,
            rebuilt: false,
        });
        let (result, requests, _) = probe(&empty, &pending, None);
        assert_eq!((result, requests), (ProbeResult::Miss, 3));
        // Segment 0 missed at an earlier probe: the last retry asks the playlist alone.
        pending.probe.last_error = Some(crate::track::GONE_WHERE_IT_WAS.to_string());
        let (result, requests, _) = probe(&empty, &pending, None);
        assert_eq!((result, requests), (ProbeResult::Miss, 1));
    }

    #[test]
    fn a_failure_is_inconclusive_not_missing() {
        let (cdn, _) = deleted(40);
        let config = config(&cdn);
        let fetcher = Fetcher::new(FetchSettings::from_limits(&config.limits));
        let budget = Budget::new(1000.0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let search = Cdn {
            config: &config,
            fetcher: &fetcher,
            budget: &budget,
            steer: &|| false,
        };
        let (domain, url) = location(search, &record(&cdn, Status::Pending)).expect("known");
        cdn.set_fault(0, Fault::Unavailable);
        let attempt = rebuild_at(search, &domain, &url, None, None, false);
        assert!(
            matches!(&attempt.outcome, RebuildOutcome::Inconclusive(reason) if reason.contains("503")),
            "{attempt:?}"
        );
        assert_eq!(attempt.requests, 1, "the first failure ends it");
        let after = super::attempt(search, &record(&cdn, Status::Pending), (domain, url), None, 0);
        assert!(matches!(after.result, Some(ProbeResult::Inconclusive { .. })));
    }
}
