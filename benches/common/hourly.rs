//! The week benchmark's view of the budget hour by hour: `/metrics` sampled each real second,
//! and per clock hour all CDN requests, the probes' (and their rebuild attempts'), the
//! background segment and original-audio checks', what was shed and the deepest queue, so a
//! day that sheds while it also spends on background checks shows when each happened.

const HOUR: i64 = 3_600;

/// Counters and the queue depth `/metrics` gives at one moment.
#[derive(Clone, Copy, Default)]
struct Sample {
    cdn: f64,
    probe: f64,
    rebuild: f64,
    segments: f64,
    audio: f64,
    shed_captures: f64,
    shed_refetches: f64,
    queue: f64,
}

fn sample(text: &str) -> Sample {
    // Every series of a name, whatever its labels, summed.
    let sum = |name: &str| {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let value = if let Some(labelled) = rest.strip_prefix('{') {
                    labelled.split_once("} ")?.1
                } else {
                    rest.strip_prefix(' ')?
                };
                value.trim().parse::<f64>().ok()
            })
            .sum::<f64>()
    };
    let labelled = |name: &str, label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(label)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Sample {
        cdn: sum("vodprobe_cdn_requests_total"),
        probe: sum("vodprobe_probe_requests_total"),
        audio: sum("vodprobe_original_audio_check_requests_total"),
        rebuild: sum("vodprobe_rebuild_requests_total"),
        segments: sum("vodprobe_segment_check_requests_total"),
        shed_captures: labelled("vodprobe_shed_total", "{reason=\"capture\"}"),
        shed_refetches: labelled("vodprobe_shed_total", "{reason=\"hour_refetch\"}"),
        queue: sum("vodprobe_queue_depth"),
    }
}

/// Per clock hour since the start: the first and last sample and the deepest queue.
#[derive(Default)]
pub struct Hourly {
    hours: Vec<Option<(Sample, Sample, f64)>>,
}

impl Hourly {
    /// Adds the `/metrics` text read `clock_secs` after the start.
    pub fn add(&mut self, clock_secs: i64, text: &str) {
        let now = sample(text);
        let hour = (clock_secs / HOUR).max(0) as usize;
        if self.hours.len() <= hour {
            self.hours.resize(hour + 1, None);
        }
        let slot = &mut self.hours[hour];
        match slot {
            Some((_, last, peak)) => {
                *last = now;
                *peak = peak.max(now.queue);
            }
            None => *slot = Some((now, now, now.queue)),
        }
    }

    /// Prints one row per clock hour of the given days (1-based).
    pub fn print(&self, days: &[usize]) {
        println!(
            "\nthe budget hour by hour (sampled from /metrics each real second; every broadcast, \
             scored or not; probes are counted when they end): CDN requests in all, of probes (of \
             them rebuild attempts), of background segment checks and original-audio checks, \
             broadcasts shed (captures; hour-aligned re-fetches), the deepest probe queue"
        );
        println!(
            "| day | hour | CDN requests | probes | of them rebuilds | segment checks | audio checks | shed captures | shed re-fetches | queue peak |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for &day in days {
            for hour in (day - 1) * 24..day * 24 {
                let Some(Some((first, last, peak))) = self.hours.get(hour) else {
                    continue;
                };
                // The next hour's first sample closes this one when there is one.
                let end = match self.hours.get(hour + 1) {
                    Some(Some((next, _, _))) => next,
                    _ => last,
                };
                println!(
                    "| {day} | {:>2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {peak:.0} |",
                    hour % 24,
                    end.cdn - first.cdn,
                    end.probe - first.probe,
                    end.rebuild - first.rebuild,
                    end.segments - first.segments,
                    end.audio - first.audio,
                    end.shed_captures - first.shed_captures,
                    end.shed_refetches - first.shed_refetches,
                );
            }
        }
    }
}
