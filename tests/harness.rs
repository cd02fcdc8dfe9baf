//! A small harness: a temp dir with a config pointing at a simulated CDN, and a way to run
//! the real binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vodprobe_sim::{DomainSpec, Fault, SimCdn};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub cdn: SimCdn,
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl Run {
    fn from(output: Output, elapsed: std::time::Duration) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    /// A simulated CDN with these domains and a config listing them in order.
    pub fn new(specs: Vec<DomainSpec>) -> Env {
        Env::with_limits(specs, "")
    }

    /// As `new`, with extra lines for the `[limits]` table.
    pub fn with_limits(specs: Vec<DomainSpec>, limits: &str) -> Env {
        let count = specs.len();
        let cdn = SimCdn::start(specs).expect("simulated CDN starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env { dir, cdn };
        let domains: Vec<String> = (0..count).map(|i| env.cdn.base_url(i)).collect();
        env.write_config(&domains, limits);
        env
    }

    pub fn healthy(count: usize) -> Env {
        Env::new((0..count).map(|_| DomainSpec::healthy()).collect())
    }

    pub fn write_config(&self, domains: &[String], limits: &str) {
        let mut text = format!(
            "data_dir = \"data\"\n[limits]\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\nlookup_requests_per_second = 200\n{limits}\n"
        );
        for url in domains {
            text.push_str(&format!(
                "\n[[domain]]\nurl = \"{url}\"\nprobe = \"twitch-vod\"\n"
            ));
        }
        std::fs::write(self.config_path(), text).expect("write config");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `vodprobe ARGS` in the temp dir (so `./config.toml` is found without `--config`).
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.dir.path(), args)
    }

    /// Every request path on every domain, asserting none was asked twice.
    pub fn assert_no_request_twice(&self, domains: usize) {
        for domain in 0..domains {
            let paths = self.cdn.requests(domain);
            let unique: std::collections::HashSet<&String> = paths.iter().collect();
            assert_eq!(
                unique.len(),
                paths.len(),
                "domain {domain} asked twice for a path: {paths:?}"
            );
        }
    }
}

pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_vodprobe"))
        .args(args)
        .current_dir(dir)
        .env("VODPROBE_LOG", "warn")
        .output()
        .expect("run vodprobe");
    Run::from(output, started.elapsed())
}

pub fn faulty(fault: Fault) -> DomainSpec {
    DomainSpec {
        prefix: String::new(),
        fault,
    }
}
