//! Stable fuzzing, run by `cargo test`: every target of `vodprobe::fuzz` over its seeds
//! (`fuzz/seeds/<target>/`, plus the default config and probe module), every input that once
//! crashed it (`fuzz/regressions/<target>/`), and random mutations of them for a bounded time
//! (`VODPROBE_FUZZ_SECONDS` per target, default 2; `VODPROBE_FUZZ_SEED` repeats a run).
//! Without coverage feedback this finds less than `scripts/fuzz` (cargo-fuzz on nightly), but
//! it needs no nightly and runs the regressions on every test run.
//!
//! A failing input is written to `target/fuzz-failures/<target>-<hash>`; copy it into
//! `fuzz/regressions/<target>/` with the fix.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vodprobe::fuzz::TARGETS;

/// Tokens the targets' formats are made of, spliced in by the mutator.
const TOKENS: &[&str] = &[
    "#EXTM3U",
    "#EXTINF:",
    "#EXT-X-",
    "TARGETDURATION:",
    "MAP:URI=\"",
    "-muted",
    ".ts",
    "\r\n",
    "\n",
    "#",
    ",",
    ":",
    "=",
    "\"",
    "null",
    "true",
    "false",
    "[",
    "]",
    "{",
    "}",
    "{}",
    "[]",
    "\"data\":",
    "\"edges\":",
    "\"node\":",
    "\"users\":",
    "\"stream\":",
    "\"seekPreviewsURL\":",
    "\"stream_id\":",
    "_404/404_processing_",
    "gql 1,2\n",
    "helix 1,2\n",
    "&",
    "%",
    "%C3",
    "%00",
    "cursor=",
    "limit=",
    "since=",
    "sort=views",
    "q=",
    "[[domain]]",
    "[limits]",
    "[api]",
    "d",
    "h",
    "ms",
    "T",
    "Z",
    "+02:00",
    "-",
    ".",
    "0",
    "9999999999999999999999",
    "-1",
    "1e309",
    "NaN",
    "\u{feff}",
    "\u{1F600}",
    "\\u0000",
    "~~~~",
    "..",
    "/",
];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).expect("read a seed"))
        .collect()
}

/// The seeds of `target`: its directory, and inputs other targets' seeds make.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut seeds = files_in(&repo().join("fuzz/seeds").join(target));
    match target {
        "config" => {
            let config = std::fs::read(repo().join("config.toml")).expect("config.toml");
            let probe = std::fs::read(repo().join("probes/twitch-vod.toml")).expect("probe");
            let mut both = seeds.first().cloned().unwrap_or_default();
            both.push(0);
            both.extend_from_slice(&probe);
            seeds.extend([config, both]);
        }
        // Stored values: what the encoder writes for the playlist seeds.
        "stored" => {
            for playlist in files_in(&repo().join("fuzz/seeds/playlist")) {
                if let Ok(text) = std::str::from_utf8(&playlist) {
                    seeds.push(vodprobe::packed::pack(text));
                }
            }
        }
        _ => {}
    }
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = b"\0\xff\n\r#\":,{}[]0-9.%&=\\"[rng.below(20)];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = input[at..end].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let end = (from + 1 + rng.below(128)).min(other.len());
                    let to = rng.below(len + 1);
                    input.splice(to..to, other[from..end].iter().copied());
                }
            }
            5 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let to = rng.below(len + 1);
                input.splice(to..to, token.iter().copied());
            }
        }
    }
    // Long inputs only slow the run down; the formats' interesting parts are short.
    input.truncate(64 * 1024);
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).expect("failure dir");
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{hash:016x}"));
    std::fs::write(&path, input).expect("write the failing input");
    path
}

fn run_target(name: &str) {
    let check = TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, check)| *check)
        .expect("a fuzz target");
    let run = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            let path = save_failure(name, input);
            panic!(
                "fuzz target {name} failed on {} bytes, saved as {} ({:?})",
                input.len(),
                path.display(),
                String::from_utf8_lossy(&input[..input.len().min(200)])
            );
        }
    };
    let regressions = files_in(&repo().join("fuzz/regressions").join(name));
    for input in &regressions {
        run(input);
    }
    let mut corpus = seeds(name);
    for input in &corpus {
        run(input);
    }
    let seconds: f64 = std::env::var("VODPROBE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let seed = std::env::var("VODPROBE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut executions = 0u64;
    while Instant::now() < deadline {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut input, &corpus, &mut rng);
        run(&input);
        executions += 1;
        // Keep some mutants so that mutations stack up over the run.
        if rng.below(8) == 0 {
            if corpus.len() < 512 {
                corpus.push(input);
            } else {
                let at = rng.below(corpus.len());
                corpus[at] = input;
            }
        }
    }
    eprintln!(
        "fuzz {name}: {} regressions, {executions} mutated inputs in {seconds} s (VODPROBE_FUZZ_SEED={seed})",
        regressions.len()
    );
}

#[test]
fn fuzz_playlist() {
    run_target("playlist");
}

#[test]
fn fuzz_stored() {
    run_target("stored");
}

#[test]
fn fuzz_config() {
    run_target("config");
}

#[test]
fn fuzz_times() {
    run_target("times");
}

#[test]
fn fuzz_listing() {
    run_target("listing");
}

#[test]
fn fuzz_confirm() {
    run_target("confirm");
}

#[test]
fn fuzz_videos() {
    run_target("videos");
}

#[test]
fn fuzz_query() {
    run_target("query");
}

#[test]
fn every_target_has_a_test_here_and_a_cargo_fuzz_target() {
    for (name, _) in TARGETS {
        let source = include_str!("fuzz.rs");
        assert!(
            source.contains(&format!("run_target(\"{name}\")")),
            "no test for {name}"
        );
        let target = repo().join("fuzz/fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "no cargo-fuzz target {}", target.display());
    }
}
