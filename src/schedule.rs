//! Time for the pipeline: an injectable clock and cron schedules evaluated against it.
//!
//! Every pipeline decision reads "now" from a [`Clock`], never from the system directly, so
//! tests and the demo can run a day in minutes: an accelerated clock starts at a chosen instant
//! and runs `speed` times faster than real time, and sleeping until a clock time sleeps the
//! correspondingly shorter real time. Cron runs that were missed while a job was busy (or the
//! appliance was down) are coalesced into one: the next run is computed from the time the
//! previous one finished.

use chrono::{DateTime, TimeZone, Utc};
use std::time::{Duration, Instant};

/// Wall-clock time in unix milliseconds, real or accelerated.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_unix_ms: i64,
    started: Instant,
    speed: f64,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            origin_unix_ms: Utc::now().timestamp_millis(),
            started: Instant::now(),
            speed: 1.0,
        }
    }

    /// A clock that reads `origin_unix` now and runs `speed` times faster than real time.
    pub fn accelerated(origin_unix: i64, speed: f64) -> Clock {
        Clock {
            origin_unix_ms: origin_unix.saturating_mul(1000),
            started: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn now_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0 * self.speed;
        self.origin_unix_ms + elapsed as i64
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// The real time until the clock reads `unix_ms` (zero if it already has).
    pub fn real_until(&self, unix_ms: i64) -> Duration {
        let clock_ms = (unix_ms - self.now_ms()).max(0) as f64;
        Duration::from_secs_f64(clock_ms / 1000.0 / self.speed)
    }

    /// The real duration of a clock duration.
    pub fn real(&self, clock: Duration) -> Duration {
        Duration::from_secs_f64(clock.as_secs_f64() / self.speed)
    }
}

/// The next run of `schedule` strictly after `after_unix_ms`, in unix milliseconds.
pub fn next_run(schedule: &cron::Schedule, after_unix_ms: i64) -> Option<i64> {
    let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_unix_ms).single()?;
    schedule.after(&after).next().map(|time| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn accelerated_clock_runs_faster_and_sleeps_shorter() {
        let clock = Clock::accelerated(1_000_000, 3600.0);
        let start = clock.now_ms();
        assert!((1_000_000_000..1_000_010_000).contains(&start), "{start}");
        // One clock hour is one real second.
        let real = clock.real_until(start + 3_600_000);
        assert!(
            real <= Duration::from_secs(1) && real > Duration::from_millis(900),
            "{real:?}"
        );
        assert_eq!(clock.real(Duration::from_secs(7200)), Duration::from_secs(2));
        assert_eq!(clock.real_until(start - 5000), Duration::ZERO);
    }

    #[test]
    fn cron_next_run_is_strictly_after_and_coalesces() {
        let every_five_minutes = cron::Schedule::from_str("0 */5 * * * *").expect("cron");
        // 2022-09-24 17:02:09 UTC → 17:05:00.
        assert_eq!(
            next_run(&every_five_minutes, 1_664_038_929_000),
            Some(1_664_039_100_000)
        );
        assert_eq!(
            next_run(&every_five_minutes, 1_664_039_100_000),
            Some(1_664_039_400_000)
        );
        // A job that finished long after its slot runs once at the next slot, not once per miss.
        assert_eq!(
            next_run(&every_five_minutes, 1_664_039_100_000 + 3_600_000 + 1),
            Some(1_664_043_000_000)
        );
        let hourly = cron::Schedule::from_str("0 0 * * * *").expect("cron");
        assert_eq!(next_run(&hourly, 1_664_038_929_000), Some(1_664_042_400_000));
    }
}
