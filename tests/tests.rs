//! Integration tests: the real `vodprobe` binary against the simulated Twitch CDN over real
//! HTTP on loopback. One test binary (fast to link); a module per command.

mod harness;

mod api;
mod audio;
mod check_config;
mod compact;
mod confirm;
mod discover;
mod disk;
mod domains;
mod editors;
mod events;
mod faults;
mod feeds;
mod follow;
mod fuzz;
mod hints;
mod hostile;
mod install;
mod listing;
mod lookup;
mod notify;
mod openapi;
mod outage;
mod player;
mod rebuild;
mod reload;
mod segments;
mod serve;
mod status;
mod survival;
mod web;
