//! A rebuild over the network: asks a broadcast's segments by HEAD request under the shared
//! budget, as [`crate::rebuild::Rebuild`] plans, one at a time. Any answer other than "exists"
//! or the module's "missing" (a timeout, a 5xx, a 429) ends the rebuild as inconclusive: it
//! says nothing about the segment, and taking it for "not there" would cut the playlist short.

use super::{
    Cdn, Found, HandedBack, SearchError, SearchLimits, SearchRequest,
    checks::{SEGMENT_BUDGET_WAIT, wait_for_slot},
    plan,
};
use crate::budget::Budget;
use crate::config::{Config, DomainConfig};
use crate::fetch::Fetcher;
use crate::playlist::{self, Container, PlaylistSummary};
use crate::rebuild::{self, FIRST_SEGMENT, Rebuild};

/// A playlist rebuilt from the segments of a broadcast whose playlist is gone.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    /// The playlist's URL as it was (it answers 403 now); the rebuilt one's URIs are relative
    /// to it, like Twitch's.
    pub url: String,
    pub raw: String,
    /// With absolute URIs, as [`playlist::make_playable`] makes any capture playable.
    pub playable: String,
    pub summary: PlaylistSummary,
}

/// How a rebuild ended.
#[derive(Clone, Debug)]
pub enum RebuildOutcome {
    Rebuilt(Rebuilt),
    /// Segment 0 answered "missing" under every name: there is nothing to rebuild here.
    NoSegments,
    /// A failure ended it (the reason); nothing can be concluded.
    Inconclusive(String),
    /// It stopped before it began or midway: a stop, no budget, the domain withdrawn.
    HandedBack(HandedBack),
}

/// A rebuild's outcome and the requests it spent.
#[derive(Clone, Debug)]
pub struct RebuildAttempt {
    pub outcome: RebuildOutcome,
    pub requests: usize,
}

/// Why a segment could not be asked, or what its answer meant.
#[derive(Clone, Debug)]
pub enum AskFailed {
    HandedBack(HandedBack),
    /// The domain answered neither "exists" nor "missing", or not at all.
    Failed(String),
}

/// Asks whether the segment at `url` exists on `domain` (HEAD, one budget slot): with
/// `give_up`, hands the turn back when no slot comes soon (background work).
pub fn segment_exists(
    cdn: Cdn<'_>,
    domain: &DomainConfig,
    url: &str,
    give_up: bool,
) -> Result<bool, AskFailed> {
    wait_for_slot(
        cdn.budget,
        cdn.steer,
        domain,
        give_up.then_some(SEGMENT_BUDGET_WAIT),
    )
    .map_err(AskFailed::HandedBack)?;
    let module = cdn.config.module_of(domain);
    match cdn.fetcher.head(url, domain.timeout) {
        Ok(200 | 206) => Ok(true),
        Ok(status) if module.answer.missing.contains(&status) => Ok(false),
        Ok(status) => Err(AskFailed::Failed(format!(
            "{}: answered HTTP {status}",
            domain.url
        ))),
        Err(error) => Err(AskFailed::Failed(format!("{}: {error}", domain.url))),
    }
}

/// Rebuilds the playlist that lived at `playlist_url` on `domain_url`: asks segment 0 under
/// each name of [`FIRST_SEGMENT`] until one answers (only `container`'s names when an earlier
/// copy told it), then searches on. `partial` is an earlier copy of the playlist, if one was
/// seen. With `background`, only the first request may be handed back for want of budget
/// (later ones wait: a rebuild handed back halfway would have spent its requests for nothing).
pub fn rebuild_at(
    cdn: Cdn<'_>,
    domain_url: &str,
    playlist_url: &str,
    container: Option<Container>,
    partial: Option<&str>,
    background: bool,
) -> RebuildAttempt {
    let Some(domain) = cdn.config.domains.iter().find(|d| d.url == domain_url) else {
        return RebuildAttempt {
            outcome: RebuildOutcome::HandedBack(HandedBack::NotConfigured(domain_url.to_string())),
            requests: 0,
        };
    };
    let directory = playlist::directory_of(playlist_url);
    let mut requests = 0;
    let names = FIRST_SEGMENT
        .into_iter()
        .filter(|(named, _)| container.is_none_or(|known| known == *named));
    for (container, muted) in names {
        let url = format!("{directory}{}", rebuild::segment_name(container, 0, muted));
        requests += 1;
        match segment_exists(cdn, domain, &url, background && requests == 1) {
            Ok(true) => {
                let mut attempt = rebuild_from(cdn, domain_url, playlist_url, container, muted, partial);
                attempt.requests += requests;
                return attempt;
            }
            Ok(false) => {}
            Err(failed) => return failed_attempt(failed, requests),
        }
    }
    RebuildAttempt {
        outcome: RebuildOutcome::NoSegments,
        requests,
    }
}

/// Rebuilds once segment 0 is known to answer under `container` (muted or not); the requests
/// counted are those after segment 0.
pub fn rebuild_from(
    cdn: Cdn<'_>,
    domain_url: &str,
    playlist_url: &str,
    container: Container,
    first_muted: bool,
    partial: Option<&str>,
) -> RebuildAttempt {
    let Some(domain) = cdn.config.domains.iter().find(|d| d.url == domain_url) else {
        return RebuildAttempt {
            outcome: RebuildOutcome::HandedBack(HandedBack::NotConfigured(domain_url.to_string())),
            requests: 0,
        };
    };
    let (known_segments, total_seconds) = partial.map_or((0, None), rebuild::partial_hints);
    let directory = playlist::directory_of(playlist_url);
    let mut plan = Rebuild::new(container, first_muted, known_segments);
    let mut requests = 0;
    while let Some(ask) = plan.next() {
        let url = format!(
            "{directory}{}",
            rebuild::segment_name(container, ask.index, ask.muted)
        );
        requests += 1;
        match segment_exists(cdn, domain, &url, false) {
            Ok(exists) => plan.answer(ask, exists),
            Err(failed) => return failed_attempt(failed, requests),
        }
    }
    let outcome = match plan.playlist(total_seconds) {
        Some(raw) => match playlist::validate(raw.as_bytes(), usize::MAX) {
            Ok(summary) => RebuildOutcome::Rebuilt(Rebuilt {
                url: playlist_url.to_string(),
                playable: playlist::make_playable(&raw, directory),
                raw,
                summary,
            }),
            Err(error) => RebuildOutcome::Inconclusive(format!("the rebuilt playlist is invalid: {error}")),
        },
        None => RebuildOutcome::Inconclusive("the rebuild did not finish".to_string()),
    };
    RebuildAttempt { outcome, requests }
}

fn failed_attempt(failed: AskFailed, requests: usize) -> RebuildAttempt {
    match failed {
        // The last request was never sent.
        AskFailed::HandedBack(handed_back) => RebuildAttempt {
            outcome: RebuildOutcome::HandedBack(handed_back),
            requests: requests - 1,
        },
        AskFailed::Failed(reason) => RebuildAttempt {
            outcome: RebuildOutcome::Inconclusive(reason),
            requests,
        },
    }
}

/// What `lookup --rebuild` learned after every candidate playlist missed.
#[derive(Clone, Debug)]
pub struct LookupRebuild {
    /// The rebuilt broadcast, reported like a found one (its `url` is the playlist that
    /// answers 403 now).
    pub found: Option<Found>,
    pub requests: usize,
    /// Why nothing can be concluded (a domain failed while asked); `None` when every
    /// candidate's segment 0 was asked, or a rebuild finished.
    pub inconclusive: Option<String>,
}

/// Asks segment 0 in every candidate folder of `request` (the lookup's own plan, most probable
/// first): `0.ts` and `0.mp4` in each folder, then the `-muted` names in each, skipping
/// `skip_domains` (those that failed in the lookup) and any domain that fails here; rebuilds on
/// the first hit.
pub fn lookup_rebuild(
    config: &Config,
    fetcher: &Fetcher,
    request: &SearchRequest,
    limits: SearchLimits,
    skip_domains: &[String],
) -> Result<LookupRebuild, SearchError> {
    let budget = Budget::immediate(limits.requests_per_second);
    let cdn = Cdn {
        config,
        fetcher,
        budget: &budget,
        steer: &|| false,
    };
    let candidates = plan(config, request)?;
    let mut failed: Vec<String> = skip_domains.to_vec();
    let mut result = LookupRebuild {
        found: None,
        requests: 0,
        inconclusive: None,
    };
    // The plain names in each folder, most probable folder first (both containers there before
    // the next folder: the first folder is right nine times in ten), then the muted ones.
    let asks = [false, true].into_iter().flat_map(|muted| {
        candidates.iter().flat_map(move |candidate| {
            FIRST_SEGMENT
                .into_iter()
                .filter(move |&(_, first_muted)| first_muted == muted)
                .map(move |(container, muted)| (candidate, container, muted))
        })
    });
    for (candidate, container, muted) in asks {
        let Some(domain) = config.domains.get(candidate.domain) else {
            continue;
        };
        if failed.contains(&domain.url) {
            continue;
        }
        let playlist_url = format!("{}{}", domain.url, candidate.path);
        let url = format!(
            "{}{}",
            playlist::directory_of(&playlist_url),
            rebuild::segment_name(container, 0, muted)
        );
        result.requests += 1;
        match segment_exists(cdn, domain, &url, false) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(AskFailed::HandedBack(_)) => {
                result.requests -= 1;
                continue;
            }
            Err(AskFailed::Failed(reason)) => {
                failed.push(domain.url.clone());
                result.inconclusive.get_or_insert(reason);
                continue;
            }
        }
        let attempt = rebuild_from(cdn, &domain.url, &playlist_url, container, muted, None);
        result.requests += attempt.requests;
        match attempt.outcome {
            RebuildOutcome::Rebuilt(rebuilt) => {
                let module = config.module_of(domain);
                result.inconclusive = None;
                result.found = Some(Found {
                    domain: candidate.domain,
                    domain_url: domain.url.clone(),
                    url: rebuilt.url,
                    folder: module.folder(&request.login, request.stream_id, &candidate.ts),
                    form: candidate.form,
                    timestamp: candidate.ts.clone(),
                    start_unix: candidate.start_unix,
                    summary: rebuilt.summary,
                    raw: rebuilt.raw,
                    playable: rebuilt.playable,
                    domains: vec![domain.url.clone()],
                });
            }
            RebuildOutcome::Inconclusive(reason) => result.inconclusive = Some(reason),
            RebuildOutcome::NoSegments | RebuildOutcome::HandedBack(_) => {
                result.inconclusive = Some("the rebuild stopped before it finished".to_string());
            }
        }
        return Ok(result);
    }
    Ok(result)
}
