//! Simulated Twitch services on loopback, for `vodprobe demo` and vodprobe's tests and
//! benchmarks.
//!
//! A crate of its own, and one that does not depend on vodprobe: it is written from what
//! Twitch does, not from the client, so that it can be an oracle for the client. vodprobe takes
//! it as a dev-dependency, and as an optional dependency (feature `demo`) for its `demo`
//! command; it is never part of vodprobe's library API.
//!
//! [`SimCdn`] behaves like Twitch's VOD CDN, faults included: each "domain" is its own
//! listener on `127.0.0.1:0` (optionally under a path prefix), holds copies of the broadcasts
//! added to it, computes their paths with the public sha1 rule independently of the prober
//! (so it is an oracle for it), serves EVENT playlists and placeholder segments, and applies
//! Twitch's lifecycle on demand: muting pass, growth while live, end, per-domain deletion.
//! Faults ([`Fault`]) are per domain and switchable at run time; every request is logged per
//! domain before the fault acts, so tests can assert on exactly what a client asked for.
//!
//! [`http`] is the tiny std-only HTTP/1.1 server underneath (thread per connection,
//! keep-alive, streamed bodies, hold/reset replies); the other simulators reuse it with their
//! own [`http::Handler`].
//!
//! [`SimListing`] is the live listing (GQL, Helix and the app-token endpoint on one listener):
//! the world driver sets which streams are live; pages, cursors, auth, rate limits and faults
//! behave like Twitch's.
//!
//! [`World`] is the world driver: a seeded population of channels whose broadcasts start,
//! restart, end, get muted and deleted over simulated time, driving both simulators.

pub mod cdn;
pub mod http;
pub mod listing;
mod media;
pub mod world;

pub use cdn::{
    Broadcast, BroadcastId, Container, DomainSpec, Expiry, Fault, LoggedRequest, Retention, Segments, SimCdn,
    UNMUTED_GRACE_SECS, segment_bytes, vod_dir,
};
pub use listing::{
    ListingFault, LiveStream, MutedStretch, PROCESSING_PERIOD, PROCESSING_THUMBNAIL, PUBLIC_CLIENT_IDS,
    SIM_CLIENT_ID, SimListing, SimVideo, WEB_CLIENT_ID,
};
pub use world::{Outage, RETENTION_SHARES, Rng, TruthBroadcast, WEEK_RECORDABLE_PER_DAY, World, WorldSpec};
