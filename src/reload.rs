//! Following the configuration on disk: the only module that knows notify.
//!
//! Editors save in many ways: write in place, write a temporary file and rename it over the old
//! one (vim, `sed -i`), delete and recreate, several writes in a burst. A watch on the file
//! itself is lost at the first rename, so the *directories* are watched — the config file's and
//! `probes/` inside it — and events are filtered by name. A burst is debounced: a change is
//! reported once nothing has moved for [`QUIET`], or [`MAX_DELAY`] after its first event at the
//! latest. Where inotify cannot be used (out of watches, a filesystem without it) the watch
//! falls back to polling the directories every [`POLL_INTERVAL`].
//!
//! This module only says "something changed"; reading, validating and applying the files is
//! the caller's business.

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A change is reported once the files have been still for this long...
pub const QUIET: Duration = Duration::from_millis(150);
/// ...or this long after the first event of a burst that does not stop.
pub const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often the fallback scans the directories.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {message}")]
    Watch { path: PathBuf, message: String },
}

/// Which files count: the config file and `probes/*.toml`.
#[derive(Clone)]
struct Filter {
    dir: PathBuf,
    file_name: std::ffi::OsString,
    probes_dir: PathBuf,
}

impl Filter {
    fn matches(&self, path: &Path) -> bool {
        if path == self.probes_dir {
            return true;
        }
        match path.parent() {
            Some(parent) if parent == self.dir => path.file_name() == Some(self.file_name.as_os_str()),
            Some(parent) if parent == self.probes_dir => path.extension().is_some_and(|ext| ext == "toml"),
            _ => false,
        }
    }

    fn relevant(&self, event: &notify::Event) -> bool {
        // Opening or reading a file (our own reloads do both) changes nothing.
        let changes_content = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        changes_content && event.paths.iter().any(|path| self.matches(path))
    }
}

/// A running watch on a config file and its `probes/` directory.
pub struct ConfigWatch {
    watcher: Box<dyn Watcher + Send>,
    changed: Arc<Notify>,
    probes_dir: PathBuf,
    polling: bool,
}

impl ConfigWatch {
    /// Starts watching `config_file`'s directory (which must exist; the file need not).
    pub fn start(config_file: &Path) -> Result<ConfigWatch, WatchError> {
        let parent = crate::config::base_dir_of(Some(config_file));
        let dir = std::fs::canonicalize(&parent).map_err(|error| WatchError::Watch {
            path: parent.clone(),
            message: error.to_string(),
        })?;
        let file_name = config_file
            .file_name()
            .ok_or_else(|| WatchError::Watch {
                path: config_file.to_path_buf(),
                message: "not a file name".to_string(),
            })?
            .to_os_string();
        let filter = Filter {
            probes_dir: dir.join("probes"),
            dir: dir.clone(),
            file_name,
        };
        let changed = Arc::new(Notify::new());
        let handler = {
            let filter = filter.clone();
            let changed = changed.clone();
            move |event: notify::Result<notify::Event>| match event {
                Ok(event) if filter.relevant(&event) => changed.notify_one(),
                Ok(_) => {}
                // A lost event (queue overflow) may have been an edit: look again.
                Err(_) => changed.notify_one(),
            }
        };
        let watch_dir = |watcher: &mut dyn Watcher| {
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|error| WatchError::Watch {
                    path: dir.clone(),
                    message: error.to_string(),
                })
        };
        let native = RecommendedWatcher::new(handler.clone(), notify::Config::default())
            .ok()
            .and_then(|mut watcher| watch_dir(&mut watcher).ok().map(|()| watcher));
        let (mut watcher, polling): (Box<dyn Watcher + Send>, bool) = match native {
            Some(watcher) => (Box::new(watcher), false),
            None => {
                let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
                let mut watcher = PollWatcher::new(handler, config).map_err(|error| WatchError::Watch {
                    path: dir.clone(),
                    message: error.to_string(),
                })?;
                watch_dir(&mut watcher)?;
                (Box::new(watcher), true)
            }
        };
        // `probes/` may not exist yet; it is watched once it does (see `changed`).
        let _ = watcher.watch(&filter.probes_dir, RecursiveMode::NonRecursive);
        Ok(ConfigWatch {
            watcher,
            changed,
            probes_dir: filter.probes_dir,
            polling,
        })
    }

    /// Whether the watch fell back to polling.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// Waits for the next change to settle (see the module notes).
    pub async fn changed(&mut self) {
        self.changed.notified().await;
        let first = Instant::now();
        loop {
            let deadline = (Instant::now() + QUIET).min(first + MAX_DELAY);
            if tokio::time::timeout_at(deadline, self.changed.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        // `probes/` may have been created, or deleted and recreated (which drops its watch).
        if self.probes_dir.is_dir() {
            let _ = self.watcher.watch(&self.probes_dir, RecursiveMode::NonRecursive);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        Filter {
            dir: PathBuf::from("/etc/vodprobe"),
            file_name: "config.toml".into(),
            probes_dir: PathBuf::from("/etc/vodprobe/probes"),
        }
    }

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_the_config_file_and_probe_modules_count() {
        let filter = filter();
        let modify = EventKind::Modify(notify::event::ModifyKind::Any);
        assert!(filter.relevant(&event(modify, "/etc/vodprobe/config.toml")));
        assert!(filter.relevant(&event(modify, "/etc/vodprobe/probes/new.toml")));
        assert!(filter.relevant(&event(
            EventKind::Create(notify::event::CreateKind::Folder),
            "/etc/vodprobe/probes"
        )));
        assert!(!filter.relevant(&event(modify, "/etc/vodprobe/config.toml.swp")));
        assert!(!filter.relevant(&event(modify, "/etc/vodprobe/vodprobe.redb")));
        assert!(!filter.relevant(&event(modify, "/etc/vodprobe/probes/notes.txt")));
        assert!(!filter.relevant(&event(modify, "/etc/other/config.toml")));
    }

    #[test]
    fn reading_the_file_is_not_a_change_but_closing_it_after_writing_is() {
        let filter = filter();
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(!filter.relevant(&event(open, "/etc/vodprobe/config.toml")));
        assert!(!filter.relevant(&event(read, "/etc/vodprobe/config.toml")));
        assert!(filter.relevant(&event(written, "/etc/vodprobe/config.toml")));
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_reported_once_after_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "a").unwrap();
        let mut watch = ConfigWatch::start(&file).unwrap();
        assert!(!watch.polling());
        let started = std::time::Instant::now();
        for part in ["# one\n", "# two\n", "# three\n"] {
            std::fs::write(&file, part).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watch.changed().await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(40) + QUIET,
            "reported mid-burst after {waited:?}"
        );
        // Nothing more is pending: the burst was one change.
        let again = tokio::time::timeout(Duration::from_millis(400), watch.changed()).await;
        assert!(again.is_err(), "the burst was reported twice");
    }

    #[tokio::test]
    async fn a_rename_over_the_file_and_a_new_probes_directory_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "a").unwrap();
        let mut watch = ConfigWatch::start(&file).unwrap();
        let temp = dir.path().join(".config.toml.tmp");
        std::fs::write(&temp, "b").unwrap();
        std::fs::rename(&temp, &file).unwrap();
        tokio::time::timeout(Duration::from_secs(3), watch.changed())
            .await
            .expect("rename seen");
        std::fs::create_dir(dir.path().join("probes")).unwrap();
        tokio::time::timeout(Duration::from_secs(3), watch.changed())
            .await
            .expect("probes/ created");
        std::fs::write(dir.path().join("probes/extra.toml"), "x").unwrap();
        tokio::time::timeout(Duration::from_secs(3), watch.changed())
            .await
            .expect("a module in the new probes/ seen");
        std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
        let unrelated = tokio::time::timeout(Duration::from_millis(400), watch.changed()).await;
        assert!(unrelated.is_err(), "an unrelated file counted as a change");
    }
}
