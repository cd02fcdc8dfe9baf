//! The request budget: one rate for every CDN request the appliance makes, plus optional
//! per-domain caps, shared by every search running at once.
//!
//! A request takes the next free slot of the global pacer and of its domain's pacer, or learns
//! when to ask again; nothing waits while holding the lock. The first slot after start-up is one
//! interval away, so a crash loop cannot exceed the rate across restarts.
//!
//! A probe's first request (its likeliest candidate: for a known path, the whole capture) goes
//! first: while one waits ([`Budget::first_in_line`]), other requests leave the next slots to
//! it. Without this, a one-request capture of a broadcast that had just ended (a streamer may
//! delete it within minutes) waited behind every search in flight, a slot each.

use crate::fetch::Pacer;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

pub struct Budget {
    inner: Mutex<Inner>,
    taken: AtomicU64,
    /// Probes' first requests waiting for a slot ([`FirstInLine`]).
    first_waiting: AtomicUsize,
}

/// A probe's first request waiting for a slot; dropped once it is taken (or given up).
pub struct FirstInLine<'a> {
    budget: &'a Budget,
}

impl Drop for FirstInLine<'_> {
    fn drop(&mut self) {
        self.budget.first_waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Inner {
    global: Pacer,
    domains: HashMap<String, (f64, Pacer)>,
}

impl Budget {
    /// A budget at `requests_per_second` whose first slot is one interval from now.
    pub fn new(requests_per_second: f64) -> Budget {
        let mut global = Pacer::new(requests_per_second);
        global.take(Instant::now());
        Budget {
            inner: Mutex::new(Inner {
                global,
                domains: HashMap::new(),
            }),
            taken: AtomicU64::new(0),
            first_waiting: AtomicUsize::new(0),
        }
    }

    /// A budget whose first slot is free at once (a one-off lookup).
    pub fn immediate(requests_per_second: f64) -> Budget {
        Budget {
            inner: Mutex::new(Inner {
                global: Pacer::new(requests_per_second),
                domains: HashMap::new(),
            }),
            taken: AtomicU64::new(0),
            first_waiting: AtomicUsize::new(0),
        }
    }

    /// Changes the global rate (configuration reload); slots already taken stand.
    pub fn set_rate(&self, requests_per_second: f64) {
        let mut inner = self.lock();
        let next = inner.global.ready_at(Instant::now());
        inner.global = Pacer::new(requests_per_second);
        inner.global.take(next);
    }

    /// Marks a probe's first request as waiting for a slot until the returned guard is
    /// dropped: meanwhile [`Budget::try_take`] leaves the slots to [`Budget::try_take_first`].
    pub fn first_in_line(&self) -> FirstInLine<'_> {
        self.first_waiting.fetch_add(1, Ordering::Relaxed);
        FirstInLine { budget: self }
    }

    /// Takes a slot for one request to `domain` (capped at `domain_rate` if set) if both the
    /// global and the domain's pacer have one free at `now` and no probe's first request waits
    /// for one; otherwise returns when to retry.
    pub fn try_take(&self, domain: &str, domain_rate: Option<f64>, now: Instant) -> Result<(), Instant> {
        self.take(domain, domain_rate, now, false)
    }

    /// [`Budget::try_take`] for a probe's first request, which holds `_first` from
    /// [`Budget::first_in_line`]: it does not leave its slot to others.
    pub fn try_take_first(
        &self,
        _first: &FirstInLine<'_>,
        domain: &str,
        domain_rate: Option<f64>,
        now: Instant,
    ) -> Result<(), Instant> {
        self.take(domain, domain_rate, now, true)
    }

    fn take(&self, domain: &str, domain_rate: Option<f64>, now: Instant, first: bool) -> Result<(), Instant> {
        let mut inner = self.lock();
        if !first && self.first_waiting.load(Ordering::Relaxed) > 0 {
            // Ask again a slot after the next one, which is the waiting first request's.
            return Err(inner.global.ready_at(now) + inner.global.interval());
        }
        let global_ready = inner.global.ready_at(now);
        let domain_ready = match domain_rate {
            Some(rate) => {
                let entry = inner
                    .domains
                    .entry(domain.to_string())
                    .or_insert_with(|| (rate, Pacer::new(rate)));
                if entry.0 != rate {
                    *entry = (rate, Pacer::new(rate));
                }
                entry.1.ready_at(now)
            }
            None => now,
        };
        let ready = global_ready.max(domain_ready);
        if ready > now {
            return Err(ready);
        }
        inner.global.take(now);
        if domain_rate.is_some()
            && let Some((_, pacer)) = inner.domains.get_mut(domain)
        {
            pacer.take(now);
        }
        self.taken.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Probes' first requests waiting for a slot now.
    pub fn first_waiting(&self) -> usize {
        self.first_waiting.load(Ordering::Relaxed)
    }

    /// Requests sent under this budget so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the pacers inconsistent (plain values).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn global_rate_holds_across_domains() {
        let budget = Budget::immediate(10.0);
        let now = Instant::now();
        assert_eq!(budget.try_take("a", None, now), Ok(()));
        assert_eq!(
            budget.try_take("b", None, now),
            Err(now + Duration::from_millis(100))
        );
        assert_eq!(
            budget.try_take("b", None, now + Duration::from_millis(100)),
            Ok(())
        );
        assert_eq!(budget.taken(), 2);
    }

    #[test]
    fn domain_cap_applies_only_to_its_domain() {
        let budget = Budget::immediate(100.0);
        let now = Instant::now();
        assert_eq!(budget.try_take("slow", Some(1.0), now), Ok(()));
        let later = now + Duration::from_millis(10);
        assert_eq!(
            budget.try_take("slow", Some(1.0), later),
            Err(now + Duration::from_secs(1))
        );
        assert_eq!(budget.try_take("fast", None, later), Ok(()));
    }

    #[test]
    fn a_probes_first_request_goes_before_the_others() {
        let budget = Budget::immediate(10.0);
        let now = Instant::now();
        assert_eq!(budget.try_take("a", None, now), Ok(()));
        let next = now + Duration::from_millis(100);
        {
            let first = budget.first_in_line();
            // The next slot is the first request's: others are told to come back after it.
            assert_eq!(
                budget.try_take("b", None, next),
                Err(next + Duration::from_millis(100))
            );
            assert_eq!(budget.try_take_first(&first, "c", None, next), Ok(()));
        }
        // Taken and the guard dropped: the others' turn again.
        let after = next + Duration::from_millis(100);
        assert_eq!(budget.try_take("b", None, after), Ok(()));
        assert_eq!(budget.taken(), 3);
    }

    #[test]
    fn a_new_budget_waits_one_interval() {
        let before = Instant::now();
        let budget = Budget::new(2.0);
        let result = budget.try_take("a", None, before);
        assert!(
            matches!(result, Err(at) if at >= before + Duration::from_millis(499)),
            "{result:?}"
        );
    }
}
