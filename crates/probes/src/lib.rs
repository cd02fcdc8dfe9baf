//! Probe modules: how a broadcast's playlist URL is built on a CDN, and in which order to try
//! the candidate URLs so that the expected number of requests to a hit is smallest.
//!
//! A probe module is data (`probes/*.toml`), not code, so that a new URL scheme is a new file
//! rather than a rebuild. This crate is pure: it parses and validates modules, renders paths and
//! plans searches; it never touches the network, the clock or a log. The appliance's edges feed
//! it what they observed (domain health, learned forms) as weights.

mod module;
mod plan;

pub use module::{AnswerRule, FormRule, HashRule, ProbeModule, ProbeModuleError, TimestampForm};
pub use plan::{Candidate, DomainPlan, TimeGuess, plan};
