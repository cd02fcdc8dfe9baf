//! Unit tests of the pipeline's rules: plain records in, records out.

use super::*;
use crate::playlist::Container;
use crate::record::{ArchiveInfo, Learned};

const HOUR: i64 = 3600;
/// 2022-09-24 17:02:09 UTC.
const START: i64 = 1_664_038_929;

fn rules() -> Rules {
    Rules {
        min_viewers_record: 10,
        ended_after: 900,
        settle: 60,
        learn_live_after: 600,
        align_to_hour: true,
        hour_margin: 300,
        retries: vec![600, 3600, 21600],
        max_backoff: 3600,
        selection: Default::default(),
    }
}

fn sighting(stream_id: u64, streamer_id: u64, started_at: i64, viewers: u32) -> Sighting {
    Sighting {
        stream_id,
        streamer_id,
        login: format!("Streamer{streamer_id}"),
        title: "title".into(),
        game_id: "509658".into(),
        game_name: "Just Chatting".into(),
        language: "en".into(),
        is_mature: false,
        viewers,
        started_at,
    }
}

fn apply(page: &[Sighting], known: &[StreamRecord], now: i64) -> PageUpdate {
    let known_map = known.iter().map(|r| (r.key(), r.clone())).collect();
    let live = known
        .iter()
        .filter(|r| r.status == Status::Live)
        .map(|r| (r.streamer_id, r.clone()))
        .collect();
    apply_sightings(page, &known_map, &live, now, &rules())
}

fn live_record(viewers: u32, now: i64) -> StreamRecord {
    apply(&[sighting(1, 7, START, viewers)], &[], now).write.remove(0)
}

fn archive() -> ArchiveInfo {
    ArchiveInfo {
        domain: "https://vod-secure.twitch.tv/".into(),
        domains: vec!["https://vod-secure.twitch.tv/".into()],
        timestamp_form: "unix".into(),
        ts: START.to_string(),
        url: "https://vod-secure.twitch.tv/x/chunked/index-dvr.m3u8".into(),
        duration_seconds: 300.0,
        segments: 30,
        muted_segments: 0,
        container: Container::Ts,
        qualities: vec!["chunked".into()],
        fetched_at: 0,
        ended: true,
        rebuilt: false,
    }
}

fn hit() -> ProbeResult {
    ProbeResult::Hit {
        archive: Box::new(archive()),
        learned: Learned {
            domain: "https://vod-secure.twitch.tv/".into(),
            form: "unix".into(),
            ts: START.to_string(),
        },
    }
}

#[test]
fn first_sighting_creates_a_live_record_with_start_metadata() {
    let now = START + 30;
    let record = live_record(50, now);
    assert_eq!(record.key(), (START, 1));
    assert_eq!(record.status, Status::Live);
    assert_eq!(record.login, "streamer7");
    assert_eq!(
        (record.first_seen, record.last_seen, record.max_viewers),
        (now, now, 50)
    );
    // Live learning is due once the stream has been live learn_live_after.
    assert_eq!(record.probe.next_due, Some(START + 600));
}

#[test]
fn later_sightings_keep_start_metadata_follow_title_and_category_and_track_max_viewers() {
    let first = live_record(50, START + 30);
    let mut changed = sighting(1, 7, START, 20);
    changed.title = "new title".into();
    changed.game_id = "99".into();
    changed.game_name = "Go".into();
    changed.login = "renamed".into();
    let again = apply(&[changed], std::slice::from_ref(&first), START + 90)
        .write
        .remove(0);
    // Title and category follow a live broadcast; the login stays the first sighting's.
    assert_eq!(
        (
            again.title.as_str(),
            again.game_id.as_str(),
            again.game_name.as_str()
        ),
        ("new title", "99", "Go")
    );
    assert_eq!(again.login, "streamer7");
    assert_eq!(again.max_viewers, 50);
    assert_eq!(again.last_seen, START + 90);
    assert_eq!(again.first_seen, START + 30);
}

#[test]
fn below_record_threshold_is_not_learned_until_it_reaches_it() {
    let small = live_record(5, START + 30);
    assert_eq!(small.probe.next_due, None);
    let grown = apply(&[sighting(1, 7, START, 12)], &[small], START + 700)
        .write
        .remove(0);
    assert_eq!(grown.probe.next_due, Some(START + 700));
}

#[test]
fn unseen_for_ended_after_has_ended_and_waits_settle() {
    let record = live_record(50, START + 30);
    assert!(
        end_unseen(std::slice::from_ref(&record), START + 30 + 899, &rules())
            .write
            .is_empty()
    );
    let update = end_unseen(&[record], START + 30 + 900, &rules());
    let ended = &update.write[0];
    assert_eq!(ended.status, Status::Pending);
    assert_eq!(ended.ended_at, Some(START + 30));
    assert_eq!(ended.probe.next_due, Some(START + 30 + 900 + 60));
}

#[test]
fn ended_late_after_downtime_is_due_now_not_in_the_past() {
    let record = live_record(50, START + 30);
    let now = START + 10 * HOUR;
    let ended = end_unseen(&[record], now, &rules()).write.remove(0);
    assert_eq!(ended.probe.next_due, Some(now));
}

#[test]
fn ended_below_threshold_is_dropped() {
    let record = live_record(9, START + 30);
    let update = end_unseen(&[record], START + HOUR, &rules());
    assert!(update.write.is_empty());
    assert_eq!(update.delete, vec![(START, 1)]);
}

#[test]
fn a_new_start_for_the_same_streamer_ends_the_previous_broadcast_at_once() {
    let previous = live_record(50, START + 30);
    let now = START + 1200;
    let update = apply(&[sighting(2, 7, START + 1100, 40)], &[previous], now);
    assert_eq!(update.write.len(), 2);
    let old = &update.write[0];
    assert_eq!(old.key(), (START, 1));
    assert_eq!(old.status, Status::Pending);
    assert_eq!(old.probe.next_due, Some(now + 60));
    let new = &update.write[1];
    assert_eq!(new.key(), (START + 1100, 2));
    assert_eq!(new.status, Status::Live);
}

#[test]
fn a_reused_stream_id_with_a_later_start_is_a_separate_broadcast() {
    let previous = live_record(50, START + 30);
    let update = apply(&[sighting(1, 7, START + 1100, 40)], &[previous], START + 1200);
    let keys: Vec<StreamKey> = update.write.iter().map(StreamRecord::key).collect();
    assert_eq!(keys, vec![(START, 1), (START + 1100, 1)]);
    assert_eq!(update.write[0].status, Status::Pending);
    assert_eq!(update.write[1].status, Status::Live);
}

#[test]
fn an_old_start_seen_again_does_not_end_the_newer_broadcast() {
    let newer = apply(&[sighting(2, 7, START + 1100, 40)], &[], START + 1200)
        .write
        .remove(0);
    let update = apply(&[sighting(1, 7, START, 40)], &[newer], START + 1300);
    assert!(
        update.write.iter().all(|r| r.status == Status::Live),
        "{update:?}"
    );
}

#[test]
fn duplicate_sightings_in_one_page_merge() {
    let update = apply(
        &[sighting(1, 7, START, 10), sighting(1, 7, START, 30)],
        &[],
        START + 5,
    );
    assert_eq!(update.write.len(), 1);
    assert_eq!(update.write[0].max_viewers, 30);
}

#[test]
fn a_listing_hiccup_revives_an_unprobed_ended_stream() {
    let record = live_record(50, START + 30);
    let ended = end_unseen(&[record], START + 30 + 900, &rules()).write.remove(0);
    let revived = apply(&[sighting(1, 7, START, 60)], &[ended], START + 1000)
        .write
        .remove(0);
    assert_eq!(revived.status, Status::Live);
    assert_eq!(revived.ended_at, None);
}

fn ended_record(ended_at: i64) -> StreamRecord {
    let mut record = live_record(50, START + 30);
    record.last_seen = ended_at;
    end_unseen(&[record], ended_at + 900, &rules()).write.remove(0)
}

#[test]
fn a_hit_is_probed_again_after_the_next_hour_boundary() {
    // Ended 17:40, first probe 17:56: the muting pass at 18:00 → hour probe at 18:05.
    let ended_at = START - 129 + 38 * 60; // 17:40:00
    let record = ended_record(ended_at);
    let now = ended_at + 960;
    let found = after_probe(record, hit(), now, &rules());
    assert_eq!(found.status, Status::Found);
    assert_eq!(found.probe.captured_at, Some(now));
    let expected = (ended_at / HOUR + 1) * HOUR + 300;
    assert_eq!(found.probe.next_due, Some(expected));
    assert!(!found.probe.hour_probe_done);
    // The hour probe: done, nothing more due.
    let again = after_probe(found, hit(), expected, &rules());
    assert_eq!(again.probe.captured_at, Some(now), "the first capture time stays");
    assert!(again.probe.hour_probe_done);
    assert_eq!(again.probe.next_due, None);
    assert_eq!(again.probe.probes, 2);
}

#[test]
fn a_hit_after_the_boundary_needs_no_second_probe() {
    let ended_at = START - 129 + 50 * 60; // 17:50
    let record = ended_record(ended_at);
    let found = after_probe(record, hit(), ended_at + 20 * 60, &rules());
    assert!(found.probe.hour_probe_done);
    assert_eq!(found.probe.next_due, None);
}

#[test]
fn no_hour_probe_when_alignment_is_off() {
    let mut rules = rules();
    rules.align_to_hour = false;
    let found = after_probe(ended_record(START + 600), hit(), START + 2000, &rules);
    assert_eq!(found.probe.next_due, None);
}

#[test]
fn misses_follow_the_retry_schedule_then_not_found() {
    let mut record = ended_record(START + 600);
    let mut now = START + 2000;
    for delay in [600, 3600, 21600] {
        record = after_probe(record, ProbeResult::Miss, now, &rules());
        assert_eq!(record.status, Status::Pending);
        assert_eq!(record.probe.next_due, Some(now + delay));
        now += delay;
    }
    record = after_probe(record, ProbeResult::Miss, now, &rules());
    assert_eq!(record.status, Status::NotFound);
    assert_eq!(record.probe.next_due, None);
    assert_eq!(record.probe.probes, 4);
}

#[test]
fn recordable_streams_are_confirmed_first_those_passed_over_then_the_stalest() {
    let at = |streamer: u64, viewers: u32, last_seen: i64| {
        let mut record = live_record(viewers, last_seen);
        record.streamer_id = streamer;
        record.stream_id = streamer;
        record.last_seen = last_seen;
        record
    };
    let live = [
        at(1, 5, START),        // below the record floor, stalest
        at(2, 50, START + 20),  // recordable
        at(3, 50, START + 10),  // recordable, staler
        at(4, 50, START + 100), // seen since stale_before
        at(3, 50, START + 40),  // the same channel again: asked once
        at(5, 6, START + 30),   // below the floor
    ];
    assert_eq!(
        to_confirm(&live, START + 60, &rules(), |_| false),
        vec![3, 2, 1, 5]
    );
    // The listing's pass went past 2 and 5 without showing them: each goes first in its group.
    let passed = |id: u64| id == 2 || id == 5;
    assert_eq!(to_confirm(&live, START + 60, &rules(), passed), vec![2, 3, 5, 1]);
    // 4 was seen since `stale_before`: passed over or not, it is not asked about yet.
    assert_eq!(
        to_confirm(&live, START + 60, &rules(), |id| id == 4),
        vec![3, 2, 1, 5]
    );
}

#[test]
fn each_due_probe_is_named_for_the_operators_figures() {
    let live = live_record(50, START + 30);
    assert_eq!(probe_kind(&live), "live");
    let ended = ended_record(START + 600);
    assert_eq!(probe_kind(&ended), "end");
    let missed = after_probe(ended.clone(), ProbeResult::Miss, START + 2000, &rules());
    assert_eq!(probe_kind(&missed), "retry");
    let found = after_probe(ended, hit(), START + 2000, &rules());
    assert!(
        found.probe.next_due.is_some(),
        "waits for its hour-aligned re-fetch"
    );
    assert_eq!(probe_kind(&found), "hour");
}

#[test]
fn a_known_path_gone_where_it_was_skips_to_the_last_retry() {
    let mut record = ended_record(START + 600);
    record.probe.learned = Some(Learned {
        domain: "https://a.example/".to_string(),
        form: "unix".to_string(),
        ts: START.to_string(),
    });
    let now = START + 2000;
    // The playlist and segment 0 missing where it was: deleted, one last retry (6 h).
    let missed = after_probe(record, ProbeResult::Miss, now, &rules());
    assert_eq!(missed.status, Status::Pending);
    assert_eq!(missed.probe.next_due, Some(now + 21600));
    assert_eq!(missed.probe.last_error.as_deref(), Some(GONE_WHERE_IT_WAS));
    let last = after_probe(missed, ProbeResult::Miss, now + 21600, &rules());
    assert_eq!(last.status, Status::NotFound);
    assert_eq!(last.probe.next_due, None);
    assert_eq!(last.probe.probes, 2);
    assert_eq!(last.probe.last_error.as_deref(), Some(GONE_WHERE_IT_WAS));
}

#[test]
fn deleted_before_the_hour_probe_keeps_the_capture() {
    let found = after_probe(ended_record(START + 600), hit(), START + 2000, &rules());
    let later = after_probe(found, ProbeResult::Miss, START + 4000, &rules());
    assert_eq!(later.status, Status::Found);
    assert!(later.archive.is_some());
    assert_eq!(later.probe.next_due, None);
}

#[test]
fn inconclusive_backs_off_and_never_gives_up() {
    let mut record = ended_record(START + 600);
    let mut now = START + 2000;
    let mut delays = Vec::new();
    for _ in 0..9 {
        record = after_probe(
            record,
            ProbeResult::Inconclusive {
                reason: "outage".into(),
            },
            now,
            &rules(),
        );
        let due = record.probe.next_due.expect("still due");
        delays.push(due - now);
        now = due;
    }
    assert_eq!(delays, vec![60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert_eq!(record.status, Status::Pending);
    assert_eq!(record.probe.misses, 0);
}

/// A record after `count` inconclusive probes, the last at `now`, with its path learned on
/// `learned` (if any).
fn backing_off(count: u32, learned: Option<&str>, now: i64) -> StreamRecord {
    let mut record = ended_record(START + 600);
    record.probe.learned = learned.map(|domain| Learned {
        domain: domain.into(),
        form: "unix".into(),
        ts: START.to_string(),
    });
    let outage = || ProbeResult::Inconclusive {
        reason: "outage".into(),
    };
    for _ in 0..count {
        record = after_probe(record, outage(), now, &rules());
    }
    record
}

#[test]
fn a_domain_answering_again_makes_the_probes_its_outage_held_back_due_at_once() {
    let now = START + 5000;
    let configured = |url: &str| url != "http://removed.test/";
    // (record, recovered domains) → due now?
    let check = |record: StreamRecord, recovered: &[&str], expected: bool| {
        let recovered: Vec<String> = recovered.iter().map(|d| d.to_string()).collect();
        let before = record.probe.clone();
        let mut after = record;
        assert_eq!(
            due_after_recovery(&mut after, &recovered, configured, now + 30),
            expected,
            "{before:?} after {recovered:?}"
        );
        let due = if expected { Some(now + 30) } else { before.next_due };
        assert_eq!(after.probe.next_due, due);
        // The back-off count stays: failing again backs off from where it was.
        assert_eq!(after.probe.inconclusive, before.inconclusive);
    };
    // Its learned domain answers: due now, however long the back-off had left (16 minutes).
    check(
        backing_off(5, Some("http://a.test/"), now),
        &["http://a.test/"],
        true,
    );
    // Another domain answering does not help a broadcast whose path is known.
    check(
        backing_off(2, Some("http://a.test/"), now),
        &["http://b.test/"],
        false,
    );
    // Path unknown: any domain could hold it.
    check(backing_off(1, None, now), &["http://b.test/"], true);
    check(backing_off(1, None, now), &[], false);
    // Its learned domain was removed from the config: the path is asked everywhere.
    check(
        backing_off(1, Some("http://removed.test/"), now),
        &["http://b.test/"],
        true,
    );
    // Not backing off after an outage: a miss waits its retry schedule, not a domain.
    let missed = after_probe(ended_record(START + 600), ProbeResult::Miss, now, &rules());
    check(missed, &["http://a.test/"], false);
    // Already due (or in flight): left as it is.
    let mut due = backing_off(1, None, now);
    due.probe.next_due = Some(now);
    check(due, &["http://a.test/"], false);
    // Captured: nothing waits.
    check(
        after_probe(backing_off(1, None, now), hit(), now, &rules()),
        &["http://a.test/"],
        false,
    );
}

#[test]
fn learning_while_live_keeps_the_partial_copy_and_waits_for_the_end() {
    let record = live_record(50, START + 30);
    // A live EVENT playlist has no #EXT-X-ENDLIST yet.
    let ProbeResult::Hit { mut archive, learned } = hit() else {
        unreachable!()
    };
    archive.ended = false;
    let learned = after_probe(
        record,
        ProbeResult::Hit { archive, learned },
        START + 600,
        &rules(),
    );
    assert_eq!(learned.status, Status::Live);
    assert!(learned.probe.learned_live);
    assert!(learned.archive.is_some());
    assert_eq!(learned.probe.next_due, None);
    // Its end schedules the capture as usual.
    let ended = end_unseen(&[learned], START + 30 + 900, &rules()).write.remove(0);
    assert_eq!(ended.probe.next_due, Some(START + 30 + 960));
    // A miss while live waits for the end rather than retrying.
    let missed = after_probe(
        live_record(50, START + 30),
        ProbeResult::Miss,
        START + 600,
        &rules(),
    );
    assert_eq!(missed.status, Status::Live);
    assert_eq!(missed.probe.next_due, None);
}

#[test]
fn the_backlog_sheds_the_least_viewed_beyond_max_queue() {
    let queued: Vec<StreamRecord> = (0..5u32)
        .map(|index| {
            let mut record = ended_record(START + 600);
            record.stream_id = u64::from(index);
            record.max_viewers = 10 + index * 10;
            record
        })
        .collect();
    assert!(shed_backlog(queued.clone(), 5, &rules()).is_empty());
    let mut with_found = queued.clone();
    with_found[0] = after_probe(with_found[0].clone(), hit(), START + 2000, &rules());
    let shed = shed_backlog(with_found, 3, &rules());
    let ids: Vec<u64> = shed.iter().map(|r| r.stream_id).collect();
    assert_eq!(ids, vec![0, 1]);
    assert_eq!(
        shed[0].status,
        Status::Found,
        "a capture is kept; only its re-probe is dropped"
    );
    assert!(shed[0].probe.hour_probe_done);
    assert_eq!(shed[1].status, Status::NotFound);
    assert!(shed.iter().all(|r| r.probe.next_due.is_none()));
    assert!(
        shed[1]
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("max_queue"))
    );
    // A broadcast whose path is known (stored for sure) is kept before more viewed unknown ones.
    let mut known = queued.clone();
    known[0].probe.learned = Some(crate::record::Learned {
        domain: "http://a.test/".into(),
        form: "unix".into(),
        ts: START.to_string(),
    });
    let ids: Vec<u64> = shed_backlog(known, 3, &rules())
        .iter()
        .map(|r| r.stream_id)
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn a_backlog_runs_cheap_probes_at_risk_first_then_the_cheapest_then_the_most_viewed() {
    let now = START + 10_000;
    let waiting = |id: u64, viewers: u32, due: i64| {
        let mut record = ended_record(START + 600);
        record.stream_id = id;
        record.max_viewers = viewers;
        record.probe.next_due = Some(due);
        record
    };
    let learned = crate::record::Learned {
        domain: "http://a.test/".into(),
        form: "unix".into(),
        ts: START.to_string(),
    };
    // 1: unknown path, most viewed; 2: known path, few viewers, waiting long; 3: an hour-aligned
    // re-fetch; 4: known path, just due; 5: known path, sub-only (not public), waiting long.
    let unknown = waiting(1, 5000, now - 7200);
    let mut stale = waiting(2, 20, now - 7200);
    stale.probe.learned = Some(learned.clone());
    let mut refetch = after_probe(waiting(3, 900, now - 7200), hit(), START + 2000, &rules());
    refetch.probe.next_due = Some(now - 60);
    let mut fresh = waiting(4, 10, now - 60);
    fresh.probe.learned = Some(learned.clone());
    let mut hidden = waiting(5, 15, now - 7200);
    hidden.probe.learned = Some(learned);
    hidden.public = Some(false);
    // 6: the learning search of a live broadcast, the most viewed of all; 7: a search whose
    // channel's domain and form are known (the read-ahead found a hint), few viewers.
    let mut sweep = waiting(6, 9000, now - 60);
    sweep.status = Status::Live;
    let hinted = waiting(7, 12, now - 7200);
    // 8: a hinted search of a broadcast that just ended.
    let fresh_hinted = waiting(8, 11, now - 60);
    let mut queue = [
        unknown,
        stale,
        refetch,
        fresh,
        hidden,
        sweep,
        hinted,
        fresh_hinted,
    ];
    let has_hint = |r: &StreamRecord| r.stream_id == 7 || r.stream_id == 8;
    queue.sort_by(|a, b| backlog_order(a, b, now, &rules(), &has_hint));
    let ids: Vec<u64> = queue.iter().map(|r| r.stream_id).collect();
    // What is at risk and costs about a request first (the known paths of the sub-only one and
    // the fresh end, more viewed first, then the fresh hinted search), then the stale known
    // path, the stale hinted search, the re-fetch, the search without a hint, then the sweep.
    assert_eq!(ids, vec![5, 4, 8, 2, 7, 3, 1, 6]);
    // Without the hint, the hinted ones are searches like the others (the fresh one first).
    queue.sort_by(|a, b| backlog_order(a, b, now, &rules(), &|_| false));
    let ids: Vec<u64> = queue.iter().map(|r| r.stream_id).collect();
    assert_eq!(ids, vec![5, 4, 2, 3, 8, 1, 7, 6]);
    // Without a backlog the order is by viewers alone.
    queue.sort_by(|a, b| probe_order(a, b, &rules()));
    assert_eq!(queue[0].stream_id, 6);
}

#[test]
fn a_backlog_longer_than_max_wait_of_the_budget_drops_the_costliest_least_at_risk() {
    let now = START + 10_000;
    let learned = Learned {
        domain: "http://a.test/".into(),
        form: "unix".into(),
        ts: START.to_string(),
    };
    // Ten searches of ended broadcasts' unknown paths without a hint (one request a domain,
    // 12), most viewed first, and five captures with known paths (1 each).
    let mut queued: Vec<StreamRecord> = (0..10u32)
        .map(|index| {
            let mut record = ended_record(START + 600);
            record.stream_id = u64::from(index);
            record.max_viewers = 1000 - index * 10;
            record.probe.next_due = Some(now - 3600);
            record
        })
        .collect();
    for index in 10..15u32 {
        let mut record = ended_record(START + 600);
        record.stream_id = u64::from(index);
        record.max_viewers = 10;
        record.probe.next_due = Some(now - 3600);
        record.probe.learned = Some(learned.clone());
        queued.push(record);
    }
    let none = |_: &StreamRecord| false;
    assert_eq!(expected_requests(&queued[0], 12, &none), 12);
    assert_eq!(expected_requests(&queued[10], 12, &none), 1);
    // With a hint (the channel's domain and form), a search mostly costs one request.
    assert_eq!(expected_requests(&queued[0], 12, &|_| true), 1);
    // A live broadcast's learning search: a sweep of every domain and form.
    let mut live = queued[9].clone();
    live.status = Status::Live;
    assert_eq!(expected_requests(&live, 12, &none), 36);
    assert!(is_sweep(&live) && !is_sweep(&queued[0]));
    // Room for everything: nothing dropped.
    assert!(shed_beyond_wait(queued.clone(), 10 * 12 + 5, 12, now, &rules(), &none).is_empty());
    // Room for the five known paths and three searches: the seven least viewed searches go.
    let shed = shed_beyond_wait(queued.clone(), 5 + 3 * 12, 12, now, &rules(), &none);
    let mut ids: Vec<u64> = shed.iter().map(|r| r.stream_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (3..10).collect::<Vec<u64>>());
    assert!(
        shed.iter()
            .all(|r| r.status == Status::NotFound && r.probe.next_due.is_none())
    );
    assert!(shed.iter().all(was_shed));
    assert_eq!(shed[0].probe.last_error.as_deref(), Some(SHED_WAIT));
    // A live broadcast's learning probe is never given up (it would end a live broadcast).
    let mut live = queued.clone();
    for record in &mut live {
        record.status = Status::Live;
    }
    assert!(shed_beyond_wait(live.clone(), 5, 12, now, &rules(), &none).is_empty());
    assert!(shed_backlog(live, 1, &rules()).is_empty());
    // Hardly any room: the known paths are kept before any search.
    let shed = shed_beyond_wait(queued.clone(), 5, 12, now, &rules(), &none);
    assert_eq!(shed.len(), 10);
    assert!(shed.iter().all(|r| r.probe.learned.is_none()));
    // Searches with a hint cost one request each: the same room keeps three of them, the
    // least viewed go first; a hint puts a search before the others.
    let hint = |r: &StreamRecord| r.stream_id < 5;
    let shed = shed_beyond_wait(queued, 5 + 3, 12, now, &rules(), &hint);
    let mut ids: Vec<u64> = shed.iter().map(|r| r.stream_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn a_stream_missing_from_a_complete_pass_is_probed_once_before_its_end_is_certain() {
    let seen_early = live_record(50, START + 30);
    let mut seen_late = live_record(50, START + 30);
    seen_late.stream_id = 2;
    seen_late.last_seen = START + 200;
    let mut small = live_record(5, START + 30);
    small.stream_id = 3;
    let pass_started = START + 100;
    let probed = absent_after_pass(
        &[seen_early, seen_late, small],
        pass_started,
        START + 150,
        &rules(),
    );
    assert_eq!(probed.len(), 1);
    assert_eq!(probed[0].stream_id, 1);
    assert!(probed[0].probe.absence_probed);
    assert_eq!(probed[0].probe.next_due, Some(START + 150 + 60));
    // Once only.
    assert!(absent_after_pass(&probed, pass_started + 60, START + 300, &rules()).is_empty());
}

#[test]
fn a_complete_capture_before_the_end_is_detected_needs_only_the_hour_probe() {
    let absent =
        absent_after_pass(&[live_record(50, START + 30)], START + 100, START + 100, &rules()).remove(0);
    let captured = after_probe(absent, hit(), START + 160, &rules());
    assert_eq!(captured.status, Status::Live);
    assert!(captured.archive.as_ref().is_some_and(|a| a.ended));
    let ended = end_unseen(&[captured], START + 30 + 900, &rules())
        .write
        .remove(0);
    assert_eq!(ended.status, Status::Found);
    assert_eq!(
        ended.probe.captured_at,
        Some(0),
        "the fetch time of the complete capture"
    );
    let hour = hour_probe_time(START + 30, &rules());
    assert_eq!(ended.probe.next_due, Some(hour));
}

#[test]
fn an_incomplete_capture_is_captured_again_at_the_end() {
    let absent =
        absent_after_pass(&[live_record(50, START + 30)], START + 100, START + 100, &rules()).remove(0);
    let ProbeResult::Hit { mut archive, learned } = hit() else {
        unreachable!()
    };
    archive.ended = false;
    let captured = after_probe(
        absent,
        ProbeResult::Hit { archive, learned },
        START + 160,
        &rules(),
    );
    let ended = end_unseen(&[captured], START + 30 + 900, &rules())
        .write
        .remove(0);
    assert_eq!(ended.status, Status::Pending);
    assert_eq!(ended.probe.next_due, Some(START + 30 + 900 + 60));
}

#[test]
fn a_deferred_live_probe_leaves_the_absence_and_end_probes_in_place() {
    let record = live_record(50, START + 700);
    assert_eq!(record.probe.next_due, Some(START + 700), "live learning due");
    let reason = "live without an archive video".to_string();
    let deferred = after_probe(record, ProbeResult::Deferred { reason }, START + 700, &rules());
    assert_eq!(deferred.status, Status::Live);
    assert_eq!(deferred.probe.next_due, None);
    assert!(!deferred.probe.missed_live, "nothing was searched");
    // Seen again: live learning is not scheduled a second time.
    let seen = apply(
        &[sighting(1, 7, START, 60)],
        std::slice::from_ref(&deferred),
        START + 800,
    );
    assert_eq!(seen.write[0].probe.next_due, None);
    // Gone from a complete pass: probed at once, before the end is certain.
    let absent = absent_after_pass(&seen.write, START + 900, START + 950, &rules());
    assert_eq!(absent.len(), 1);
    assert_eq!(absent[0].probe.next_due, Some(START + 1010));
    // A miss then is a miss while live: the probe after the end decides.
    let missed = after_probe(absent[0].clone(), ProbeResult::Miss, START + 1010, &rules());
    assert!(missed.probe.missed_live);
}

fn confirmed(answers: &[(u64, Confirmed)]) -> HashMap<u64, Confirmed> {
    answers.iter().copied().collect()
}

#[test]
fn a_streamer_confirmed_offline_has_ended_as_if_unseen() {
    let record = live_record(100, START + 60);
    let now = START + 300;
    let update = end_confirmed(
        std::slice::from_ref(&record),
        &confirmed(&[(7, Confirmed::Offline)]),
        now - 1,
        now,
        &rules(),
    );
    assert_eq!(update.delete, Vec::<StreamKey>::new());
    let ended = &update.write[0];
    assert_eq!(ended.status, Status::Pending);
    assert_eq!(ended.ended_at, Some(START + 60), "its end is its last sighting");
    assert_eq!(ended.probe.next_due, Some(now + 60), "first probe settle later");
    // The same as a pass-based end detected at the same moment.
    let mut by_pass = record.clone();
    by_pass.last_seen = START + 60;
    let unseen = end_unseen(&[by_pass], START + 60 + 900, &rules());
    assert_eq!(unseen.write[0].ended_at, ended.ended_at);
    assert_eq!(unseen.write[0].status, ended.status);
}

#[test]
fn a_restart_confirmed_by_id_ends_the_previous_broadcast() {
    let record = live_record(100, START + 60);
    let update = end_confirmed(
        &[record],
        &confirmed(&[(7, Confirmed::Live { stream_id: 2 })]),
        START + 299,
        START + 300,
        &rules(),
    );
    assert_eq!(update.write[0].status, Status::Pending);
}

#[test]
fn a_stream_confirmed_live_is_seen_and_unanswered_ones_are_left_alone() {
    let record = live_record(100, START + 60);
    let mut other = live_record(100, START + 60);
    other.streamer_id = 8;
    let update = end_confirmed(
        &[record, other],
        &confirmed(&[(7, Confirmed::Live { stream_id: 1 })]),
        START + 299,
        START + 300,
        &rules(),
    );
    assert_eq!(update.write.len(), 1);
    assert_eq!(update.write[0].status, Status::Live);
    assert_eq!(update.write[0].last_seen, START + 299);
}

#[test]
fn a_confirmation_does_not_end_what_the_listing_saw_since_or_what_never_counted() {
    let fresh = live_record(100, START + 300);
    let update = end_confirmed(
        &[fresh],
        &confirmed(&[(7, Confirmed::Offline)]),
        START + 299,
        START + 300,
        &rules(),
    );
    assert_eq!(update, PageUpdate::default(), "seen after the question was asked");
    let small = live_record(3, START + 60);
    let update = end_confirmed(
        std::slice::from_ref(&small),
        &confirmed(&[(7, Confirmed::Offline)]),
        START + 299,
        START + 300,
        &rules(),
    );
    assert_eq!(
        update.delete,
        vec![small.key()],
        "below the record threshold: dropped"
    );
}

#[test]
fn an_absence_probe_ended_first_by_a_confirmation_keeps_its_time_and_its_meaning() {
    // Missing from a complete pass: the absence probe is due settle later...
    let live = live_record(50, START + 700);
    let deferred = after_probe(
        live,
        ProbeResult::Deferred {
            reason: "live without an archive video".into(),
        },
        START + 700,
        &rules(),
    );
    let mut absent = absent_after_pass(&[deferred], START + 900, START + 950, &rules()).remove(0);
    assert_eq!(absent.probe.next_due, Some(START + 1010));
    // The channel's video list showed no video for it.
    absent.public = Some(false);
    // ...and a confirmation by id ends the stream before it runs: the probe keeps its time.
    let update = end_confirmed(
        std::slice::from_ref(&absent),
        &confirmed(&[(7, Confirmed::Offline)]),
        START + 964,
        START + 965,
        &rules(),
    );
    let ended = update.write[0].clone();
    assert_eq!(ended.status, Status::Pending);
    assert_eq!(ended.probe.next_due, Some(START + 1010));
    // Without word from the video list, a miss is an ordinary miss: every retry follows.
    let mut unknown = ended.clone();
    unknown.public = None;
    let retried = after_probe(unknown, ProbeResult::Miss, START + 1010, &rules());
    assert!(!retried.probe.missed_live);
    assert_eq!(retried.probe.misses, 1);
    // With it, the miss counts as the miss while live: one more probe settles it.
    let missed = after_probe(ended, ProbeResult::Miss, START + 1010, &rules());
    assert_eq!(missed.status, Status::Pending);
    assert!(missed.probe.missed_live);
    assert_eq!(missed.probe.next_due, Some(START + 1070));
    let settled = after_probe(missed, ProbeResult::Miss, START + 1070, &rules());
    assert_eq!(settled.status, Status::NotFound);
    // A broadcast ended without an absence probe keeps the whole retry schedule.
    let plain = after_probe(ended_record(START + 60), ProbeResult::Miss, START + 200, &rules());
    assert_eq!(plain.status, Status::Pending);
    assert!(!plain.probe.missed_live);
}

#[test]
fn followed_channels_are_probed_first_shed_last_and_recorded_whatever_their_viewers() {
    let mut followed_rules = rules();
    followed_rules.selection = std::sync::Arc::new(crate::follow::Selection {
        followed: std::collections::HashSet::from([42]),
        ..Default::default()
    });
    let queued: Vec<StreamRecord> = (0..4u32)
        .map(|index| {
            let mut record = ended_record(START + 600);
            record.stream_id = u64::from(index);
            record.max_viewers = 10 + index * 10;
            record.streamer_id = if index == 0 { 42 } else { 7 };
            record
        })
        .collect();
    let mut order = queued.clone();
    order.sort_by(|a, b| probe_order(a, b, &followed_rules));
    let ids: Vec<u64> = order.iter().map(|r| r.stream_id).collect();
    assert_eq!(ids, vec![0, 3, 2, 1], "followed first, then the most viewed");
    let shed = shed_backlog(queued, 2, &followed_rules);
    let ids: Vec<u64> = shed.iter().map(|r| r.stream_id).collect();
    assert_eq!(ids, vec![1, 2], "the least viewed unfollowed go first");

    // One viewer: dropped at its end unless followed.
    let quiet = |streamer_id| Sighting {
        streamer_id,
        ..sighting(900 + streamer_id, streamer_id, START, 1)
    };
    for (streamer_id, kept) in [(7, false), (42, true)] {
        let page = apply_sightings(
            &[quiet(streamer_id)],
            &HashMap::new(),
            &HashMap::new(),
            START + 60,
            &followed_rules,
        );
        let ended = end_unseen(&page.write, START + 60 + 901, &followed_rules);
        assert_eq!(ended.write.len(), usize::from(kept), "{streamer_id}: {ended:?}");
        assert_eq!(ended.delete.len(), usize::from(!kept), "{streamer_id}: {ended:?}");
    }
}

#[test]
fn the_hour_aligned_probe_follows_the_copys_end_when_it_went_on_below_the_listing() {
    // Last listed at START + 30, ended at START + 930 by the listing; the copy runs on for
    // two hours (the stream fell below the viewer floor): Twitch mutes on the hour after that.
    let ended = end_unseen(&[live_record(50, START + 30)], START + 930, &rules())
        .write
        .remove(0);
    assert_eq!(ended.status, Status::Pending);
    let capture = |duration: f64, complete: bool| {
        let ProbeResult::Hit { mut archive, learned } = hit() else {
            unreachable!()
        };
        archive.duration_seconds = duration;
        archive.ended = complete;
        archive.fetched_at = START + 7_300;
        after_probe(
            ended.clone(),
            ProbeResult::Hit { archive, learned },
            START + 7_300,
            &rules(),
        )
    };
    let long = capture(7_200.0, true);
    assert_eq!(
        long.probe.next_due,
        Some(hour_probe_time(START + 7_200, &rules()))
    );
    assert!(!long.probe.hour_probe_done);
    // A copy that ended before the listing's end: the listing's end stands (the hour probe
    // time has passed, so the capture is the hour-aligned copy).
    let short = capture(10.0, true);
    assert_eq!(content_end(&short), short.ended_at.expect("ended"));
    assert!(short.probe.hour_probe_done);
    // Still growing when fetched: it ended after the fetch.
    let growing = capture(600.0, false);
    assert_eq!(
        growing.probe.next_due,
        Some(hour_probe_time(START + 7_300, &rules()))
    );
}
