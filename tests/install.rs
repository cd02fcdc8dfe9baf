//! `scripts/install.sh` into a staging root: the files, their modes, the config's data
//! directory, a second run keeping the user's config, and the unit pointing at what was installed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn install(root: &Path) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg(repo.join("scripts/install.sh"))
        .arg("--root")
        .arg(root)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_vodprobe"))
        .output()
        .expect("run install.sh")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_stages_binary_config_and_hardened_unit_and_keeps_an_edited_config() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().expect("root");
    let out = install(root.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("is valid"),
        "the installed config is checked: {stdout}"
    );

    let binary = root.path().join("usr/local/bin/vodprobe");
    let config_dir = root.path().join("etc/vodprobe");
    let config = config_dir.join("config.toml");
    let unit = root.path().join("etc/systemd/system/vodprobe.service");
    assert_eq!(mode(&binary), 0o755);
    assert_eq!(mode(&config_dir), 0o750, "the config holds the admin token");
    assert_eq!(mode(&config), 0o640);
    assert!(config_dir.join("probes").is_dir());
    assert!(root.path().join("var/lib/vodprobe").is_dir());

    // The documented default, with only the data directory moved to the state directory.
    let installed = std::fs::read_to_string(&config).expect("config");
    let default = std::fs::read_to_string(repo.join("config.toml")).expect("default");
    let changed: Vec<(&str, &str)> = installed
        .lines()
        .zip(default.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [("data_dir = \"/var/lib/vodprobe\"", "data_dir = \"data\"")]
    );
    assert_eq!(installed.lines().count(), default.lines().count());

    // The unit runs what was installed, where it was installed, hardened.
    let text = std::fs::read_to_string(&unit).expect("unit");
    assert_eq!(
        text,
        std::fs::read_to_string(repo.join("deploy/vodprobe.service")).expect("deploy unit")
    );
    let exec = text
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert_eq!(
        exec,
        "/usr/local/bin/vodprobe serve --config /etc/vodprobe/config.toml"
    );
    for line in [
        "User=vodprobe",
        "StateDirectory=vodprobe",
        "WorkingDirectory=/var/lib/vodprobe",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "Restart=on-failure",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks {line}");
    }

    // A second run (an upgrade) replaces the binary and keeps the user's edits.
    let edited = installed.replace("admin_token = \"\"", "admin_token = \"kept\"");
    assert_ne!(edited, installed);
    std::fs::write(&config, &edited).expect("edit");
    std::fs::write(&binary, "old").expect("old binary");
    let out = install(root.path());
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept the existing"));
    assert_eq!(std::fs::read_to_string(&config).expect("config"), edited);
    assert_eq!(
        std::fs::read(&binary).expect("binary"),
        std::fs::read(env!("CARGO_BIN_EXE_vodprobe")).expect("built binary")
    );
    assert!(!root.path().join("usr/local/bin/vodprobe.new").exists());
}

#[test]
fn install_runs_from_an_unpacked_release_tarball() {
    // The layout scripts/build-static.sh packs: install.sh beside the binary, unit and config.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unpacked = tempfile::tempdir().expect("unpacked");
    for (from, to) in [
        (repo.join("scripts/install.sh"), "install.sh"),
        (repo.join("deploy/vodprobe.service"), "vodprobe.service"),
        (repo.join("config.toml"), "config.toml"),
        (env!("CARGO_BIN_EXE_vodprobe").into(), "vodprobe"),
    ] {
        std::fs::copy(&from, unpacked.path().join(to)).expect("copy");
    }
    let root = tempfile::tempdir().expect("root");
    let out = Command::new("bash")
        .arg(unpacked.path().join("install.sh"))
        .arg("--root")
        .arg(root.path())
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "{out:?}");
    assert!(root.path().join("usr/local/bin/vodprobe").is_file());
    assert!(root.path().join("etc/systemd/system/vodprobe.service").is_file());
    let config = std::fs::read_to_string(root.path().join("etc/vodprobe/config.toml")).expect("config");
    assert!(config.contains("data_dir = \"/var/lib/vodprobe\""));
}
