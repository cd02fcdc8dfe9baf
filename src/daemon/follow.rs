//! The follow stage: the `[[follow]]` channels resolved, put in force, and checked by id.
//!
//! Logins are resolved to channel ids once (100 a request) and the resolutions kept in the
//! store (`state_v1` "follows_v1", JSON), so from then on the id is followed: a rename keeps
//! the follow, and is noticed when the channel's login in an answer differs from the one kept
//! (logged, and the new login kept); a channel followed by id is taken for renamed when its
//! login differs from its last stored broadcast's. The followed ids and the rules go into the settings in
//! force (`track::Rules::selection`), where the crawl, the ends and the probe order read them.
//!
//! Every `confirm_after` (at least [`CONFIRM_EVERY`]), the followed channels are asked about
//! by id with the crawl's own listing client, 100 a request: a live one comes back with what a
//! record needs and is upserted like a listing page's sighting whatever its viewers; one
//! answered offline, or live with another stream, has ended. So with `scope = "followed"` the
//! appliance spends `ceil(follows / 100)` listing requests per check and no crawl. It runs on
//! the crawl's task, before the crawl's page and the confirmations: a failed request ends
//! nothing and is tried at the next check.

use super::confirm::CONFIRM_EVERY;
use super::crawl::{CrawlParts, apply_page, note_ends};
use super::every::blocking;
use super::state::Settings;
use crate::config::Scope;
use crate::discover::{DiscoverError, LiveNow, Source, UserId};
use crate::follow::{self, Resolved, Selection};
use crate::metrics::{Kind, Metrics};
use crate::record::Sighting;
use crate::store::StoreError;
use crate::track::{self, Confirmed};
use std::collections::{HashMap, HashSet};
use tracing::{debug, info, warn};

/// Where the resolutions are kept in `state_v1`.
const RESOLVED_STATE: &str = "follows_v1";

/// An unresolved login (unknown, or the listing failed) is asked again after this long.
const RESOLVE_AGAIN_AFTER: i64 = 300;

/// Declares the stage's series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_listing_follow_requests_total",
        Kind::Counter,
        "Listing requests checking the followed channels by id, and resolving their logins.",
    );
    metrics.describe(
        "vodprobe_follows",
        Kind::Gauge,
        "Followed channels in force (resolved to an id).",
    );
}

/// The resolutions known and when the channels were last checked.
#[derive(Default)]
pub struct Follow {
    /// `None` until read from the store.
    resolved: Option<Vec<Resolved>>,
    last_check: Option<i64>,
    last_resolve: Option<i64>,
    /// Renames of channels followed by id already logged (channel, new login): a rename
    /// during a broadcast would otherwise be said at every check until the next one.
    renames_said: HashSet<(u64, String)>,
}

impl Follow {
    /// Resolves, puts in force and checks the follows if due; gives the listing client back
    /// (`None` when it was lost to a panic).
    pub async fn tick(&mut self, parts: &CrawlParts, settings: &Settings, source: Source) -> Option<Source> {
        let now = parts.clock.now();
        if self.resolved.is_none() {
            let stored = parts
                .store
                .job("could not read the followed channels' ids", |store| {
                    store.get_state(RESOLVED_STATE)
                })
                .await?;
            let list = stored
                .and_then(|bytes| serde_json::from_slice::<Vec<Resolved>>(&bytes).ok())
                .unwrap_or_default();
            self.resolved = Some(list);
        }
        let mut source = Some(source);
        let config = &settings.config;
        let unresolved = follow::plan(config, self.resolved.as_deref().unwrap_or_default()).unresolved;
        if !unresolved.is_empty() && self.last_resolve.is_none_or(|at| now - at >= RESOLVE_AGAIN_AFTER) {
            self.last_resolve = Some(now);
            source = self.resolve(parts, settings, source?, unresolved, now).await;
        }
        let plan = follow::plan(config, self.resolved.as_deref().unwrap_or_default());
        let selection = Selection {
            followed: plan.ids,
            retention: plan.retention,
            rules: config.rules.clone(),
        };
        parts
            .metrics
            .set("vodprobe_follows", &[], selection.followed.len() as f64);
        if *settings.rules.selection != selection {
            parts.settings.set_selection(selection.clone());
        }
        let period = settings.config.source.confirm_after.as_secs() as i64;
        let period = if period == 0 {
            60
        } else {
            period.max(CONFIRM_EVERY)
        };
        if selection.followed.is_empty() || self.last_check.is_some_and(|at| now - at < period) {
            return source;
        }
        self.last_check = Some(now);
        let mut ids: Vec<u64> = selection.followed.iter().copied().collect();
        ids.sort_unstable();
        self.check(parts, settings, source?, ids, now).await
    }

    async fn resolve(
        &mut self,
        parts: &CrawlParts,
        settings: &Settings,
        mut source: Source,
        logins: Vec<String>,
        now: i64,
    ) -> Option<Source> {
        let fetcher = settings.fetcher.clone();
        let asked = logins.clone();
        let (source, answer) = blocking("the follow resolution task", move || {
            let answer = source.users_by_login(&fetcher, &asked, now);
            (source, answer)
        })
        .await?;
        parts.metrics.add(
            "vodprobe_listing_follow_requests_total",
            &[],
            logins.len().div_ceil(crate::discover::CONFIRM_BATCH) as f64,
        );
        let found: Vec<UserId> = match answer {
            Ok(found) => found,
            Err(error) => {
                listing_error(parts, &error);
                warn!("resolving followed logins failed: {error}; asked again in {RESOLVE_AGAIN_AFTER}s");
                return Some(source);
            }
        };
        for login in logins.iter().filter(|l| !found.iter().any(|f| &f.0 == *l)) {
            warn!(
                login,
                "followed login is unknown to Twitch (typo, or renamed before it was resolved); asked again later"
            );
        }
        if found.is_empty() {
            return Some(source);
        }
        let resolved = self.resolved.get_or_insert_with(Vec::new);
        for (configured, streamer_id, login) in found {
            info!(login = %configured, streamer_id, "followed login resolved; the channel id is followed from now on");
            resolved.retain(|r| r.configured != configured);
            resolved.push(Resolved {
                configured,
                streamer_id,
                login: login.to_ascii_lowercase(),
            });
        }
        self.save(parts).await;
        Some(source)
    }

    async fn save(&self, parts: &CrawlParts) {
        let bytes = serde_json::to_vec(self.resolved.as_deref().unwrap_or_default()).unwrap_or_default();
        parts
            .store
            .job("could not keep the followed channels' ids", move |store| {
                store.put_state(RESOLVED_STATE, &bytes)
            })
            .await;
    }

    /// Asks about every followed channel by id and stores what the answer shows.
    async fn check(
        &mut self,
        parts: &CrawlParts,
        settings: &Settings,
        mut source: Source,
        ids: Vec<u64>,
        now: i64,
    ) -> Option<Source> {
        let fetcher = settings.fetcher.clone();
        let asked = ids.len();
        let (source, answer) = blocking("the follow check task", move || {
            let answer = source.live_streams(&fetcher, &ids, now);
            (source, answer)
        })
        .await?;
        parts.metrics.add(
            "vodprobe_listing_follow_requests_total",
            &[],
            asked.div_ceil(crate::discover::CONFIRM_BATCH) as f64,
        );
        // With no crawl, the checks are what `/healthz` reports of the listing.
        let only_follows = settings.config.source.scope == Scope::Followed;
        let answer: LiveNow = match answer {
            Ok(answer) => {
                if only_follows {
                    parts.activity.listing_page_stored(now);
                    parts.activity.listing_pass_completed();
                }
                answer
            }
            Err(error) => {
                if only_follows {
                    parts.activity.listing_failed(error.to_string());
                }
                listing_error(parts, &error);
                warn!("checking the followed channels failed: {error}; nothing is ended without an answer");
                return Some(source);
            }
        };
        self.notice_renames(parts, &answer.sightings).await;
        // The rules in force now (the selection was just put in force).
        let rules = parts.settings.get().rules.clone();
        let sightings: Vec<Sighting> = answer
            .sightings
            .into_iter()
            .filter(|s| !rules.selection.skips(&s.into()))
            .collect();
        let mut confirmed: HashMap<u64, Confirmed> = answer
            .offline
            .iter()
            .map(|id| (*id, Confirmed::Offline))
            .collect();
        confirmed.extend(answer.live.iter().map(|(id, (stream_id, _))| {
            (
                *id,
                Confirmed::Live {
                    stream_id: *stream_id,
                },
            )
        }));
        let live_count = sightings.len();
        let clock = parts.clock;
        let metrics = parts.metrics.clone();
        let renamed = parts
            .store
            .job("could not store the followed channels' streams", move |store| {
                store.update(|tx| {
                    // A login unlike the channel's last broadcast's: a rename, said once.
                    let mut renamed = Vec::new();
                    for s in &sightings {
                        if let Some(last) = tx.latest_of_streamer(s.streamer_id, None)?
                            && !last.login.eq_ignore_ascii_case(&s.login)
                        {
                            renamed.push((s.streamer_id, last.login, s.login.to_ascii_lowercase()));
                        }
                    }
                    if !sightings.is_empty() {
                        apply_page(tx, &sightings, now, &rules, &metrics)?;
                    }
                    let live = tx.live()?;
                    let update = track::end_confirmed(&live, &confirmed, now, clock.now(), &rules);
                    note_ends(&metrics, "follow", &update.write, |_| true, clock.now());
                    tx.apply(&update.write, &update.delete)?;
                    Ok::<_, StoreError>(renamed)
                })
            })
            .await;
        // Channels followed by login were logged with their resolution (`notice_renames`).
        let by_login = self.resolved.as_deref().unwrap_or_default();
        for (streamer_id, old, new) in renamed.unwrap_or_default() {
            if !by_login.iter().any(|r| r.streamer_id == streamer_id)
                && self.renames_said.insert((streamer_id, new.clone()))
            {
                info!(streamer_id, %old, %new, "followed channel renamed; still followed by its id");
            }
        }
        debug!(live = live_count, "followed channels checked");
        Some(source)
    }

    /// Logs each followed channel whose login changed and keeps the new one.
    async fn notice_renames(&mut self, parts: &CrawlParts, sightings: &[Sighting]) {
        let seen: Vec<(u64, String)> = sightings
            .iter()
            .map(|s| (s.streamer_id, s.login.clone()))
            .collect();
        let resolved = self.resolved.get_or_insert_with(Vec::new);
        let renames: Vec<(u64, String)> = follow::renamed(resolved, &seen)
            .into_iter()
            .map(|(r, new)| {
                info!(
                    streamer_id = r.streamer_id,
                    old = %r.login,
                    new = %new,
                    "followed channel renamed; still followed by its id"
                );
                (r.streamer_id, new)
            })
            .collect();
        if renames.is_empty() {
            return;
        }
        for (id, new) in renames {
            for r in resolved.iter_mut().filter(|r| r.streamer_id == id) {
                r.login = new.clone();
            }
        }
        self.save(parts).await;
    }
}

fn listing_error(parts: &CrawlParts, error: &DiscoverError) {
    parts
        .metrics
        .inc("vodprobe_listing_errors_total", &[("kind", error.kind())]);
}
