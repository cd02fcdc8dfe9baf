//! Unit tests of the probe rules: candidates, the channel-history rules, outcomes.

use super::*;
use crate::budget::Budget;
use crate::config::parse;
use crate::fetch::Fetcher;
use crate::record::{ProbeState, Status};

fn config() -> Config {
    let text = "[[domain]]\nurl = \"http://a.test/\"\nprobe = \"twitch-vod\"\n\
                [[domain]]\nurl = \"http://b.test/\"\nprobe = \"twitch-vod\"\n\
                [[domain]]\nurl = \"http://c.test/\"\nprobe = \"twitch-vod\"\n";
    parse(None, text, &[]).expect("valid")
}

fn record() -> StreamRecord {
    StreamRecord {
        start_unix: 1_664_038_929,
        stream_id: 47_198_535_725,
        streamer_id: 7,
        login: "gmhikaru".into(),
        title: String::new(),
        game_id: String::new(),
        game_name: String::new(),
        language: "en".into(),
        is_mature: false,
        max_viewers: 100,
        first_seen: 0,
        last_seen: 0,
        ended_at: Some(0),
        status: Status::Pending,
        public: None,
        probe: ProbeState::default(),
        archive: None,
    }
}

fn summary(list: &[Candidate]) -> Vec<(usize, String)> {
    list.iter().map(|c| (c.domain, c.ts.clone())).collect()
}

#[test]
fn without_history_domains_in_order_then_forms() {
    let (list, skipped) = candidates(&config(), &record(), None, &DomainBook::default(), false);
    assert_eq!(skipped, 0);
    assert_eq!(list.len(), 9);
    assert_eq!(
        list[0].path,
        "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929/chunked/index-dvr.m3u8"
    );
    assert_eq!(
        summary(&list[..3]),
        vec![
            (0, "1664038929".into()),
            (1, "1664038929".into()),
            (2, "1664038929".into())
        ]
    );
}

#[test]
fn a_learned_path_costs_one_request_first() {
    let mut record = record();
    record.probe.learned = Some(Learned {
        domain: "http://c.test/".into(),
        form: "unix-1".into(),
        ts: "1664038928".into(),
    });
    let (list, _) = candidates(&config(), &record, None, &DomainBook::default(), false);
    assert_eq!(summary(&list), vec![(2, "1664038928".into())]);
    // Asked even when marked down: it is the one place the copy is.
    let mut book = DomainBook::default();
    book.record_failure("http://c.test/", "timed out");
    let (list, skipped) = candidates(&config(), &record, None, &book, false);
    assert_eq!((summary(&list), skipped), (vec![(2, "1664038928".into())], 0));
    // A domain removed from the config: the same path on the others.
    let mut gone = record.clone();
    if let Some(learned) = gone.probe.learned.as_mut() {
        learned.domain = "http://removed.test/".into();
    }
    let (list, _) = candidates(&config(), &gone, None, &book, false);
    assert_eq!(
        summary(&list),
        vec![(0, "1664038928".into()), (1, "1664038928".into())]
    );
}

/// A config whose domains are the simulated CDN's, with a budget far above what a probe
/// needs (so only the probe's own restraint limits its requests).
fn sim_config(cdn: &vodprobe_sim::SimCdn) -> Config {
    let mut text = "[limits]\nrequests_per_second = 1000\nrequest_timeout = \"2s\"\n".to_string();
    for domain in 0..cdn.domain_count() {
        text.push_str(&format!(
            "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(domain)
        ));
    }
    parse(None, &text, &[]).expect("valid")
}

fn probe_sim(cdn: &vodprobe_sim::SimCdn, record: &StreamRecord, hint: Option<&Learned>) -> ProbeReport {
    let start = ProbeStart {
        hint: hint.cloned(),
        restart: true,
        ..ProbeStart::default()
    };
    let (result, report) = probe_sim_with(cdn, record, &start);
    assert!(matches!(result, ProbeResult::Hit { .. }), "{result:?}");
    report
}

fn probe_sim_with(
    cdn: &vodprobe_sim::SimCdn,
    record: &StreamRecord,
    start: &ProbeStart,
) -> (ProbeResult, ProbeReport) {
    probe_sim_in(cdn, record, start, &DomainBook::default())
}

/// [`probe_sim_with`] with what the appliance knows of the domains (`book`).
fn probe_sim_in(
    cdn: &vodprobe_sim::SimCdn,
    record: &StreamRecord,
    start: &ProbeStart,
    book: &DomainBook,
) -> (ProbeResult, ProbeReport) {
    let config = sim_config(cdn);
    let fetcher = Fetcher::new(crate::fetch::FetchSettings::from_limits(&config.limits));
    let budget = Budget::new(1000.0);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let cdn = Cdn {
        config: &config,
        fetcher: &fetcher,
        budget: &budget,
        steer: &|| false,
    };
    run(cdn, record, start, book, 0, None).expect("not interrupted")
}

#[test]
fn a_full_search_leaves_the_second_of_minute_form_to_a_later_probe_where_one_follows() {
    let domains = (0..3).map(|_| vodprobe_sim::DomainSpec::healthy()).collect();
    let cdn = vodprobe_sim::SimCdn::start(domains).expect("cdn");
    let plain = ProbeStart::default();
    let (result, report) = probe_sim_with(&cdn, &record(), &plain);
    assert_eq!((result, report.requests), (ProbeResult::Miss, 3 * 2));
    let restart = ProbeStart {
        restart: true,
        ..ProbeStart::default()
    };
    assert_eq!(probe_sim_with(&cdn, &record(), &restart).1.requests, 3 * 3);
    let mut last = record();
    last.probe.misses = rules().retries.len() as u32;
    assert_eq!(probe_sim_with(&cdn, &last, &plain).1.requests, 3 * 3);
    // A path known in that form (a restart's video named it) is asked as it is.
    let mut named = record();
    named.probe.learned = Some(Learned {
        domain: cdn.base_url(1),
        form: TimestampForm::SecondOfMinute.as_str().to_string(),
        ts: "9".into(),
    });
    let (result, _) = probe_sim_with(&cdn, &named, &plain);
    assert_eq!(result, ProbeResult::Miss);
    assert!(
        cdn.requests(1)
            .iter()
            .any(|path| path.contains("_9/chunked/index-dvr.m3u8"))
    );
    // The only search a broadcast gets (its channel lists no video) asks every form.
    let only = ProbeStart {
        lists_no_video: true,
        ..ProbeStart::default()
    };
    assert_eq!(probe_sim_with(&cdn, &record(), &only).1.requests, 3 * 3);
}

#[test]
fn a_hinted_first_search_asks_the_rare_form_on_the_channels_domain_only() {
    let domains = (0..6).map(|_| vodprobe_sim::DomainSpec::healthy()).collect();
    let cdn = vodprobe_sim::SimCdn::start(domains).expect("cdn");
    let record = record();
    let hinted = ProbeStart {
        hint: Some(Learned {
            domain: cdn.base_url(4),
            form: "unix".into(),
            ts: String::new(),
        }),
        ..ProbeStart::default()
    };
    // Nothing stored: the channel's domain in its three forms, and no other domain (the last
    // retry asks them, in the hint's form).
    let (result, report) = probe_sim_with(&cdn, &record, &hinted);
    assert_eq!((result, report.requests), (ProbeResult::Miss, 3));
    assert_eq!(cdn.requests(4).len(), 3);
    let last = StreamRecord {
        probe: ProbeState {
            misses: config().pipeline.retries.len() as u32,
            ..record.probe.clone()
        },
        ..record.clone()
    };
    let (result, report) = probe_sim_with(&cdn, &last, &hinted);
    assert_eq!((result, report.requests), (ProbeResult::Miss, 3 + 5));
    assert!((0..6).filter(|&d| d != 4).all(|d| cdn.requests(d).len() == 1));
    // Stored in the 1 % form on the channel's domain: found by this first search (before, a
    // miss left to a retry) among its first three candidates; with two in flight after the
    // first, one more may go out before the hit comes back.
    let ts = TimestampForm::SecondOfMinute.render(record.start_unix);
    cdn.add_broadcast(vodprobe_sim::Broadcast::new(
        &record.login,
        record.stream_id,
        &ts,
        vec![4],
    ));
    let (result, report) = probe_sim_with(&cdn, &record, &hinted);
    assert!(matches!(result, ProbeResult::Hit { .. }), "{result:?}");
    assert!(report.requests <= 4, "{}", report.requests);
}

#[test]
fn a_known_path_is_asked_alone_even_with_budget_to_spare() {
    let cdn = vodprobe_sim::SimCdn::start((0..6).map(|_| vodprobe_sim::DomainSpec::healthy()).collect())
        .expect("cdn");
    let record = record();
    cdn.add_broadcast(vodprobe_sim::Broadcast::new(
        &record.login,
        record.stream_id,
        &record.start_unix.to_string(),
        vec![4],
    ));
    let total = |cdn: &vodprobe_sim::SimCdn| (0..6).map(|d| cdn.requests(d).len()).sum::<usize>();
    // Learned while live: one request, not one per domain in flight.
    let mut learned = record.clone();
    learned.probe.learned = Some(Learned {
        domain: cdn.base_url(4),
        form: "unix".into(),
        ts: record.start_unix.to_string(),
    });
    assert_eq!(probe_sim(&cdn, &learned, None).requests, 1);
    assert_eq!(total(&cdn), 1);
    // The streamer's last domain and form: one request too.
    let hint = Learned {
        domain: cdn.base_url(4),
        form: "unix".into(),
        ts: String::new(),
    };
    assert_eq!(probe_sim(&cdn, &record, Some(&hint)).requests, 1);
    assert_eq!(total(&cdn), 2);
    // A cold search asks a few at a time and stops at the hit. How many misses come back
    // while the hit is in flight depends on timing, so only the end is certain: the hit
    // (fifth in the plan) is asked, and the rest of the plan is not.
    let planned = candidates(&sim_config(&cdn), &record, None, &DomainBook::default(), false)
        .0
        .len();
    let report = probe_sim(&cdn, &record, None);
    assert!(
        report.requests >= 5 && report.requests < planned,
        "{} of {planned}",
        report.requests
    );
}

#[test]
fn the_streamers_domain_and_form_come_first() {
    let hint = Learned {
        domain: "http://b.test/".into(),
        form: "second-of-minute".into(),
        ts: "5".into(),
    };
    let (list, _) = candidates(&config(), &record(), Some(&hint), &DomainBook::default(), false);
    assert_eq!(
        summary(&list[..3]),
        vec![
            (1, "9".into()),
            (1, "1664038929".into()),
            (1, "1664038928".into())
        ]
    );
    // The channel's domain alone (no candidate twice); the last retry asks every other
    // domain in the hint's form.
    assert_eq!(list.len(), 3);
    let mut last = record();
    last.probe.misses = config().pipeline.retries.len() as u32;
    let (list, _) = candidates(&config(), &last, Some(&hint), &DomainBook::default(), false);
    assert_eq!(
        summary(&list),
        vec![
            (1, "9".into()),
            (1, "1664038929".into()),
            (1, "1664038928".into()),
            (0, "9".into()),
            (2, "9".into())
        ]
    );
    // So does a probe whose miss would settle the broadcast (`sweep`), the hint first.
    let (list, _) = candidates(&config(), &record(), Some(&hint), &DomainBook::default(), true);
    assert_eq!(list.len(), 9);
    assert_eq!(summary(&list[..1]), vec![(1, "9".into())]);
}

fn video(stream_id: u64, domain: &str, ts: &str, public: bool) -> VideoHint {
    VideoHint {
        broadcast: VideoOf::Stream(stream_id),
        domain: domain.to_string(),
        folder: format!("hash_gmhikaru_{stream_id}_{ts}"),
        ts: ts.to_string(),
        public,
        muted: None,
        muted_stretches: Vec::new(),
    }
}

#[test]
fn a_video_reveals_the_path_and_whether_it_is_public() {
    let record = record();
    let videos = vec![
        video(1, "http://a.test/", "1", true),
        video(47_198_535_725, "http://b.test/", "1664038928", false),
    ];
    let facts = from_videos(&config(), &record, &videos);
    let (learned, public) = (facts.learned, facts.public);
    let learned = learned.expect("learned");
    assert_eq!(
        (
            learned.domain.as_str(),
            learned.form.as_str(),
            learned.ts.as_str()
        ),
        ("http://b.test/", "unix-1", "1664038928")
    );
    assert_eq!(public, Some(false));
    // The learned path is the first and only-domain-first candidate: one request.
    let mut with_path = record.clone();
    with_path.probe.learned = Some(learned);
    let (list, _) = candidates(&config(), &with_path, None, &DomainBook::default(), false);
    assert_eq!((list[0].domain, list[0].ts.as_str()), (1, "1664038928"));
}

#[test]
fn the_own_video_says_whether_it_was_muted() {
    let record = record();
    let own = |muted: Option<bool>| VideoHint {
        muted,
        ..video(47_198_535_725, "http://b.test/", "1664038928", true)
    };
    for muted in [Some(true), Some(false), None] {
        assert_eq!(from_videos(&config(), &record, &[own(muted)]).muted, muted);
    }
    // Another broadcast's muted video says nothing about this one.
    let other = VideoHint {
        muted: Some(true),
        ..video(1, "http://b.test/", "1", true)
    };
    assert_eq!(from_videos(&config(), &record, &[other]).muted, None);
}

#[test]
fn absent_or_unknown_domain_videos() {
    let facts = from_videos(&config(), &record(), &[video(5, "http://c.test/", "9", true)]);
    assert_eq!((facts.learned, facts.public), (None, Some(false)));
    // The channel's other video names its domain: searched first.
    let hint = facts.channel_hint.expect("channel hint");
    assert_eq!(hint.domain, "http://c.test/");
    let (list, _) = candidates(&config(), &record(), Some(&hint), &DomainBook::default(), false);
    assert_eq!((list[0].domain, list[0].ts.as_str()), (2, "1664038929"));
    let unknown = [video(47_198_535_725, "http://new-cdn.test/", "1664038929", true)];
    let facts = from_videos(&config(), &record(), &unknown);
    assert_eq!((facts.learned, facts.public), (None, Some(true)));
    assert_eq!(facts.unknown_domain.as_deref(), Some("http://new-cdn.test/"));
    // Helix's processing placeholder: the video exists and is public, the path is searched.
    let placeholder = [video(47_198_535_725, "", "", true)];
    let facts = from_videos(&config(), &record(), &placeholder);
    assert_eq!(
        (facts.learned, facts.public, facts.unknown_domain),
        (None, Some(true), None)
    );
}

#[test]
fn a_video_naming_only_its_start_is_matched_by_time() {
    // GQL's null seekPreviewsURL: no stream id, no path; createdAt is the broadcast's start.
    let record = record();
    let started = |at: i64, public: bool| VideoHint {
        broadcast: VideoOf::StartedAt(at),
        domain: String::new(),
        folder: String::new(),
        ts: String::new(),
        public,
        muted: None,
        muted_stretches: Vec::new(),
    };
    let start = record.start_unix;
    let near = [started(start + 3, true)];
    let facts = from_videos(&config(), &record, &near);
    assert_eq!((facts.learned, facts.public), (None, Some(true)));
    // The nearest within the tolerance wins; farther ones are other broadcasts.
    let two = [
        started(start - VIDEO_START_TOLERANCE, false),
        started(start + 1, true),
    ];
    assert_eq!(from_videos(&config(), &record, &two).public, Some(true));
    let edge = [started(start - VIDEO_START_TOLERANCE, true)];
    assert_eq!(from_videos(&config(), &record, &edge).public, Some(true));
    let far = [
        started(start + VIDEO_START_TOLERANCE + 1, true),
        started(start - 3600, true),
    ];
    assert_eq!(from_videos(&config(), &record, &far).public, Some(false));
    // A video naming the stream id is the broadcast's own, whatever starts nearby.
    let both = [started(start, true), video(record.stream_id, "", "", false)];
    assert_eq!(from_videos(&config(), &record, &both).public, Some(false));
}

#[test]
fn hit_counts_order_domains_and_down_domains_are_left_out() {
    let mut book = DomainBook::default();
    book.record_hit("http://c.test/", 1);
    book.record_failure("http://a.test/", "timed out");
    let (list, skipped) = candidates(&config(), &record(), None, &book, false);
    assert_eq!(skipped, 1);
    assert_eq!(list[0].domain, 2);
    assert!(list.iter().all(|c| c.domain != 0));
    book.record_success("http://a.test/", 2);
    assert!(!book.is_down("http://a.test/"));
}

fn learned(domain: &str) -> Learned {
    Learned {
        domain: domain.into(),
        form: "unix".into(),
        ts: "1664038929".into(),
    }
}

fn rules() -> Rules {
    Rules::from_config(&config())
}

#[test]
fn a_live_broadcast_without_any_archive_video_is_searched_while_live() {
    let mut live = record();
    live.status = Status::Live;
    let empty_list = VideoFacts {
        public: Some(false),
        ..VideoFacts::default()
    };
    let asked = std::cell::Cell::new(false);
    let start = start(&mut live.clone(), Some(empty_list.clone()), || {
        asked.set(true);
        None
    });
    // Searched now (nothing deferred), the one search a miss settles.
    assert!(start.lists_no_video);
    assert_eq!(start.public, Some(false));
    assert!(asked.get(), "no learned path: the previous broadcast's is asked");
    assert_eq!(live_fetch_skipped(&live, &start, &[]), None);
    // The channel's other videos name a domain: searched now, that domain as the hint.
    let mut live = record();
    live.status = Status::Live;
    let facts = VideoFacts {
        public: Some(false),
        channel_hint: Some(learned("http://b.test/")),
        ..VideoFacts::default()
    };
    let start = super::start(&mut live, Some(facts), || None);
    assert_eq!(
        (start.lists_no_video, start.hint),
        (false, Some(learned("http://b.test/")))
    );
}

/// A broadcast of the same channel `days` days before `record()`, concluded not found
/// after a full search (`searched`) or settled by history.
fn empty_before(days: i64, searched: bool) -> StreamRecord {
    let mut earlier = record();
    earlier.start_unix -= days * 86_400;
    earlier.stream_id -= days as u64;
    earlier.status = Status::NotFound;
    earlier.public = Some(false);
    if searched {
        earlier.probe.misses = 1;
    } else {
        earlier.probe.last_error = Some(KNOWN_EMPTY.to_string());
    }
    earlier
}

#[test]
fn a_channel_that_stores_nothing_is_settled_without_a_search_and_reverified() {
    let start = record().start_unix;
    let searched = |days| empty_before(days, true);
    let settled = |days| empty_before(days, false);
    // One full search after the end, empty: known to store nothing (the empty list must
    // agree too, see settled_by_history).
    assert!(keeps_no_vods(&[searched(1), searched(2)], start));
    assert!(keeps_no_vods(&[searched(1)], start));
    // One search while live is enough.
    let mut live_miss = empty_before(1, false);
    live_miss.probe.missed_live = true;
    live_miss.probe.last_error = Some(SEARCHED_LIVE.into());
    assert!(keeps_no_vods(&[live_miss], start));
    // No history, or the last broadcast captured: searched.
    assert!(!keeps_no_vods(&[], start));
    let found_at = |days| {
        let mut found = searched(days);
        found.status = Status::Found;
        found
    };
    assert!(!keeps_no_vods(&[found_at(1), searched(2), searched(3)], start));
    let mut shed = searched(1);
    shed.probe.misses = 0;
    shed.probe.last_error = Some(track::SHED.into());
    assert!(!keeps_no_vods(&[shed.clone(), found_at(2), searched(3)], start));
    assert!(!keeps_no_vods(&[shed.clone()], start));
    // A broadcast shed for want of budget says nothing: passed over.
    assert!(keeps_no_vods(&[shed, searched(2), searched(3)], start));
    // Broadcasts settled since the last full search keep it known…
    let settled_days = REVERIFY_EVERY as i64 - 2;
    let mut history: Vec<StreamRecord> = (1..=settled_days).map(|d| settled(d / 2)).collect();
    history.push(searched(settled_days / 2 + 1));
    assert!(keeps_no_vods(&history, start));
    // …until the last full search is REVERIFY_EVERY broadcasts back: searched again.
    history.insert(0, settled(0));
    assert!(!keeps_no_vods(&history, start + 1));
    // Or older than REVERIFY_AFTER.
    let month = REVERIFY_AFTER / 86_400;
    assert!(!keeps_no_vods(&[settled(1), searched(month + 1)], start));
    assert!(keeps_no_vods(&[settled(1), searched(month - 1)], start));
    assert!(keeps_no_vods(
        &[settled(1), settled(2), searched(month - 1)],
        start
    ));
    // Broadcasts after this one (a restart listed later) do not count.
    let mut later = searched(0);
    later.start_unix = start + 10;
    assert!(!keeps_no_vods(&[later], start));

    let history = [searched(1), searched(2)];
    let no_video = VideoFacts {
        public: Some(false),
        ..VideoFacts::default()
    };
    // Ended: settled not found without a CDN request.
    let ended = record();
    let result = settled_by_history(&ended, Some(&no_video), &history).expect("settled");
    assert_eq!(
        result,
        ProbeResult::KnownEmpty {
            reason: KNOWN_EMPTY.to_string()
        }
    );
    let mut concluded = ended.clone();
    concluded.probe.next_due = Some(10);
    let concluded = conclude(concluded, result, &ProbeStart::default(), 20, &rules()).expect("waiting");
    assert_eq!(concluded.status, Status::NotFound);
    assert_eq!(concluded.probe.next_due, None);
    // It counts as settled for the next broadcast.
    assert!(concluded_empty(&concluded));
    // Live (its absence probe): waits for its end, still without a request.
    let mut live = record();
    live.status = Status::Live;
    live.probe.absence_probed = true;
    let result = settled_by_history(&live, Some(&no_video), &history).expect("deferred");
    assert!(matches!(result, ProbeResult::Deferred { .. }));
    // Searched as before when the video list was not read, or shows any video.
    assert_eq!(settled_by_history(&ended, None, &history), None);
    let hinted = VideoFacts {
        channel_hint: Some(learned("http://b.test/")),
        ..no_video.clone()
    };
    assert_eq!(settled_by_history(&ended, Some(&hinted), &history), None);
    assert_eq!(settled_by_history(&ended, Some(&no_video), &[]), None);
}

#[test]
fn one_full_search_settles_a_broadcast_whose_channel_lists_no_video() {
    let no_video = VideoFacts {
        public: Some(false),
        ..VideoFacts::default()
    };
    let mut fresh = record();
    let start = start(&mut fresh, Some(no_video.clone()), || None);
    assert!(start.lists_no_video);
    // A miss after the end: not found at once, no retry and no second search.
    let mut waiting = record();
    waiting.status = Status::Pending;
    waiting.probe.next_due = Some(100);
    let done = conclude(waiting.clone(), ProbeResult::Miss, &start, 200, &rules()).expect("waits");
    assert_eq!((done.status, done.probe.next_due), (Status::NotFound, None));
    assert_eq!(done.probe.last_error.as_deref(), Some(SEARCHED_ONCE));
    assert!(concluded_empty(&done));
    // The same miss where the list shows the channel's other videos: retried as before.
    let hinted = ProbeStart {
        public: Some(false),
        ..ProbeStart::default()
    };
    let retried = conclude(waiting.clone(), ProbeResult::Miss, &hinted, 200, &rules()).expect("waits");
    assert_eq!(retried.status, Status::Pending);
    assert!(retried.probe.next_due.is_some());
    // An inconclusive search settles nothing.
    let inconclusive = ProbeResult::Inconclusive {
        reason: "down".into(),
    };
    let backing_off = conclude(waiting, inconclusive, &start, 200, &rules()).expect("waits");
    assert_eq!(backing_off.status, Status::Pending);
    // A miss while live: its end is settled without another search while the list stays
    // empty, searched again if a video appeared.
    let mut ended = record();
    ended.status = Status::Pending;
    ended.probe.missed_live = true;
    assert_eq!(
        settled_by_history(&ended, Some(&no_video), &[]),
        Some(ProbeResult::KnownEmpty {
            reason: SEARCHED_LIVE.to_string()
        })
    );
    let hinted_facts = VideoFacts {
        channel_hint: Some(learned("http://b.test/")),
        ..no_video
    };
    assert_eq!(settled_by_history(&ended, Some(&hinted_facts), &[]), None);
    assert_eq!(settled_by_history(&ended, None, &[]), None);
}

#[test]
fn a_retry_asks_the_channels_domain_only_until_the_last_one() {
    let config = config();
    let book = DomainBook::default();
    let hint = learned("http://b.test/");
    let mut retry = record();
    retry.probe.misses = 1;
    let (list, _) = candidates(&config, &retry, Some(&hint), &book, false);
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|c| config.domains[c.domain].url == "http://b.test/")
    );
    // The first probe asks there alone too; the last retry sweeps every domain.
    let (first, _) = candidates(&config, &record(), Some(&hint), &book, false);
    assert_eq!(first.len(), 3);
    retry.probe.misses = config.pipeline.retries.len() as u32;
    let (last, _) = candidates(&config, &retry, Some(&hint), &book, false);
    assert!(last.len() > 3);
    // While the channel's domain is down, nothing is asked (until the last retry): the
    // others do not hold its copies.
    let mut down = DomainBook::default();
    down.record_failure("http://b.test/", "timed out");
    let (none, skipped) = candidates(&config, &record(), Some(&hint), &down, false);
    assert!(none.is_empty());
    assert_eq!(skipped, 1);
    let (last_down, _) = candidates(&config, &retry, Some(&hint), &down, false);
    assert_eq!(last_down.len(), 2, "the others, in the hint's form");
    assert!(
        last_down
            .iter()
            .all(|c| config.domains[c.domain].url != "http://b.test/" && c.form == TimestampForm::Unix)
    );
    // Without a hint a retry is a full search: every domain in every form.
    retry.probe.misses = 1;
    let full = candidates(&config, &retry, None, &book, false).0;
    assert_eq!(full.len(), 9);
    assert!(last.len() < full.len());
}

#[test]
fn the_live_fetch_is_skipped_where_the_end_probe_costs_one_request_anyway() {
    let mut live = record();
    live.status = Status::Live;
    let hinted = ProbeStart {
        hint: Some(learned("http://b.test/")),
        ..ProbeStart::default()
    };
    let captured = |last_error: Option<&str>| {
        let mut earlier = archived("http://b.test/");
        earlier.start_unix = live.start_unix - 86_400;
        earlier.probe.last_error = last_error.map(str::to_string);
        earlier
    };
    let quiet = [captured(None)];
    // The channel's last domain and form: fetched at its end instead.
    assert_eq!(
        live_fetch_skipped(&live, &hinted, &quiet).as_deref(),
        Some("live, its path known or derivable: fetched when it ends")
    );
    // The video list named the path: the same.
    let mut named = live.clone();
    named.probe.learned = Some(learned("http://c.test/"));
    assert!(live_fetch_skipped(&named, &ProbeStart::default(), &quiet).is_some());
    // Even on a channel without captures before: the exact path costs one request at the end.
    assert!(live_fetch_skipped(&named, &ProbeStart::default(), &[]).is_some());
    // A derived path on such a channel keeps the live copy.
    assert_eq!(live_fetch_skipped(&live, &hinted, &[]), None);
    let mut missed = captured(None);
    missed.status = Status::NotFound;
    missed.archive = None;
    assert_eq!(live_fetch_skipped(&live, &hinted, &[missed]), None);
    // Nothing to derive the path from: learned while it exists.
    assert_eq!(live_fetch_skipped(&live, &ProbeStart::default(), &quiet), None);
    // A channel that deleted a broadcast soon after its end: the live copy is kept.
    let deleted = [captured(Some(track::GONE_BEFORE_HOUR))];
    assert_eq!(live_fetch_skipped(&live, &hinted, &deleted), None);
    let mut rebuilt = captured(None);
    if let Some(archive) = rebuilt.archive.as_mut() {
        archive.rebuilt = true;
    }
    assert_eq!(live_fetch_skipped(&live, &hinted, &[rebuilt]), None);
    // Only live learning is skipped: the absence probe and the end probe still fetch.
    let mut absent = live.clone();
    absent.probe.absence_probed = true;
    assert_eq!(live_fetch_skipped(&absent, &hinted, &quiet), None);
    assert_eq!(live_fetch_skipped(&record(), &hinted, &quiet), None);
}

#[test]
fn the_hour_aligned_re_fetch_is_skipped_only_on_channels_that_were_never_muted() {
    // This capture, fetched before its hour boundary, waits for the re-fetch.
    let mut capture = archived("http://b.test/");
    capture.ended_at = Some(capture.start_unix + 600);
    capture.probe.next_due = Some(capture.start_unix + 7200);
    // An earlier broadcast of the channel, fetched `after` seconds past its end.
    let earlier = |days: i64, after: i64, muted: u32| {
        let mut earlier = archived("http://b.test/");
        earlier.start_unix -= days * 86_400;
        earlier.ended_at = Some(earlier.start_unix + 600);
        if let Some(archive) = earlier.archive.as_mut() {
            archive.fetched_at = earlier.start_unix + 600 + after;
            archive.muted_segments = muted;
        }
        earlier
    };
    let clean: Vec<StreamRecord> = (1..=4).map(|day| earlier(day, 3600 + 300, 0)).collect();
    let reason = hour_fetch_skipped(&capture, None, &clean).expect("skipped");
    assert_eq!(
        reason,
        "hour-aligned re-fetch skipped: the channel's last 4 re-fetched captures had no muting"
    );
    let done = conclude(
        capture.clone(),
        ProbeResult::Skipped { reason },
        &ProbeStart::default(),
        0,
        &rules(),
    )
    .expect("waiting");
    assert!(done.probe.hour_probe_done && done.status == Status::Found);
    assert_eq!(done.probe.next_due, None);
    // Too few re-fetched captures (the others were fetched before their hour): re-fetched.
    let mut few = clean.clone();
    few[0] = earlier(1, 120, 0);
    assert_eq!(hour_fetch_skipped(&capture, None, &few), None);
    // One muted capture among them, or this one muted already: re-fetched.
    let mut muted = clean.clone();
    muted.push(earlier(5, 120, 3));
    assert_eq!(hour_fetch_skipped(&capture, None, &muted), None);
    let mut muted_now = capture.clone();
    if let Some(archive) = muted_now.archive.as_mut() {
        archive.muted_segments = 2;
    }
    assert_eq!(hour_fetch_skipped(&muted_now, None, &clean), None);
    // Nothing else is skipped: a broadcast not yet captured, or re-fetched already.
    assert_eq!(hour_fetch_skipped(&record(), None, &clean), None);
    let mut done = capture.clone();
    done.probe.hour_probe_done = true;
    assert_eq!(hour_fetch_skipped(&done, None, &clean), None);
    // Its own video, read after the hour, decides over the history: not muted is skipped
    // even without history; muted is re-fetched even on a channel never muted before.
    let said = |muted| VideoFacts {
        public: Some(true),
        muted: Some(muted),
        ..VideoFacts::default()
    };
    let reason = hour_fetch_skipped(&capture, Some(&said(false)), &[]).expect("skipped");
    assert!(reason.contains("no muted segments"), "{reason}");
    assert_eq!(hour_fetch_skipped(&capture, Some(&said(true)), &clean), None);
    assert_eq!(hour_fetch_skipped(&done, Some(&said(false)), &[]), None);
    // No own video (hidden or deleted): the history rule as above.
    let unknown = VideoFacts {
        public: Some(false),
        ..VideoFacts::default()
    };
    assert!(hour_fetch_skipped(&capture, Some(&unknown), &clean).is_some());
    assert_eq!(hour_fetch_skipped(&capture, Some(&unknown), &few), None);
}

#[test]
fn a_video_naming_the_path_is_learned_and_no_hint_is_asked() {
    let mut record = record();
    let facts = VideoFacts {
        learned: Some(learned("http://c.test/")),
        public: Some(true),
        ..VideoFacts::default()
    };
    let start = start(&mut record, Some(facts), || panic!("no hint is wanted"));
    assert_eq!(record.probe.learned, Some(learned("http://c.test/")));
    assert_eq!(
        start,
        ProbeStart {
            hint: None,
            public: Some(true),
            lists_no_video: false,
            restart: false,
        }
    );
}

#[test]
fn the_previous_broadcast_goes_before_the_channel_hint_and_known_paths_ignore_videos() {
    let mut fresh = record();
    let facts = VideoFacts {
        public: Some(false),
        channel_hint: Some(learned("http://b.test/")),
        ..VideoFacts::default()
    };
    let start = start(&mut fresh, Some(facts.clone()), || {
        Some(learned("http://a.test/"))
    });
    assert_eq!(start.hint, Some(learned("http://a.test/")));
    // Unreadable list: the previous broadcast only; nothing said about visibility.
    let start = super::start(&mut record(), None, || Some(learned("http://a.test/")));
    assert_eq!(
        (start.hint, start.public),
        (Some(learned("http://a.test/")), None)
    );
    // Already learned: the video list changes nothing, no hint.
    let mut known = record();
    known.probe.learned = Some(learned("http://c.test/"));
    let start = super::start(&mut known, Some(facts), || panic!("no hint is wanted"));
    assert_eq!(start, ProbeStart::default());
    assert_eq!(known.probe.learned, Some(learned("http://c.test/")));
}

#[test]
fn an_outcome_applies_only_to_a_record_still_waiting_and_sets_visibility() {
    let mut waiting = record();
    waiting.probe.next_due = Some(100);
    let private = ProbeStart {
        public: Some(false),
        ..ProbeStart::default()
    };
    let updated = conclude(waiting.clone(), ProbeResult::Miss, &private, 200, &rules())
        .expect("it waited for this probe");
    assert_eq!((updated.public, updated.probe.misses), (Some(false), 1));
    assert_eq!(updated.probe.next_due, Some(200 + rules().retries[0]));
    // No visibility learned: the stored one stays.
    waiting.public = Some(true);
    let kept = conclude(waiting, ProbeResult::Miss, &ProbeStart::default(), 200, &rules()).expect("waits");
    assert_eq!(kept.public, Some(true));
    // Dropped from the queue meanwhile: discarded.
    assert_eq!(
        conclude(record(), ProbeResult::Miss, &private, 200, &rules()),
        None
    );
    assert_eq!(ProbeResult::Miss.name(), "missed");
}

fn archived(domain: &str) -> StreamRecord {
    let mut record = record();
    record.status = Status::Found;
    record.archive = Some(ArchiveInfo {
        domain: domain.into(),
        domains: vec![domain.into()],
        timestamp_form: "unix".into(),
        ts: "1664038929".into(),
        url: format!("{domain}x/chunked/index-dvr.m3u8"),
        duration_seconds: 60.0,
        segments: 6,
        muted_segments: 0,
        container: crate::playlist::Container::Ts,
        qualities: vec!["chunked".into()],
        fetched_at: 0,
        ended: true,
        rebuilt: false,
    });
    record
}

#[test]
fn quality_checks_skip_down_domains_and_settle_what_can_never_be_checked() {
    let configured = |url: &str| url != "http://removed.test/";
    let down = |url: &str| url == "http://b.test/";
    let step = |record| next_quality_check(record, configured, down);
    assert!(
        matches!(step(Some(archived("http://a.test/"))), QualityStep::Check(a) if a.domain == "http://a.test/")
    );
    assert_eq!(step(Some(archived("http://b.test/"))), QualityStep::Later);
    assert_eq!(
        step(Some(archived("http://removed.test/"))),
        QualityStep::Settle(vec!["chunked".into()])
    );
    assert_eq!(step(Some(record())), QualityStep::Settle(Vec::new()));
    assert_eq!(step(None), QualityStep::Settle(Vec::new()));
}

#[test]
fn a_quality_check_stores_what_answered_keeps_the_archive_when_impossible_else_waits() {
    let archived = vec!["chunked".to_string()];
    let done = QualityCheck {
        qualities: vec!["chunked".into(), "720p60".into()],
        requests: 13,
        unfinished: None,
        impossible: false,
    };
    assert_eq!(checked_qualities(&done, &archived), Some(done.qualities.clone()));
    let impossible = QualityCheck {
        unfinished: Some("gone".into()),
        impossible: true,
        ..QualityCheck::default()
    };
    assert_eq!(checked_qualities(&impossible, &archived), Some(archived.clone()));
    let unfinished = QualityCheck {
        unfinished: Some("timed out".into()),
        ..QualityCheck::default()
    };
    assert_eq!(checked_qualities(&unfinished, &archived), None);
}

#[test]
fn a_video_listing_its_muted_stretches_makes_the_hour_aligned_copy_without_a_request() {
    let stored: String = std::iter::once("#EXTM3U\n#EXT-X-TARGETDURATION:10\n".to_string())
        .chain((0..6).map(|n| format!("#EXTINF:10.000,\n{n}.ts\n")))
        .chain(std::iter::once("#EXT-X-ENDLIST\n".to_string()))
        .collect();
    let capture = archived("http://a.test/");
    let muted = |stretches: Vec<(u64, u64)>| VideoFacts {
        muted: Some(!stretches.is_empty()),
        muted_stretches: stretches,
        ..VideoFacts::default()
    };
    let (result, text) =
        muted_from_video(&capture, Some(&muted(vec![(20, 20)])), &stored, 4000).expect("marked");
    assert!(
        text.contains(
            "1.ts\n#EXTINF:10.000,\n2-unmuted.ts\n#EXTINF:10.000,\n3-unmuted.ts\n#EXTINF:10.000,\n4.ts\n"
        ),
        "{text}"
    );
    let ProbeResult::Hit { archive, learned } = result else {
        panic!("a hit: {result:?}");
    };
    assert_eq!((archive.muted_segments, archive.fetched_at), (2, 4000));
    assert_eq!(learned.domain, "http://a.test/");
    // The CDN is asked instead: not muted, stretches off the segment boundaries, no video to
    // say, or the re-fetch already done.
    assert_eq!(
        muted_from_video(&capture, Some(&muted(vec![])), &stored, 4000),
        None
    );
    assert_eq!(
        muted_from_video(&capture, Some(&muted(vec![(25, 10)])), &stored, 4000),
        None
    );
    assert_eq!(muted_from_video(&capture, None, &stored, 4000), None);
    let mut done = capture.clone();
    done.probe.hour_probe_done = true;
    assert_eq!(
        muted_from_video(&done, Some(&muted(vec![(20, 20)])), &stored, 4000),
        None
    );
}

#[test]
fn a_hinted_probe_waits_for_its_channels_domain_instead_of_asking_the_others() {
    let cdn = vodprobe_sim::SimCdn::start((0..4).map(|_| vodprobe_sim::DomainSpec::healthy()).collect())
        .expect("cdn");
    let start = ProbeStart {
        hint: Some(Learned {
            domain: cdn.base_url(2),
            form: "unix".into(),
            ts: String::new(),
        }),
        ..ProbeStart::default()
    };
    let mut book = DomainBook::default();
    book.record_failure(&cdn.base_url(2), "timed out");
    let (result, report) = probe_sim_in(&cdn, &record(), &start, &book);
    assert_eq!(
        result,
        ProbeResult::Inconclusive {
            reason: "its channel's domain is down: asked when it answers again".into()
        }
    );
    assert_eq!(report.requests, 0);
    assert_eq!((0..4).map(|d| cdn.requests(d).len()).sum::<usize>(), 0);
}
