//! Comparing two configurations, for a reload: what changed (for the log), which changed keys
//! only take effect after a restart, and the new configuration with those kept as running.
//!
//! Kept apart from loading: it compares two validated configurations and never sees text.

use std::path::Path;

use super::Config;

impl Config {
    /// Keys read only at start-up whose value differs in `new`: (key, running, new).
    pub fn restart_only_changes(&self, new: &Config) -> Vec<(&'static str, String, String)> {
        let mut changes = Vec::new();
        if self.api.listen != new.api.listen {
            changes.push((
                "api.listen",
                self.api.listen.to_string(),
                new.api.listen.to_string(),
            ));
        }
        if self.data_dir != new.data_dir {
            let show = |dir: &Path| dir.display().to_string();
            changes.push(("data_dir", show(&self.data_dir), show(&new.data_dir)));
        }
        if self.limits.cache_bytes != new.limits.cache_bytes {
            changes.push((
                "limits.cache_bytes",
                self.limits.cache_bytes.to_string(),
                new.limits.cache_bytes.to_string(),
            ));
        }
        changes
    }

    /// `new` with this configuration's start-up-only keys, which a running appliance keeps.
    pub fn keeping_restart_only(&self, mut new: Config) -> Config {
        new.api.listen = self.api.listen;
        new.data_dir = self.data_dir.clone();
        new.limits.cache_bytes = self.limits.cache_bytes;
        new
    }

    /// What differs in `new`, by table and domain, for the log. Values are left out: some are
    /// secrets (`api.admin_token`, `source.client_secret`).
    pub fn changes(&self, new: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let mut table = |name: &str, same: bool| {
            if !same {
                changes.push(format!("[{name}]"));
            }
        };
        table("api", self.api == new.api);
        table("source", self.source == new.source);
        table("schedule", self.schedule == new.schedule);
        table("pipeline", self.pipeline == new.pipeline);
        table("limits", self.limits == new.limits);
        table("follow", self.follows == new.follows);
        table("rule", self.rules == new.rules);
        table("notify", self.notify == new.notify);
        for domain in &new.domains {
            match self.domains.iter().find(|d| d.url == domain.url) {
                None => changes.push(format!("domain {} added", domain.url)),
                Some(old) if old != domain => changes.push(format!("domain {} changed", domain.url)),
                Some(_) => {}
            }
        }
        for domain in &self.domains {
            if !new.domains.iter().any(|d| d.url == domain.url) {
                changes.push(format!("domain {} removed", domain.url));
            }
        }
        for (name, module) in &new.probes {
            match self.probes.get(name) {
                None => changes.push(format!("probe module {name} added")),
                Some(old) if old != module => changes.push(format!("probe module {name} changed")),
                Some(_) => {}
            }
        }
        for name in self.probes.keys() {
            if !new.probes.contains_key(name) {
                changes.push(format!("probe module {name} removed"));
            }
        }
        if self.file != new.file {
            changes.push("file".to_string());
        }
        changes
    }
}
