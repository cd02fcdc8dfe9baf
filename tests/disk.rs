//! A full disk: `serve` with its data directory on a small tmpfs that another writer fills.
//! The appliance must keep serving what it holds, say so in `/healthz` and the log, lose no
//! committed record, and carry on when space returns. Mounting a tmpfs needs root; without it
//! the test says "SKIPPED" (and fails when `VODPROBE_REQUIRE_TMPFS=1`, as in CI).

use crate::api::get;
use crate::serve::{FAST, World, find, now, stream};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vodprobe_sim::{Broadcast, DomainSpec};

/// A tmpfs mounted for the test, unmounted (lazily: serve may still hold it) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, bytes: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes into `path` until the file system refuses; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    written
}

fn found(base: &str) -> usize {
    get(&format!("{base}/api/v1/vods?status=found&limit=100")).json()["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn a_full_disk_keeps_reads_loses_nothing_and_recovers() {
    // A compaction is attempted every second: on a disk without room for its copy it must
    // step aside and change nothing.
    let mut world = World::configured(
        (0..3).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        "kind = \"gql\"",
        "health = \"0 0 * * * *\"\ncompact = \"* * * * * *\"",
        "requests_per_second = 50\ncompact_waste = 0.0",
    );
    let data = world.dir.path().join("data");
    let Some(_tmpfs) = Tmpfs::mount(&data, 16 << 20) else {
        assert!(
            std::env::var_os("VODPROBE_REQUIRE_TMPFS").is_none(),
            "cannot mount a tmpfs (needs root) and VODPROBE_REQUIRE_TMPFS is set"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let start = now() - 900;
    let broadcast = |world: &World, n: u64| {
        let login = format!("disk{n}");
        let started = start + n as i64 * 30;
        world
            .cdn
            .add_broadcast(Broadcast::new(&login, 900 + n, &started.to_string(), vec![0]));
        stream(900 + n, 90 + n, &login, started, 100)
    };
    // Three broadcasts captured while there is room.
    let first: Vec<_> = (0..3).map(|n| broadcast(&world, n)).collect();
    world.listing.set_streams(first);
    world.start(&[]);
    let base = world.api_url();
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    world.wait_until("three captures", 30, |_| found(&base) == 3);
    // Their segment checks done, so the list stays as it is while the disk is full.
    world.wait_until("three segment checks", 30, |_| {
        let list = get(&format!("{base}/api/v1/vods?status=found&segments_state=ok")).json();
        list["items"].as_array().map_or(0, Vec::len) == 3
    });
    let before = get(&format!("{base}/api/v1/vods?status=found&limit=100")).json();

    // Three more go live and are seen; then another writer fills the disk and they end.
    let second: Vec<_> = (3..6).map(|n| broadcast(&world, n)).collect();
    world.listing.set_streams(second);
    world.wait_until("the new streams tracked", 20, |_| {
        get(&format!("{base}/api/v1/vods?streamer=disk5")).json()["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    });
    let filler = data.join("filler");
    let filled = fill(&filler);
    // They end; a crowd of new streams makes the store grow past the space it holds.
    let crowd: Vec<_> = (0..400u64)
        .map(|n| {
            let mut live = stream(50_000 + n, 5_000 + n, &format!("crowd{n}"), now() - 60, 10);
            live.title = format!("{} {}", live.title, "x".repeat(120));
            live
        })
        .collect();
    world.listing.set_streams(crowd.clone());
    let full_since = Instant::now();
    world.wait_until("the store reporting the full disk", 30, |_| {
        let health = get(&format!("{base}/healthz")).json();
        health["status"] == "degraded" && health["store"]["ok"] == false
    });
    let health = get(&format!("{base}/healthz")).json();
    let message = health["store"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Reads go on: the captured three and their playlists are served.
    let during = get(&format!("{base}/api/v1/vods?status=found&limit=100")).json();
    assert_eq!(during["items"], before["items"]);
    for item in before["items"].as_array().expect("items") {
        let url = format!("{base}{}", item["playlist_url"].as_str().expect("url"));
        assert_eq!(get(&url).status, 200, "{url}");
    }
    assert!(world.log().contains("No space left"), "{}", world.log());
    world.wait_until("a compaction refused for want of space", 10, |w| {
        w.log().contains("compaction did not run: it needs about")
    });

    // Space returns: the three that ended meanwhile are captured, the crowd is tracked,
    // nothing is lost.
    std::fs::remove_file(&filler).expect("free the space");
    let freed = Instant::now();
    world.wait_until("the captures after space returned", 60, |_| found(&base) == 6);
    let recovered_after = freed.elapsed();
    world.wait_until("the store healthy again", 30, |_| {
        get(&format!("{base}/healthz")).json()["store"]["ok"] == true
    });
    world.wait_until("the crowd tracked", 30, |_| {
        get(&format!("{base}/api/v1/streamers?q=crowd399")).json()["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    });
    world.stop();
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .expect("data dir")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().contains("compact"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let records = world.records();
    for n in 0..6 {
        let held = find(&records, 900 + n);
        assert_eq!(held.len(), 1, "broadcast {n}: {held:?}");
        assert!(held[0].archive.is_some(), "broadcast {n} has no archive");
        assert!(
            world.playlist(held[0]).is_some(),
            "broadcast {n} lost its playlist"
        );
    }
    eprintln!(
        "full disk: filler {} KiB; degraded after {:?} ({message}); all six captured {recovered_after:?} after space returned",
        filled / 1024,
        full_since.elapsed()
    );
}
