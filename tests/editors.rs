//! Saving a file the ways editors do, for the live-configuration tests and the reload
//! benchmark (which includes this file).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How a test saves the file: the ways editors and people do.
#[derive(Clone, Copy, Debug)]
pub enum Save {
    /// Truncate and write the same file (most editors, `>` in a shell).
    InPlace,
    /// Write a temporary file beside it and rename it over (vim, atomic savers).
    Rename,
    /// `sed -i` with a substitution (GNU sed writes a temporary file and renames it).
    Sed,
    /// Delete, then create anew.
    Recreate,
    /// Several partial writes in a row, as a slow editor or a script appending line by line.
    Burst,
}

pub const STYLES: [Save; 5] = [
    Save::InPlace,
    Save::Rename,
    Save::Sed,
    Save::Recreate,
    Save::Burst,
];

/// Saves `new` over `path` (whose content is `old`) in `style`.
pub fn save(path: &Path, old: &str, new: &str, style: Save) {
    match style {
        Save::InPlace => std::fs::write(path, new).expect("write"),
        Save::Rename => {
            let temp = path.with_file_name(".config.toml.swp");
            std::fs::write(&temp, new).expect("write temp");
            std::fs::rename(&temp, path).expect("rename");
        }
        Save::Sed => {
            // One sed substitution per changed line.
            let mut script = String::new();
            for (before, after) in old.lines().zip(new.lines()) {
                if before != after {
                    script.push_str(&format!("s|^{}$|{}|;", sed_escape(before), sed_escape(after)));
                }
            }
            assert_eq!(
                old.lines().count(),
                new.lines().count(),
                "sed edits change lines only"
            );
            let status = std::process::Command::new("sed")
                .arg("-i")
                .arg(&script)
                .arg(path)
                .status()
                .expect("sed runs");
            assert!(status.success());
            assert_eq!(
                std::fs::read_to_string(path).expect("read"),
                new,
                "sed script {script}"
            );
        }
        Save::Recreate => {
            std::fs::remove_file(path).expect("delete");
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(path, new).expect("create");
        }
        Save::Burst => {
            let mut file = std::fs::File::create(path).expect("truncate");
            let bytes = new.as_bytes();
            let third = bytes.len() / 3;
            for part in [&bytes[..third], &bytes[third..2 * third], &bytes[2 * third..]] {
                file.write_all(part).expect("write part");
                file.flush().expect("flush");
                std::thread::sleep(Duration::from_millis(30));
            }
        }
    }
}

fn sed_escape(line: &str) -> String {
    let mut escaped = String::new();
    for c in line.chars() {
        if matches!(c, '\\' | '|' | '.' | '*' | '[' | ']' | '^' | '$' | '&') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
