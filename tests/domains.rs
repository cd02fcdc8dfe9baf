//! `vodprobe domains`: one line per domain with status, latency and the reason for a failure.

use crate::harness::{Env, faulty};
use vodprobe_sim::{DomainSpec, Fault};

#[test]
fn table_shows_healthy_and_failing_domains() {
    let env = Env::new(vec![
        DomainSpec::healthy(),
        faulty(Fault::Unavailable),
        faulty(Fault::Blackhole),
    ]);
    let run = env.run(&["domains"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{run:?}");
    assert!(lines[0].starts_with("DOMAIN"));
    assert!(
        lines[1].contains(&env.cdn.base_url(0)) && lines[1].contains(" ok "),
        "{run:?}"
    );
    assert!(
        lines[2].contains("FAILED") && lines[2].contains("HTTP 503"),
        "{run:?}"
    );
    assert!(
        lines[3].contains("FAILED") && lines[3].contains("timed out"),
        "{run:?}"
    );
    // The blackhole costs one timeout (1 s here), checked concurrently with the others.
    assert!(run.elapsed.as_secs_f64() < 5.0, "{run:?}");
}

#[test]
fn all_healthy_exits_zero() {
    let env = Env::healthy(3);
    let run = env.run(&["domains"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.matches(" ok ").count(), 3, "{run:?}");
}
