//! `vodprobe compact`: rewrite the database compactly while `serve` is stopped.

use super::{ConfigArg, Exit, load_config};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use vodprobe::daemon::database_path;
use vodprobe::store::{CompactError, OpenError, compact_file};

pub fn run(args: ConfigArg) -> Exit {
    let Some(config) = load_config(args.config.as_deref()) else {
        return Exit::Error;
    };
    let path = database_path(&config);
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut progress = |table: &str, done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(table.to_string());
    };
    let result = compact_file(&path, config.limits.cache_bytes, &mut progress);
    bar.finish_and_clear();
    match result {
        Ok(done) => {
            let size = |bytes: u64| match bytes {
                0..1_048_576 => format!("{:.0} KiB", bytes as f64 / 1024.0),
                _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
            };
            let records = done
                .tables
                .iter()
                .find(|(name, _)| name.starts_with("streams"))
                .map_or(0, |(_, entries)| *entries);
            println!(
                "compacted {}: {} -> {} on disk ({} records, {} re-encoded)",
                path.display(),
                size(done.bytes_before),
                size(done.bytes_after),
                records,
                done.records_recoded
            );
            Exit::Success
        }
        Err(error @ CompactError::Open(OpenError::AlreadyOpen { .. })) => {
            eprintln!(
                "error: {error}\nhint: stop `vodprobe serve` first; compaction needs the file to itself"
            );
            Exit::Error
        }
        Err(error) => {
            eprintln!("error: {error}\nThe database was not changed.");
            Exit::Error
        }
    }
}
