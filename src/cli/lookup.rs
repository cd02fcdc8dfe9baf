//! `vodprobe lookup`: find one broadcast's playlist, write the playable copy, report.
//!
//! stdout carries only the result (`found <URL>`, or one JSON object with `--json`) so scripts
//! can read it; progress, warnings and explanations go to stderr.

use super::{Exit, load_config};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use vodprobe::fetch::{FetchSettings, Fetcher};
use vodprobe::search::rebuild::lookup_rebuild;
use vodprobe::search::{SearchError, SearchLimits, SearchOutcome, SearchRequest, lookup};
use vodprobe::time_input::parse_time;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "TIME formats: RFC 3339 (2022-09-24T17:02:09Z), \"YYYY-MM-DD HH:MM:SS\" \
    (TwitchTracker, UTC), \"YYYY-MM-DD HH:MM\" or \"DD-MM-YYYY HH:MM\" (StreamsCharts: the whole \
    minute is searched), or unix seconds.\n\n--rebuild: a deleted broadcast's playlist answers 403 \
    while its segments may still answer. When every candidate playlist misses, segment 0 is asked \
    in each candidate folder, most probable first (0.ts and 0.mp4 in each, then the -muted \
    names); on a hit the playlist is rebuilt from the segments (the last one found by a binary \
    search, about 15 requests for a broadcast under 22 hours) and reported with \"rebuilt\": \
    true.\n\nExit codes: 0 found (or \
    rebuilt), 1 searched and not found, 2 bad input or no domain could be asked."
)]
pub struct LookupArgs {
    /// The streamer's login as it was when the stream started (e.g. gmhikaru).
    #[arg(long, value_name = "LOGIN")]
    streamer: String,
    /// The stream id (not the video id), as trackers show it.
    #[arg(long, value_name = "ID")]
    stream_id: String,
    /// The stream's start time (see TIME formats below).
    #[arg(long, value_name = "TIME")]
    time: String,
    /// Also search N minutes either side of the time (trackers are sometimes off).
    #[arg(long, value_name = "MIN", default_value_t = 0)]
    window: u32,
    /// After the hit, also ask every other domain whether it holds the playlist.
    #[arg(long)]
    all_domains: bool,
    /// The configuration file [default: ./config.toml if present, else the built-in default].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where to write the playable playlist [default: <login>_<stream_id>_<ts>.m3u8].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// When no playlist answers, rebuild it from its segments if they still answer (see below).
    #[arg(long)]
    rebuild: bool,
}

/// The `--json` object.
#[derive(Serialize)]
struct JsonReport {
    found: bool,
    url: Option<String>,
    domain: Option<String>,
    path: Option<String>,
    timestamp_form: Option<&'static str>,
    timestamp: Option<String>,
    domains: Vec<String>,
    requests: usize,
    /// Rebuilt from the segments (`--rebuild`): the playlist itself answered 403.
    rebuilt: bool,
    /// Of `requests`, those the rebuild spent (segment 0 in each folder, then the search).
    rebuild_requests: Option<usize>,
    seconds: f64,
    segments: Option<u32>,
    muted_segments: Option<u32>,
    duration_seconds: Option<f64>,
    container: Option<&'static str>,
    out: Option<String>,
    failed_domains: Vec<FailedDomain>,
}

#[derive(Serialize)]
struct FailedDomain {
    domain: String,
    reason: String,
}

const MAX_WINDOW_MINUTES: u32 = 60;

fn validate(args: &LookupArgs) -> Result<SearchRequest, String> {
    let login = args.streamer.trim().to_ascii_lowercase();
    let login_ok =
        (1..=25).contains(&login.len()) && login.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !login_ok {
        return Err(format!(
            "--streamer {:?} is not a Twitch login: 1–25 letters, digits or underscores \
             (the name in the channel's URL, not the display name)",
            args.streamer
        ));
    }
    let stream_id_text = args.stream_id.trim();
    let stream_id: u64 = stream_id_text
        .parse()
        .ok()
        .filter(|_| stream_id_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!(
                "--stream-id {:?} is not a stream id: digits only, e.g. 47198535725 \
                 (a video id from a twitch.tv/videos/ URL is a different number)",
                args.stream_id
            )
        })?;
    let time = parse_time(&args.time).map_err(|error| format!("--time: {error}"))?;
    if args.window > MAX_WINDOW_MINUTES {
        return Err(format!(
            "--window {} is too wide; at most {MAX_WINDOW_MINUTES} minutes",
            args.window
        ));
    }
    Ok(SearchRequest {
        login,
        stream_id,
        time,
        window_minutes: args.window,
        all_domains: args.all_domains,
    })
}

pub fn run(args: LookupArgs) -> Exit {
    let request = match validate(&args) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Error;
        }
    };
    let Some(config) = load_config(args.config.as_deref()) else {
        return Exit::Error;
    };
    let fetcher = Fetcher::new(FetchSettings::from_limits(&config.limits));
    let bar = progress_bar();
    let outcome = lookup(
        &config,
        &fetcher,
        &request,
        SearchLimits::from_config(&config),
        |progress| {
            bar.set_length(progress.planned as u64);
            bar.set_position(progress.requests as u64);
            if progress.failed_domains > 0 {
                bar.set_message(format!("{} domain(s) skipped", progress.failed_domains));
            }
        },
    );
    bar.finish_and_clear();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error @ (SearchError::NoDomains | SearchError::NoDomainAnswered { .. })) => {
            eprintln!("error: {error}");
            eprintln!("check the domains with `vodprobe domains`; nothing was searched");
            return Exit::Error;
        }
    };
    for failure in &outcome.failed_domains {
        eprintln!(
            "warning: skipped {} after its first failure: {}",
            failure.domain_url, failure.reason
        );
    }
    let mut outcome = outcome;
    let mut rebuild_requests = None;
    if args.rebuild && outcome.found.is_none() && !outcome.interrupted {
        let skip: Vec<String> = outcome
            .failed_domains
            .iter()
            .map(|f| f.domain_url.clone())
            .collect();
        match lookup_rebuild(
            &config,
            &fetcher,
            &request,
            SearchLimits::from_config(&config),
            &skip,
        ) {
            Ok(rebuilt) => {
                if let Some(reason) = &rebuilt.inconclusive {
                    eprintln!("warning: the rebuild could not finish: {reason}");
                }
                outcome.requests += rebuilt.requests;
                rebuild_requests = Some(rebuilt.requests);
                outcome.found = rebuilt.found;
            }
            Err(error) => eprintln!("warning: no rebuild: {error}"),
        }
    }
    report(&args, &request, &outcome, rebuild_requests)
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} searching {pos}/{len} candidates {elapsed} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `rebuild_requests` is set when `--rebuild` ran; a found playlist is then a rebuilt one.
fn report(
    args: &LookupArgs,
    request: &SearchRequest,
    outcome: &SearchOutcome,
    rebuild_requests: Option<usize>,
) -> Exit {
    let rebuilt = rebuild_requests.is_some() && outcome.found.is_some();
    let mut json = JsonReport {
        found: false,
        url: None,
        domain: None,
        path: None,
        timestamp_form: None,
        timestamp: None,
        domains: Vec::new(),
        requests: outcome.requests,
        rebuilt,
        rebuild_requests,
        seconds: (outcome.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        segments: None,
        muted_segments: None,
        duration_seconds: None,
        container: None,
        out: None,
        failed_domains: outcome
            .failed_domains
            .iter()
            .map(|f| FailedDomain {
                domain: f.domain_url.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
    };
    let exit = match &outcome.found {
        None => {
            if !args.json {
                let rebuild_note = if rebuild_requests.is_some() {
                    "; no segment 0 answered either"
                } else {
                    ""
                };
                eprintln!(
                    "not found: {} requests over {:.1}s asked every candidate ({} planned) for {} stream {}{}{}",
                    outcome.requests,
                    outcome.elapsed.as_secs_f64(),
                    outcome.planned,
                    request.login,
                    request.stream_id,
                    rebuild_note,
                    if outcome.failed_domains.is_empty() {
                        String::new()
                    } else {
                        "; skipped domains may hold it — try again later or widen --window".to_string()
                    }
                );
            }
            Exit::No
        }
        Some(found) => {
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}_{}_{}.m3u8",
                    request.login, request.stream_id, found.timestamp
                ))
            });
            if let Err(error) = write_atomically(&out, found.playable.as_bytes()) {
                eprintln!(
                    "error: found {} but could not write {}: {error}",
                    found.url,
                    out.display()
                );
                return Exit::Error;
            }
            json.found = true;
            json.url = Some(found.url.clone());
            json.domain = Some(found.domain_url.clone());
            json.path = Some(found.folder.clone());
            json.timestamp_form = Some(found.form.as_str());
            json.timestamp = Some(found.timestamp.clone());
            json.domains = found.domains.clone();
            json.segments = Some(found.summary.segments);
            json.muted_segments = Some(found.summary.muted_segments);
            json.duration_seconds = Some(found.summary.duration_seconds);
            json.container = Some(found.summary.container.as_str());
            json.out = Some(out.display().to_string());
            if !args.json {
                if rebuilt {
                    println!("rebuilt {}", found.url);
                } else {
                    println!("found {}", found.url);
                }
                eprintln!(
                    "wrote {}: {}{} segments ({} muted), {}, {}; {} requests in {:.1}s; form {}{}",
                    out.display(),
                    if rebuilt {
                        format!(
                            "rebuilt from the segments in {} requests (the playlist answers 403): ",
                            rebuild_requests.unwrap_or(0)
                        )
                    } else {
                        String::new()
                    },
                    found.summary.segments,
                    found.summary.muted_segments,
                    hms(found.summary.duration_seconds),
                    found.summary.container.as_str(),
                    outcome.requests,
                    outcome.elapsed.as_secs_f64(),
                    found.form,
                    if args.all_domains {
                        format!(
                            "; held by {} domain(s): {}",
                            found.domains.len(),
                            found.domains.join(" ")
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Exit::Success
        }
    };
    if args.json {
        match serde_json::to_string(&json) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return Exit::Error;
            }
        }
    }
    let _ = std::io::stdout().flush();
    exit
}

fn hms(seconds: f64) -> String {
    let total = seconds.round() as u64;
    format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

/// Writes via a temporary file and a rename, so an interrupted write never leaves half a
/// playlist under the final name.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(".partial");
    let temporary = path.with_file_name(temporary_name);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
