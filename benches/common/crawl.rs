//! The week benchmark's view of the crawl: `/metrics` sampled each real second, and per day
//! the passes, those cut by `restart_every`, their clock seconds and pages, and the time to
//! reach `min_viewers_record`.

const DAY: i64 = 86_400;

/// What `/metrics` says of the crawl at one moment.
#[derive(Clone, Copy)]
pub struct ListingSample {
    passes: f64,
    cut: f64,
    pass_seconds: f64,
    pass_pages: f64,
    to_record_floor: f64,
    pages: f64,
    confirms: f64,
    live: f64,
}

/// The crawl's figures in the text of `/metrics`.
pub fn listing_sample(text: &str) -> ListingSample {
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    ListingSample {
        passes: value("vodprobe_listing_passes_total"),
        cut: value("vodprobe_listing_passes_cut_total"),
        pass_seconds: value("vodprobe_listing_pass_seconds"),
        pass_pages: value("vodprobe_listing_pass_pages"),
        to_record_floor: value("vodprobe_listing_record_floor_seconds"),
        pages: value("vodprobe_listing_pages_total"),
        confirms: value("vodprobe_listing_confirm_requests_total"),
        live: value("vodprobe_live"),
    }
}

/// One day's samples of the crawl.
#[derive(Clone, Default)]
pub struct Passes {
    first: Option<ListingSample>,
    last: Option<ListingSample>,
    seconds: Vec<f64>,
    pages: Vec<f64>,
    to_record_floor: Vec<f64>,
    live: Vec<f64>,
}

impl Passes {
    pub fn add(&mut self, sample: ListingSample) {
        self.first.get_or_insert(sample);
        self.last = Some(sample);
        if sample.pass_seconds > 0.0 {
            self.seconds.push(sample.pass_seconds);
            self.pages.push(sample.pass_pages);
        }
        if sample.to_record_floor > 0.0 {
            self.to_record_floor.push(sample.to_record_floor);
        }
        self.live.push(sample.live);
    }
}

pub fn print_passes(passes: &[Passes], days: i64, pages_per_second: f64) {
    println!(
        "\nthe crawl per day (sampled from /metrics each real second): passes, of which cut by \
         restart_every below min_viewers_record; a pass's clock seconds and pages, and its clock \
         seconds down to min_viewers_record, p50 / max; listing pages read per clock second \
         (configured {pages_per_second:.3}); confirmation requests by channel id per clock second \
         (on top of the pages); broadcasts live in the store, p50 / max"
    );
    println!(
        "| day | passes | cut | pass seconds | pages | to the record floor | pages / s | confirms / s | live |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (day, day_passes) in passes.iter().enumerate().take(days as usize) {
        let (Some(first), Some(last)) = (day_passes.first, day_passes.last) else {
            continue;
        };
        let spread = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            let mid = v.get(v.len() / 2).copied().unwrap_or(0.0);
            format!("{mid:.0} / {:.0}", v.last().copied().unwrap_or(0.0))
        };
        println!(
            "| {} | {:.0} | {:.0} | {} | {} | {} | {:.3} | {:.3} | {} |",
            day + 1,
            last.passes - first.passes,
            last.cut - first.cut,
            spread(&day_passes.seconds),
            spread(&day_passes.pages),
            spread(&day_passes.to_record_floor),
            (last.pages - first.pages) / DAY as f64,
            (last.confirms - first.confirms) / DAY as f64,
            spread(&day_passes.live)
        );
    }
}
