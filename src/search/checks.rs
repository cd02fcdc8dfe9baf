//! The checks that share the search's budget and verdicts: a found broadcast's other quality
//! folders, a capture's segments (spare budget only), and every domain's health.

use super::{Cdn, Steer, Verdict, judge};
use crate::budget::Budget;
use crate::config::{Config, DomainConfig};
use crate::fetch::Fetcher;
use crate::segments::SegmentAnswer;
use std::time::{Duration, Instant};

/// What a check of a found broadcast's other quality folders saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityCheck {
    /// Every quality that answered with a playlist, the primary first, in the module's order.
    pub qualities: Vec<String>,
    pub requests: usize,
    /// Why the check could not finish (a domain failure, a stop); `None` when complete.
    pub unfinished: Option<String>,
    /// The check can never run (its domain is no longer configured, or the URL has no
    /// primary-quality folder): asking again later would change nothing.
    pub impossible: bool,
}

/// The longest a segment check waits for its first budget slot before it hands its turn back:
/// the check uses spare budget, so a queue of probes waiting for slots means "later".
pub(super) const SEGMENT_BUDGET_WAIT: Duration = Duration::from_secs(2);

/// What a segment check asked and heard (see `segments`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SegmentProbe {
    /// One per segment asked, in the order asked.
    pub answers: Vec<SegmentAnswer>,
    pub requests: usize,
    /// Why not every segment was asked; `None` when every one was, or a failure ended the
    /// check (then the last answer says so).
    pub handed_back: Option<HandedBack>,
}

/// Why a segment check stopped before it asked every segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandedBack {
    /// Its owner is stopping.
    Stopped,
    /// No budget slot came soon enough: the probes need the budget now.
    NoBudget,
    /// The domain holding the capture is no longer configured (or was disabled).
    NotConfigured(String),
}

/// Asks the domain `domain_url` for each of `urls` (a capture's chosen segments) with a HEAD
/// request, one at a time under the shared budget; with no slot soon for the first, it hands
/// its turn back having asked nothing. A failure ends the check at once: a domain
/// in trouble says nothing about the media, and more requests would only add to its load.
pub fn check_segments(cdn: Cdn<'_>, domain_url: &str, urls: &[String]) -> SegmentProbe {
    let Cdn {
        config,
        fetcher,
        budget,
        steer,
    } = cdn;
    let mut probe = SegmentProbe::default();
    let Some(domain) = config.domains.iter().find(|d| d.url == domain_url) else {
        probe.handed_back = Some(HandedBack::NotConfigured(domain_url.to_string()));
        return probe;
    };
    let module = config.module_of(domain);
    for url in urls {
        // Only the first request may be handed back for want of budget: a check handed back
        // halfway would have spent its requests for nothing.
        let give_up = (probe.requests == 0).then_some(SEGMENT_BUDGET_WAIT);
        if let Err(handed_back) = wait_for_slot(budget, steer, domain, give_up) {
            probe.handed_back = Some(handed_back);
            return probe;
        }
        probe.requests += 1;
        let answer = match fetcher.head(url, domain.timeout) {
            Ok(200 | 206) => SegmentAnswer::Live,
            Ok(status) if module.answer.missing.contains(&status) => SegmentAnswer::Missing,
            Ok(status) => SegmentAnswer::Failed(format!("{}: answered HTTP {status}", domain.url)),
            Err(error) => SegmentAnswer::Failed(format!("{}: {error}", domain.url)),
        };
        let failed = matches!(answer, SegmentAnswer::Failed(_));
        probe.answers.push(answer);
        if failed {
            break;
        }
    }
    probe
}

/// Waits for a slot of `domain`'s share of the budget, in short sleeps so that a stop or the
/// domain's removal is seen meanwhile; with `give_up`, hands the turn back (`NoBudget`) when
/// the slot is further away than that.
pub(super) fn wait_for_slot(
    budget: &Budget,
    steer: &dyn Steer,
    domain: &DomainConfig,
    give_up: Option<Duration>,
) -> Result<(), HandedBack> {
    let waiting_since = Instant::now();
    loop {
        if steer.stop() {
            return Err(HandedBack::Stopped);
        }
        if steer.withdrawn(&domain.url) {
            return Err(HandedBack::NotConfigured(domain.url.clone()));
        }
        let now = Instant::now();
        match budget.try_take(&domain.url, domain.requests_per_second, now) {
            Ok(()) => return Ok(()),
            Err(ready) if give_up.is_some_and(|limit| ready.duration_since(waiting_since) > limit) => {
                return Err(HandedBack::NoBudget);
            }
            Err(ready) => std::thread::sleep(
                ready
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(200)),
            ),
        }
    }
}

/// Asks the domain that holds a found broadcast for each of its module's other quality folders
/// (`{folder}/{quality}/...`), one request each under the shared budget, waiting for its turn.
/// A folder that answers with a valid playlist exists; "missing" answers mean it does not; any
/// other answer or a timeout stops the check, which the caller may repeat later.
pub fn check_qualities(cdn: Cdn<'_>, domain_url: &str, playlist_url: &str) -> QualityCheck {
    let Cdn {
        config,
        fetcher,
        budget,
        steer,
    } = cdn;
    let mut check = QualityCheck::default();
    let Some(domain) = config.domains.iter().find(|d| d.url == domain_url) else {
        check.unfinished = Some(format!("{domain_url} is no longer configured"));
        check.impossible = true;
        return check;
    };
    let module = config.module_of(domain);
    let primary = module.primary_quality();
    let marker = format!("/{primary}/");
    let Some(at) = playlist_url.rfind(&marker) else {
        check.unfinished = Some(format!("{playlist_url} has no /{primary}/ folder"));
        check.impossible = true;
        return check;
    };
    check.qualities.push(primary.to_string());
    for quality in module.qualities.iter().skip(1) {
        match wait_for_slot(budget, steer, domain, None) {
            Ok(()) => {}
            Err(HandedBack::NotConfigured(url)) => {
                check.unfinished = Some(format!("{url} is no longer configured"));
                check.impossible = true;
                return check;
            }
            Err(_) => {
                check.unfinished = Some("stopped".to_string());
                return check;
            }
        }
        let url = format!(
            "{}/{quality}/{}",
            &playlist_url[..at],
            &playlist_url[at + marker.len()..]
        );
        check.requests += 1;
        match judge(fetcher, &url, module, domain.timeout) {
            Verdict::Hit(..) => check.qualities.push(quality.clone()),
            Verdict::Miss => {}
            Verdict::DomainFailed(_, reason) => {
                check.unfinished = Some(format!("{}: {reason}", domain.url));
                return check;
            }
        }
    }
    check
}

/// The health of one domain, as `vodprobe domains` prints it.
#[derive(Clone, Debug)]
pub struct DomainHealth {
    pub domain_url: String,
    pub probe: String,
    pub enabled: bool,
    pub ok: bool,
    pub latency: Option<Duration>,
    pub detail: String,
}

/// Checks every configured domain once, concurrently, by asking for a playlist that cannot
/// exist: a healthy domain answers with a "missing" status quickly. Each check takes a slot of
/// `budget` first.
pub fn check_domains(config: &Config, fetcher: &Fetcher, budget: &Budget) -> Vec<DomainHealth> {
    let handles: Vec<_> = config
        .domains
        .iter()
        .map(|domain| {
            let module = config.module_of(domain).clone();
            let domain = domain.clone();
            if !domain.enabled {
                return None;
            }
            while let Err(ready) = budget.try_take(&domain.url, domain.requests_per_second, Instant::now()) {
                std::thread::sleep(ready.saturating_duration_since(Instant::now()));
            }
            let fetcher = fetcher.clone();
            Some(std::thread::spawn(move || {
                let path = module.path("vodprobe", 0, "0", module.primary_quality());
                let url = format!("{}{}", domain.url, path);
                let started = Instant::now();
                let result = fetcher.get(&url, &[], domain.timeout);
                (started.elapsed(), result, module)
            }))
        })
        .collect();
    config
        .domains
        .iter()
        .zip(handles)
        .map(|(domain, handle)| {
            let mut health = DomainHealth {
                domain_url: domain.url.clone(),
                probe: domain.probe.clone(),
                enabled: domain.enabled,
                ok: false,
                latency: None,
                detail: "disabled in config.toml".to_string(),
            };
            let Some(handle) = handle else {
                return health;
            };
            match handle.join() {
                Ok((latency, Ok(answer), module)) => {
                    health.latency = Some(latency);
                    health.ok = module.answer.missing.contains(&answer.status)
                        || module.answer.found.contains(&answer.status);
                    health.detail = if health.ok {
                        format!("answered HTTP {}", answer.status)
                    } else {
                        format!("answered HTTP {}: not a CDN answer", answer.status)
                    };
                }
                Ok((latency, Err(error), _)) => {
                    health.latency = Some(latency);
                    health.detail = error.to_string();
                }
                Err(_) => health.detail = "the check crashed".to_string(),
            }
            health
        })
        .collect()
}
