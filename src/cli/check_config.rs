//! `vodprobe check-config`: validate config.toml and probes/*.toml, exit 0 or explain.

use super::{ConfigArg, Exit, print_config_error};
use vodprobe::config;

pub fn run(args: ConfigArg) -> Exit {
    let file = config::resolve_path(args.config.as_deref());
    match config::load(args.config.as_deref()) {
        Ok(config) => {
            let source = file.map_or_else(
                || "the built-in default configuration".to_string(),
                |p| p.display().to_string(),
            );
            let enabled = config.domains.iter().filter(|d| d.enabled).count();
            let modules: Vec<&str> = config.probes.keys().map(String::as_str).collect();
            println!(
                "ok: {source} is valid: {enabled} of {} domains enabled, probe modules: {}",
                config.domains.len(),
                modules.join(", ")
            );
            let scope = match config.source.scope {
                config::Scope::All => "the listing's crawl and the follows",
                config::Scope::Followed => "only the follows",
            };
            println!(
                "watching {scope}: {} follows, {} rules",
                config.follows.len(),
                config.rules.len()
            );
            if enabled == 0 {
                println!("note: no domain is enabled, so nothing will be probed");
            }
            Exit::Success
        }
        Err(error) => {
            print_config_error(&error);
            Exit::No
        }
    }
}
