//! Stage tests: one stage at a time against a real store in a temp dir and the simulated
//! listing on loopback, without the rest of the appliance.

use super::confirm::Confirm;
use super::crawl::{Crawl, CrawlParts};
use super::every::Timetable;
use super::passed::PassedOver;
use super::state::{Activity, Settings, SettingsCell, StoreSlot};
use crate::config;
use crate::metrics::Metrics;
use crate::record::Status;
use crate::schedule::Clock;
use crate::store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use vodprobe_sim::{ListingFault, LiveStream, SimListing};

struct Stage {
    listing: SimListing,
    parts: CrawlParts,
    _dir: tempfile::TempDir,
}

fn crawl_stage(streams: u32) -> Stage {
    stage_with(streams, "")
}

/// A crawl stage whose config ends with `extra` (follows, rules).
fn stage_with(streams: u32, extra: &str) -> Stage {
    let listing = SimListing::start().expect("listing");
    listing.set_streams((0..streams).map(LiveStream::sample).collect());
    let text = format!(
        "[source]\ngql_url = \"{}\"\n[limits]\nconnect_timeout = \"2s\"\nrequest_timeout = \"3s\"\n{extra}",
        listing.gql_url()
    );
    let config = config::parse(None, &text, &[]).expect("valid config");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store");
    let parts = CrawlParts {
        settings: Arc::new(SettingsCell::new(Settings::new(config))),
        // Just after the newest sample stream started.
        clock: Clock::accelerated(1_750_000_100, 1.0),
        store: Arc::new(StoreSlot::new(store)),
        activity: Arc::new(Activity::default()),
        metrics: Arc::new(Metrics::new()),
    };
    Stage {
        listing,
        parts,
        _dir: dir,
    }
}

fn share(parts: &CrawlParts) -> CrawlParts {
    CrawlParts {
        settings: parts.settings.clone(),
        clock: parts.clock,
        store: parts.store.clone(),
        activity: parts.activity.clone(),
        metrics: parts.metrics.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_pass_stores_what_the_listing_shows() {
    let stage = crawl_stage(3);
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;
    let store = stage.parts.store.get();
    let live = store.live().expect("live");
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(live.iter().all(|record| record.status == Status::Live));
    assert_eq!(stage.parts.activity.listing_error(), None);
    assert!(stage.parts.activity.last_page() >= 1_750_000_100);
    let metrics = &stage.parts.metrics;
    assert_eq!(metrics.value("vodprobe_listing_pages_total", &[]), 1.0);
    assert_eq!(metrics.value("vodprobe_listing_sightings_total", &[]), 3.0);
    assert_eq!(metrics.value("vodprobe_listing_passes_total", &[]), 1.0);
}

/// The listing is read down to `min_viewers_record` before `restart_every` may cut a pass: a
/// cut above it would leave the same ranks unread every pass, and their broadcasts unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_every_cuts_a_pass_only_below_the_record_floor() {
    // 300 streams, 50,000 / (i + 1) viewers: 125 at or above 400 (5 pages of 30), 250 at or
    // above 200 (9 pages). restart_every is 1 s on a clock 1,000 times real time, so it has
    // passed long before the record floor (a page's gap, 1 ms, is a clock second).
    let mut stage = crawl_stage(300);
    let text = format!(
        "[source]\ngql_url = \"{}\"\nmin_viewers_observe = 200\nmin_viewers_record = 400\n\
         restart_every = \"1s\"\npages_per_second = 1000\n\
         [limits]\nconnect_timeout = \"2s\"\nrequest_timeout = \"3s\"\n",
        stage.listing.gql_url()
    );
    let config = config::parse(None, &text, &[]).expect("valid config");
    stage.parts.settings = Arc::new(SettingsCell::new(Settings::new(config)));
    stage.parts.clock = Clock::accelerated(1_750_000_100, 1000.0);
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;

    let store = stage.parts.store.get();
    let live = store.live().expect("live");
    let least = live.iter().map(|r| r.max_viewers).min().expect("streams stored");
    assert!(
        least < 400,
        "the pass read below the record floor (least {least})"
    );
    for index in 0..125 {
        let stream_id = LiveStream::sample(index).stream_id;
        assert!(
            live.iter().any(|r| r.stream_id == stream_id),
            "stream {index} (above the record floor) was read"
        );
    }
    let metrics = &stage.parts.metrics;
    // The tick's 30 pages (the most owed at once) went on from the top after each cut: five
    // passes of 5 pages cut at their sixth page's turn, which read the next pass's first.
    assert_eq!(metrics.value("vodprobe_listing_pages_total", &[]), 30.0);
    assert_eq!(metrics.value("vodprobe_listing_passes_cut_total", &[]), 5.0);
    let pages = metrics.value("vodprobe_listing_pass_pages", &[]);
    assert!(
        (5.0..9.0).contains(&pages),
        "cut between the floors, after {pages} pages"
    );
    let passes = stage.parts.activity.listing_passes();
    assert_eq!(passes.last.map(|(_, _, complete)| complete), Some(false));
    let to_floor = passes.to_record_floor.expect("the record floor was reached");
    assert!(to_floor >= 1, "{passes:?}");
    assert!(!passes.slow(900), "{passes:?}");
    assert!(passes.slow(to_floor - 1), "{passes:?}");
}

#[test]
fn healthz_says_when_the_crawl_reads_to_the_record_floor_slower_than_ended_after() {
    let config = config::parse(None, "", &[]).expect("valid config");
    let source = &config.source;
    let quick = super::state::Passes {
        last: Some((200, 60, true)),
        to_record_floor: Some(150),
    };
    let status = super::backend::listing_status(source, None, quick, 900);
    assert!(status.ok);
    let message = status.message.expect("message");
    assert!(
        message.contains("60 pages in 200s") && message.contains("in 150s"),
        "{message}"
    );

    let slow = super::state::Passes {
        last: Some((1300, 390, false)),
        to_record_floor: Some(1200),
    };
    let status = super::backend::listing_status(source, None, slow, 900);
    assert!(!status.ok);
    let message = status.message.expect("message");
    assert!(
        message.contains("1200s")
            && message.contains("ended_after (900s)")
            && message.contains("pages_per_second"),
        "{message}"
    );
    // A refusal is said first: it is what stops the crawl.
    let status = super::backend::listing_status(source, Some("HTTP 503"), slow, 900);
    assert!(status.message.expect("message").starts_with("HTTP 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_pauses_the_crawl_and_ends_nothing() {
    let stage = crawl_stage(3);
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;
    stage.listing.set_fault(ListingFault::Unavailable);
    stage.listing.set_streams(Vec::new());
    crawl.tick().await;
    let error = stage.parts.activity.listing_error().expect("the failure is kept");
    assert!(error.contains("503"), "{error}");
    let metrics = &stage.parts.metrics;
    assert_eq!(metrics.value("vodprobe_listing_passes_total", &[]), 1.0);
    let store = stage.parts.store.get();
    assert_eq!(
        store.live().expect("live").len(),
        3,
        "a failing listing ends nothing"
    );
    // Paused: the next tick asks nothing.
    let asked = stage.listing.requests();
    crawl.tick().await;
    assert_eq!(stage.listing.requests(), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_stops_waiting_at_shutdown() {
    let stage = crawl_stage(0);
    let timetable = Timetable {
        settings: stage.parts.settings.clone(),
        clock: stage.parts.clock,
        shutdown: CancellationToken::new(),
    };
    timetable.shutdown.cancel();
    // `prune` runs hourly: only the shutdown can end this wait.
    assert!(!timetable.next_run(|s| &s.prune).await);
}

/// One confirmation run `seconds` after the stage's clock, with a new listing client, no pass
/// under way and the last complete one begun at `complete_pass_started`.
async fn confirm_at(
    confirm: &mut Confirm,
    parts: &CrawlParts,
    settings: &Settings,
    seconds: i64,
    complete_pass_started: Option<i64>,
) {
    let source = crate::discover::Source::new(&settings.config.source);
    let passed = PassedOver::default();
    confirm
        .tick(
            &later(parts, seconds),
            settings,
            complete_pass_started,
            &passed,
            source,
        )
        .await;
}

/// The stage's parts with the clock `seconds` later (the clock cannot be moved).
fn later(parts: &CrawlParts, seconds: i64) -> CrawlParts {
    CrawlParts {
        clock: Clock::accelerated(1_750_000_100 + seconds, 1.0),
        ..share(parts)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_end_only_on_an_answer() {
    let stage = crawl_stage(3);
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;
    stage.listing.remove(LiveStream::sample(1).stream_id);
    let settings = stage.parts.settings.get();
    let metrics = &stage.parts.metrics;

    // Down: asked once, nothing ended.
    stage.listing.set_fault(ListingFault::Unavailable);
    let mut confirm = Confirm::default();
    confirm_at(&mut confirm, &stage.parts, &settings, 300, None).await;
    assert_eq!(stage.listing.confirm_requests(), 1);
    assert_eq!(
        metrics.value("vodprobe_listing_errors_total", &[("kind", "http_status")]),
        1.0
    );
    assert_eq!(stage.parts.store.get().live().expect("live").len(), 3);

    // Not yet due again; then answered: the removed stream ended, the others seen.
    stage.listing.set_fault(ListingFault::None);
    confirm_at(&mut confirm, &stage.parts, &settings, 310, None).await;
    assert_eq!(stage.listing.confirm_requests(), 1, "at most every 15 s");
    confirm_at(&mut confirm, &stage.parts, &settings, 340, None).await;
    assert_eq!(stage.listing.confirm_requests(), 2);
    assert_eq!(metrics.value("vodprobe_listing_confirm_requests_total", &[]), 2.0);
    assert_eq!(metrics.value("vodprobe_streams_confirmed_ended_total", &[]), 1.0);
    let live = stage.parts.store.get().live().expect("live");
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(live.iter().all(|r| r.last_seen >= 1_750_000_440), "{live:?}");
    // Seen by the confirmation: not asked again before confirm_after (60 s)...
    confirm_at(&mut confirm, &stage.parts, &settings, 380, None).await;
    assert_eq!(stage.listing.confirm_requests(), 2);
    // ...unless a complete pass that began after that did not show them.
    confirm_at(&mut confirm, &stage.parts, &settings, 395, Some(1_750_000_441)).await;
    assert_eq!(stage.listing.confirm_requests(), 3);
    assert_eq!(stage.parts.store.get().live().expect("live").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_resolve_once_are_kept_and_end_only_on_an_answer() {
    let stage = stage_with(2, "[[follow]]\nlogin = \"Quiet\"\n");
    let mut quiet = LiveStream::sample(5);
    (quiet.streamer_id, quiet.login, quiet.viewers) = (77, "quiet".into(), 1);
    stage.listing.upsert(quiet.clone());
    let source = || crate::discover::Source::new(&stage.parts.settings.get().config.source);
    let store = || stage.parts.store.get();

    // Resolved (one request), put in force, checked (one more): recorded at 1 viewer.
    let mut follow = super::follow::Follow::default();
    let settings = stage.parts.settings.get();
    follow.tick(&later(&stage.parts, 300), &settings, source()).await;
    assert_eq!(
        (stage.listing.requests(), stage.listing.confirm_requests()),
        (2, 1)
    );
    let selection = stage.parts.settings.get().rules.selection.clone();
    assert_eq!(selection.followed, std::collections::HashSet::from([77]));
    let live = store().live().expect("live");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!((live[0].streamer_id, live[0].max_viewers), (77, 1));
    let kept = store().get_state("follows_v1").expect("state").expect("kept");
    assert!(String::from_utf8_lossy(&kept).contains("\"streamer_id\":77"));

    // Down: nothing ended; answered: ended, and due for its probe though below every threshold.
    stage.listing.remove(quiet.stream_id);
    stage.listing.set_fault(ListingFault::Unavailable);
    let settings = stage.parts.settings.get();
    follow.tick(&later(&stage.parts, 400), &settings, source()).await;
    assert_eq!(store().live().expect("live").len(), 1);
    stage.listing.set_fault(ListingFault::None);
    follow.tick(&later(&stage.parts, 410), &settings, source()).await;
    assert_eq!(
        stage.listing.confirm_requests(),
        2,
        "at most every confirm_after (60 s)"
    );
    follow.tick(&later(&stage.parts, 500), &settings, source()).await;
    assert!(store().live().expect("live").is_empty());
    let ended = store().streamer_records(77, 10).expect("records");
    assert_eq!(ended[0].status, Status::Pending, "{ended:?}");
    assert!(ended[0].probe.next_due.is_some());

    // As after a restart, renamed meanwhile: the kept id is followed, no login asked again.
    stage.listing.rename(77, "loud");
    let before = stage.listing.requests();
    let mut restarted = super::follow::Follow::default();
    restarted
        .tick(&later(&stage.parts, 600), &settings, source())
        .await;
    assert_eq!(stage.listing.requests() - before, 1, "only the check");
    assert!(stage.parts.settings.get().rules.selection.is_followed(77));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_can_be_turned_off() {
    let mut stage = crawl_stage(3);
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;
    stage.listing.remove(LiveStream::sample(1).stream_id);
    let mut config = config::Config::clone(&stage.parts.settings.get().config);
    config.source.confirm_after = std::time::Duration::ZERO;
    stage.parts.settings = Arc::new(SettingsCell::new(Settings::new(config)));
    let settings = stage.parts.settings.get();
    let mut confirm = Confirm::default();
    confirm_at(&mut confirm, &stage.parts, &settings, 3_000, Some(1_750_002_000)).await;
    assert_eq!(stage.listing.confirm_requests(), 0);
    assert_eq!(stage.parts.store.get().live().expect("live").len(), 3);
}

/// A pending record of stream `id`, backing off after `inconclusive` probes that could not
/// reach a domain (the last at `now`), its path learned on `learned` if any.
fn held_back(id: u64, learned: Option<&str>, inconclusive: u32, now: i64) -> crate::record::StreamRecord {
    let mut record = crate::record::StreamRecord {
        start_unix: 1_750_000_000,
        stream_id: id,
        streamer_id: id,
        login: format!("held{id}"),
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
        probe: crate::record::ProbeState::default(),
        archive: None,
    };
    record.probe.learned = learned.map(|domain| crate::record::Learned {
        domain: domain.into(),
        form: "unix".into(),
        ts: "1750000000".into(),
    });
    record.probe.inconclusive = inconclusive;
    record.probe.next_due = Some(now + (60 << inconclusive.saturating_sub(1)));
    record
}

#[test]
fn a_domain_answering_again_makes_the_probes_it_held_back_due_in_the_store() {
    use super::probing::requeue_after_recovery;
    use super::state::Domains;
    use crate::probe::{DomainBook, ProbeReport};
    let text = "[[domain]]\nurl = \"http://a.test/\"\nprobe = \"twitch-vod\"\n\
                [[domain]]\nurl = \"http://b.test/\"\nprobe = \"twitch-vod\"\n";
    let settings = Settings::new(config::parse(None, text, &[]).expect("valid config"));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StoreSlot::new(Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store"));
    let metrics = Metrics::new();
    let now = 1_750_001_000;
    let mut missed = held_back(4, None, 0, now);
    missed.probe.next_due = Some(now + 600);
    let records = [
        held_back(1, Some("http://a.test/"), 5, now),
        held_back(2, Some("http://b.test/"), 1, now),
        held_back(3, None, 2, now),
        missed,
    ];
    store.get().put_streams(&records).expect("written");

    // The book learns of the recovery from any answer; a domain already up is no news.
    let mut book = DomainBook::default();
    book.record_failure("http://a.test/", "HTTP 503");
    let domains = Domains::new(book);
    let mark = domains.recoveries();
    let report = ProbeReport {
        answered_domains: vec!["http://a.test/".into(), "http://b.test/".into()],
        ..ProbeReport::default()
    };
    assert_eq!(
        domains.record_probe(&report, None, now),
        vec!["http://a.test/".to_string()]
    );
    assert_eq!(domains.recovered_since(mark), vec!["http://a.test/".to_string()]);
    assert!(domains.recovered_since(domains.recoveries()).is_empty());
    assert!(!domains.record_success("http://a.test/", now));

    requeue_after_recovery(&store, &settings, &metrics, &["http://a.test/".into()], now + 5);
    let due: Vec<u64> = store
        .get()
        .due(now + 5, 100)
        .expect("read")
        .iter()
        .map(|r| r.stream_id)
        .collect();
    // Held on a.test, or anywhere; not the one on b.test (still down) nor the miss.
    assert_eq!(due, vec![1, 3]);
    assert_eq!(
        metrics.value("vodprobe_probes_due_after_recovery_total", &[]),
        2.0
    );
    // Durable: a reopened store has them due, their back-off count kept.
    drop(store);
    let reopened = Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store");
    let first = reopened.due(now + 5, 100).expect("read");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].probe.inconclusive, 5);
    assert_eq!(reopened.queue_len().expect("queue"), 4);
}

/// The probe stage's parts over `store` and a config of `cdn`'s domains, the clock at `now`.
fn probe_parts(cdn: &vodprobe_sim::SimCdn, store: Arc<StoreSlot>, now: i64) -> super::probing::ProbeParts {
    let mut text = "[limits]\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\n".to_string();
    for domain in 0..cdn.domain_count() {
        text.push_str(&format!(
            "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(domain)
        ));
    }
    let config = config::parse(None, &text, &[]).expect("valid config");
    super::probing::ProbeParts {
        settings: Arc::new(SettingsCell::new(Settings::new(config))),
        clock: Clock::accelerated(now, 1.0),
        store,
        budget: Arc::new(crate::budget::Budget::immediate(50.0)),
        domains: Arc::new(super::state::Domains::new(crate::probe::DomainBook::default())),
        activity: Arc::new(Activity::default()),
        metrics: Arc::new(Metrics::new()),
        videos: Arc::new(super::probing::VideoList::default()),
    }
}

#[test]
fn a_failing_domain_leaves_the_segment_check_unchecked_and_due_later() {
    use crate::segments::SegmentState;
    use vodprobe_sim::{Broadcast, DomainSpec, Fault, SimCdn};
    let cdn = SimCdn::start(vec![DomainSpec::healthy()]).expect("cdn");
    let id = cdn.add_broadcast(Broadcast::new("checked", 77, "1750000000", vec![0]));
    let text = cdn.playlist_text(id, "chunked").expect("playlist");
    let url = format!("{}{}", cdn.base_url(0), cdn.playlist_path(id, "chunked"));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store");
    let captured = 1_750_010_000;
    let record = crate::record::StreamRecord {
        start_unix: 1_750_000_000,
        stream_id: 77,
        streamer_id: 7,
        login: "checked".to_string(),
        title: "checked live".to_string(),
        game_id: "509658".to_string(),
        game_name: "Just Chatting".to_string(),
        language: "en".to_string(),
        is_mature: false,
        max_viewers: 42,
        first_seen: 1_750_000_030,
        last_seen: 1_750_009_000,
        ended_at: Some(1_750_009_000),
        status: Status::Found,
        public: None,
        probe: crate::record::ProbeState::default(),
        archive: Some(crate::record::ArchiveInfo {
            domain: cdn.base_url(0),
            domains: vec![cdn.base_url(0)],
            timestamp_form: "unix".to_string(),
            ts: "1750000000".to_string(),
            url,
            duration_seconds: 300.0,
            segments: 30,
            muted_segments: 0,
            container: crate::playlist::Container::Ts,
            qualities: vec!["chunked".to_string()],
            fetched_at: captured,
            ended: true,
            rebuilt: false,
        }),
    };
    store.put_archived(&record, &text).expect("archive");
    let slot = Arc::new(StoreSlot::new(store));

    cdn.set_fault(0, Fault::Unavailable);
    let parts = probe_parts(&cdn, slot.clone(), captured);
    super::segments::check_next(&parts, &CancellationToken::new());
    let status = slot
        .get()
        .segment_status(record.key())
        .expect("read")
        .expect("queued");
    assert_eq!(status.state, None, "a 503 says nothing about the segments");
    assert_eq!(status.due, Some(captured + super::segments::RETRY_AFTER_FAILURE));
    assert_eq!(
        parts
            .metrics
            .value("vodprobe_segment_checks_total", &[("result", "inconclusive")]),
        1.0
    );
    // Not due again until then: nothing is asked.
    let asked = cdn.request_count(0);
    super::segments::check_next(&parts, &CancellationToken::new());
    assert_eq!(cdn.request_count(0), asked);

    cdn.set_fault(0, Fault::None);
    let later = probe_parts(
        &cdn,
        slot.clone(),
        captured + super::segments::RETRY_AFTER_FAILURE,
    );
    super::segments::check_next(&later, &CancellationToken::new());
    let status = slot
        .get()
        .segment_status(record.key())
        .expect("read")
        .expect("kept");
    assert_eq!(status.state, Some(SegmentState::Ok));
    assert_eq!(
        status.checked_at,
        Some(captured + super::segments::RETRY_AFTER_FAILURE)
    );
    assert_eq!(status.lost_at, None);
    // The survival watch queues the next check.
    let checked = captured + super::segments::RETRY_AFTER_FAILURE;
    let next = crate::segments::next_watch(record.start_unix, SegmentState::Ok, checked);
    assert!(next.is_some());
    assert_eq!(status.due, next);
    assert_eq!(cdn.request_count(0) - asked, 3, "{:?}", cdn.request_log(0));
}

#[test]
fn captures_checked_before_the_watch_are_watched_from_start_up() {
    use crate::segments::{SegmentState, SegmentStatus, next_watch};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store");
    let start = 1_750_000_000;
    let now = start + 3 * 86_400;
    // As an older binary left them: ok and partial with nothing due, one gone, one too old to
    // watch, one still unchecked and due.
    let states = [
        (1, Some(SegmentState::Ok), 0, None),
        (2, Some(SegmentState::Partial), 0, None),
        (3, Some(SegmentState::Gone), 0, None),
        (4, Some(SegmentState::Ok), 70 * 86_400, None),
        (5, None, 0, Some(now)),
    ];
    for (id, state, older, due) in states {
        let mut record = held_back(id, None, 0, 0);
        record.start_unix = start - older;
        record.probe.next_due = None;
        store.put_streams(&[record.clone()]).expect("record");
        let status = SegmentStatus {
            state,
            checked_at: state.map(|_| record.start_unix + 600),
            lost_at: None,
            due,
        };
        store
            .update(|tx| tx.set_segment_status(record.key(), &status))
            .expect("status");
    }
    assert_eq!(super::segments::watch_unwatched(&store, now).expect("watch"), 2);
    let due = |id: u64, older: i64| {
        store
            .segment_status((start - older, id))
            .expect("read")
            .expect("stored")
            .due
    };
    assert_eq!(due(1, 0), next_watch(start, SegmentState::Ok, now));
    assert!(due(1, 0).is_some_and(|at| at > now));
    assert_eq!(due(2, 0), next_watch(start, SegmentState::Partial, now));
    assert_eq!(due(3, 0), None, "a loss is final");
    assert_eq!(due(4, 70 * 86_400), None, "past the watch's end");
    assert_eq!(due(5, 0), Some(now), "an unchecked capture keeps its turn");
    // A second start-up finds nothing left to queue.
    assert_eq!(super::segments::watch_unwatched(&store, now).expect("watch"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_lets_only_a_short_line_wait_for_the_budget() {
    use super::probing::{BACKLOG_LINE, Probing};
    use tokio_util::task::TaskTracker;
    use vodprobe_sim::{Broadcast, DomainSpec, SimCdn};
    let cdn = SimCdn::start(vec![DomainSpec::healthy()]).expect("cdn");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("vodprobe.redb"), 4 << 20).expect("store");
    let now = 1_750_020_000;
    // Thirty broadcasts whose paths are known, waiting for two hours, and one that just came
    // due, the least viewed: more due than the probe slots, so a backlog.
    let mut records = Vec::new();
    for id in (1..=30).chain([99]) {
        cdn.add_broadcast(Broadcast::new(&format!("held{id}"), id, "1750000000", vec![0]));
        let mut record = held_back(id, Some(&cdn.base_url(0)), 0, now);
        record.probe.next_due = Some(if id == 99 { now - 30 } else { now - 7200 });
        record.max_viewers = if id == 99 { 10 } else { 100 };
        records.push(record);
    }
    store.put_streams(&records).expect("written");
    let slot = Arc::new(StoreSlot::new(store));
    let tracker = TaskTracker::new();
    let stage = Probing::new(
        probe_parts(&cdn, slot.clone(), now),
        tracker.clone(),
        CancellationToken::new(),
    );
    stage.start_due().await;
    tracker.close();
    tracker.wait().await;

    // Only the line started (the rest stay due, to be taken in the queue's order at the next
    // tick): with sixteen let in, a fresh end waited for up to sixteen slots, in no order.
    let found: Vec<u64> = records
        .iter()
        .filter(|record| {
            slot.get()
                .get_stream(record.key())
                .expect("read")
                .is_some_and(|r| r.status == Status::Found)
        })
        .map(|record| record.stream_id)
        .collect();
    assert_eq!(found.len(), BACKLOG_LINE, "{found:?}");
    assert!(found.contains(&99), "the fresh end is in the line: {found:?}");
    assert_eq!(cdn.request_count(0), BACKLOG_LINE, "{:?}", cdn.requests(0));
    assert_eq!(slot.get().due(now, 100).expect("read").len(), 31 - BACKLOG_LINE);
}

/// The confirmation run asks first about the channels the current pass of the listing read
/// past without showing, then the stalest: with one request (100 channels) a run and 300 stale
/// streams, a stream ended on the second of its pass's pages is ended by the first request,
/// where by staleness alone (ties by channel) it came in the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_asks_first_about_what_the_pass_read_past() {
    let mut stage = crawl_stage(300);
    let text = |pages_per_second: f64| {
        format!(
            "[source]\ngql_url = \"{}\"\nmin_viewers_record = 100\npages_per_second = {pages_per_second}\n\
             restart_every = \"1h\"\n[limits]\nconnect_timeout = \"2s\"\nrequest_timeout = \"3s\"\n",
            stage.listing.gql_url()
        )
    };
    let config = config::parse(None, &text(1000.0), &[]).expect("valid config");
    stage.parts.settings = Arc::new(SettingsCell::new(Settings::new(config)));
    let mut crawl = Crawl::new(share(&stage.parts));
    crawl.tick().await;
    assert_eq!(stage.parts.store.get().live().expect("live").len(), 300);
    // 0.15 pages a second: confirmations may spend 0.075 a second, one request in a run.
    let config = config::parse(None, &text(0.15), &[]).expect("valid config");
    stage.parts.settings = Arc::new(SettingsCell::new(Settings::new(config)));

    let seen = |index: u32| crate::discover::tests::sighting(LiveStream::sample(index));
    let ended = LiveStream::sample(150);
    stage.listing.remove(ended.stream_id);
    let mut passed = PassedOver::default();
    passed.page(&(0..300).map(seen).collect::<Vec<_>>());
    passed.finished();
    // The next pass read down to stream 199 (250 viewers); stream 150 (331) was not there.
    passed.page(&(0..200).filter(|i| *i != 150).map(seen).collect::<Vec<_>>());
    assert!(passed.passed(ended.streamer_id));

    let settings = stage.parts.settings.get();
    let source = crate::discover::Source::new(&settings.config.source);
    let mut confirm = Confirm::default();
    confirm
        .tick(&later(&stage.parts, 300), &settings, None, &passed, source)
        .await;
    assert_eq!(stage.listing.confirm_requests(), 1);
    let live = stage.parts.store.get().live().expect("live");
    assert!(
        live.iter().all(|r| r.stream_id != ended.stream_id),
        "the stream the pass went past was ended by the first request"
    );
    // The other 99 asked were the stalest by channel: 0–98 seen again, 99 not yet.
    let refreshed = |index: u32| {
        let id = LiveStream::sample(index).stream_id;
        live.iter()
            .any(|r| r.stream_id == id && r.last_seen >= 1_750_000_400)
    };
    assert!((0..99).all(refreshed) && !refreshed(99) && !refreshed(151));
}
