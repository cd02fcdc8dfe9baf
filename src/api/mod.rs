//! The HTTP API: JSON lists, playable playlists, health, metrics and admin routes. This is the
//! only module that knows warp and hyper.
//!
//! * `server` — our own accept loop around warp's filter: a cap on open connections, a
//!   header-read timeout, an idle timeout, a cap on requests in flight (503 + `Retry-After`
//!   beyond it, at once), CORS, per-route metrics, graceful shutdown with a deadline. warp 0.4
//!   has none of these itself.
//! * `routes` — warp filters and the one rejection handler that writes the error envelope.
//! * `handlers` — what each route does, on plain types; `params` — query parsing and cursors;
//!   `dto` — the JSON shapes, converted from store records at the edge; `readers` — the fixed
//!   threads that run store reads and playlist rendering; `cache` — list answers kept while
//!   the store is unchanged.
//! * `feed` — the Atom and M3U model and rendering (pure); `feeds` — the feed routes: captures
//!   as Atom and M3U with absolute links, `ETag`/`Last-Modified` and 304s.
//! * `web` — the web page at `/`: files from `web/` embedded in the binary, served with ETags,
//!   gzip and a strict Content-Security-Policy.
//!
//! The API sees the rest of the appliance through [`Backend`], which the daemon implements, so
//! nothing here depends on the pipeline.

mod cache;
mod dto;
mod event_feeds;
mod events;
mod feed;
mod feeds;
mod handlers;
mod params;
mod readers;
mod routes;
mod server;
mod status;
mod web;

pub use dto::{ComponentStatus, DomainStatus, Health, LookupState, NotifyHealth, rfc3339};
pub use events::EventItem;
pub use handlers::ApiError;
#[doc(hidden)]
pub use handlers::check_query;
pub use server::{ServerSettings, serve};

use crate::metrics::Metrics;
use crate::store::{Counts, Store};
use std::sync::Arc;

/// An admin lookup as posted.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupInput {
    pub streamer: String,
    pub stream_id: String,
    pub time: String,
}

/// What the API needs from the running appliance.
pub trait Backend: Send + Sync + 'static {
    /// The current store handle (it changes after a reopen).
    fn store(&self) -> Arc<Store>;
    /// Unix seconds on the appliance's clock.
    fn now(&self) -> i64;
    /// The admin bearer token; empty turns the admin routes off.
    fn admin_token(&self) -> String;
    /// `Access-Control-Allow-Origin`; empty: no CORS headers.
    fn cors_origin(&self) -> String;
    fn domains(&self) -> Vec<DomainStatus>;
    fn health(&self) -> Health;
    /// The last computed counts (refreshed on a schedule) and when they were computed.
    fn counts(&self) -> Option<(Counts, i64)>;
    fn metrics(&self) -> Arc<Metrics>;
    /// Refreshes the gauges that are sampled rather than counted (queue depth, store size).
    fn sample_metrics(&self);
    /// Starts a lookup through the pipeline's prober and budget; returns its id.
    fn start_lookup(&self, input: LookupInput) -> Result<u64, ApiError>;
    fn lookup(&self, id: u64) -> Option<LookupState>;
    /// Queues the not-found broadcasts that started in `[since, until)` for one more probe.
    fn requeue(&self, since: i64, until: i64) -> Result<u64, ApiError>;
    /// The followed channels' ids in force (sorted), for `followed` in lists.
    fn followed(&self) -> Vec<u64>;
    /// The last day's five-minute buckets for the status page, sampled now. Blocking.
    fn status_series(&self) -> Vec<crate::series::Bucket>;
}
