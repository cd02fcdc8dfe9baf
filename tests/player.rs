//! A real player reads what the API serves: `ffprobe` (Debian's ffmpeg) opens a playlist URL
//! from a running `serve` and reads every segment from the simulated CDN, muted ones included.
//! Without ffprobe the test says so and passes, unless `VODPROBE_REQUIRE_FFPROBE` is set (CI
//! sets it after installing ffmpeg), where it fails.

use crate::serve::{FAST, World, now, stream};
use std::process::Command;
use std::time::{Duration, Instant};
use vodprobe_sim::Broadcast;

pub(crate) fn ffprobe_available() -> bool {
    let found = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("VODPROBE_REQUIRE_FFPROBE").is_none(),
            "VODPROBE_REQUIRE_FFPROBE is set but ffprobe is not installed (apt-get install ffmpeg)"
        );
        eprintln!("SKIPPED: ffprobe not installed; `apt-get install ffmpeg` to run this test");
    }
    found
}

/// ffprobe reads every segment of `input` (an HLS playlist: a file, or a URL over HTTP) and
/// returns its packet count, or `None` when ffprobe is not installed. Any complaint fails.
pub(crate) fn ffprobe_packets(input: impl AsRef<std::ffi::OsStr>) -> Option<u64> {
    if !ffprobe_available() {
        return None;
    }
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-protocol_whitelist", "file,http,tcp"])
        .args(["-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(input)
        .output()
        .expect("run ffprobe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}\n{stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("nb_read_packets="))
        .and_then(|n| n.parse().ok())
}

#[test]
fn ffprobe_plays_an_archived_playlist_with_muted_segments() {
    if !ffprobe_available() {
        return;
    }
    let mut world = World::with_api(FAST, "");
    let start = now() - 900;
    // 8 segments of 4 s and a 2.5 s tail; segments 2 and 3 muted by the hourly pass.
    let mut b = Broadcast::new("gamma", 601, &start.to_string(), vec![1]);
    b.qualities = ["chunked", "480p30"].map(String::from).to_vec();
    b.segments = 9;
    b.segment_seconds = 4.0;
    b.total_seconds = 34.5;
    let muted = 2..4;
    b.muted.push(muted);
    let id = world.cdn.add_broadcast(b);
    world.cdn.mute(id);
    world
        .listing
        .set_streams(vec![stream(601, 61, "gamma", start, 100)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    let url = format!("{}/vods/601/{start}.m3u8", world.api_url());
    let deadline = Instant::now() + Duration::from_secs(30);
    let playlist = loop {
        if let Ok(mut r) = ureq::get(&url).call() {
            break r.body_mut().read_to_string().expect("playlist");
        }
        assert!(Instant::now() < deadline, "never captured: {}", world.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        playlist.contains("2-muted.ts") && !playlist.contains("unmuted"),
        "{playlist}"
    );

    // -count_packets makes ffprobe read every segment; any segment it cannot fetch or parse is
    // an error on stderr and a short packet count.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["format=duration,format_name:stream=codec_name,nb_read_packets"])
        .args(["-of", "default=noprint_wrappers=1", &url])
        .output()
        .expect("run ffprobe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}\n{stdout}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    assert_eq!(field("format_name"), "hls");
    assert_eq!(field("codec_name"), "mp2");
    let duration: f64 = field("duration").parse().expect("duration");
    assert!((duration - 34.5).abs() < 0.05, "duration {duration}\n{stdout}");
    // 34.5 s of 24 ms frames: every segment was read.
    let packets: u64 = field("nb_read_packets").parse().expect("packets");
    assert_eq!(packets, (34.5f64 / 0.024).ceil() as u64, "{stdout}");

    // Once the other quality is checked, the master playlist plays too.
    let master = format!("{}/vods/601/{start}/master.m3u8", world.api_url());
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&master)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .is_none_or(|text| !text.contains("480p30.m3u8"))
    {
        assert!(
            Instant::now() < deadline,
            "qualities never checked: {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:program=program_id",
        ])
        .args(["-of", "default=noprint_wrappers=1", &master])
        .output()
        .expect("run ffprobe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe: {stderr}"
    );
    // One program per variant, and the whole broadcast's duration.
    assert_eq!(stdout.matches("program_id=").count(), 2, "{stdout}");
    let duration: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {stdout}"));
    assert!((duration - 34.5).abs() < 0.05, "duration {duration}\n{stdout}");
}
