//! `vodprobe check-config`: exit 0 for a valid configuration, 1 naming file, line and key.

use crate::harness::{Env, run_in};

#[test]
fn valid_config_and_embedded_default() {
    let env = Env::healthy(2);
    let run = env.run(&["check-config"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 of 2 domains enabled"), "{run:?}");
    // Without a file the embedded default is used.
    let empty = tempfile::tempdir().expect("dir");
    let run = run_in(empty.path(), &["check-config"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("built-in default") && run.stdout.contains("15 of 15"),
        "{run:?}"
    );
}

#[test]
fn invalid_config_names_file_line_and_key() {
    let env = Env::healthy(1);
    let path = env.config_path();
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("request_timeout = \"1s\"", "request_timeout = \"1 s\"");
    std::fs::write(&path, text).expect("write");
    let run = env.run(&["check-config", "--config", path.to_str().expect("utf8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let expected = format!("{}:4: key `limits.request_timeout`", path.display());
    assert!(run.stderr.contains(&expected), "{run:?}");
    // The same configuration stops a lookup with exit 2 before anything is asked.
    let run = env.run(&[
        "lookup",
        "--streamer",
        "a",
        "--stream-id",
        "1",
        "--time",
        "1664038929",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(env.cdn.total_requests(), 0);
}

#[test]
fn missing_config_file_is_an_error() {
    let env = Env::healthy(1);
    let run = env.run(&["check-config", "--config", "nope.toml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot read nope.toml"), "{run:?}");
}

#[test]
fn probes_directory_beside_the_config_overrides_and_is_validated() {
    let env = Env::healthy(1);
    std::fs::create_dir(env.path("probes")).expect("mkdir");
    std::fs::write(env.path("probes/broken.toml"), "path = \"{nope}\"\n").expect("write");
    let run = env.run(&["check-config"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("probes/broken.toml"), "{run:?}");
    std::fs::remove_file(env.path("probes/broken.toml")).expect("rm");
    // A new module under a new name is usable by a domain.
    let module = vodprobe::config::EMBEDDED_PROBES[0].1;
    std::fs::write(env.path("probes/mirror.toml"), module).expect("write");
    let text = std::fs::read_to_string(env.config_path())
        .expect("read")
        .replace("\"twitch-vod\"", "\"mirror\"");
    std::fs::write(env.config_path(), text).expect("write");
    let run = env.run(&["check-config"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("mirror, twitch-vod"), "{run:?}");
}

#[test]
fn follows_and_rules_are_counted_and_their_mistakes_named() {
    let env = Env::healthy(1);
    let path = env.config_path();
    let good = std::fs::read_to_string(&path).expect("read");
    let text = format!(
        "{good}[[follow]]\nlogin = \"somechannel\"\n[[follow]]\nid = 42\n\
         [[rule]]\naction = \"skip\"\ntitle_words = [\"rerun\"]\n"
    );
    std::fs::write(&path, text).expect("write");
    let run = env.run(&["check-config"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 follows, 1 rules"), "{run:?}");

    let text =
        format!("{good}[[follow]]\nlogin = \"some channel\"\n[[rule]]\naction = \"drop\"\ngames = [\"x\"]\n");
    std::fs::write(&path, text).expect("write");
    let run = env.run(&["check-config"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("key `follow[0].login`"), "{run:?}");
    assert!(run.stderr.contains("key `rule[0].action`"), "{run:?}");
}
