//! The video-list re-read: from the crawl's tick, at most one captured channel's video list
//! per `source.reread_videos_every`, each channel at most every `source.reread_channel_after`,
//! the channels with the newest captures (of the last [`visibility::WATCH_DAYS`]) first. What
//! the list says (`visibility::changes`) marks captures no longer public, with their
//! `sub_only` / `deleted` events, in one store write. It uses the crawl's own listing client,
//! so it shares the listing's token, quota and pace and never overlaps a page; a failed read
//! changes nothing. When each channel was read is kept in memory: after a restart each is read
//! once more, which costs a request and changes nothing already recorded.

use super::crawl::CrawlParts;
use super::every::blocking;
use super::state::Settings;
use crate::discover::Source;
use crate::event::EventKind;
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::store::{Sort, VodFilter};
use crate::visibility::{self, VANISHED, VIDEOS_PER_READ, WATCH_DAYS};
use std::collections::HashMap;
use tracing::{debug, warn};

/// Captures looked at when choosing the next channel.
const CANDIDATES: usize = 500;

/// Declares the stage's series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_listing_reread_requests_total",
        Kind::Counter,
        "Video-list requests re-reading captured channels for deletions and sub-only.",
    );
}

/// When the re-read last ran and when each channel was last read.
#[derive(Default)]
pub struct Reread {
    last_run: Option<i64>,
    read_at: HashMap<u64, i64>,
}

impl Reread {
    /// Re-reads one channel's video list if one is due; gives the listing client back (`None`
    /// when it was lost to a panic).
    pub async fn tick(&mut self, parts: &CrawlParts, settings: &Settings, source: Source) -> Option<Source> {
        let now = parts.clock.now();
        let every = settings.config.source.reread_videos_every.as_secs() as i64;
        let channel_every = settings.config.source.reread_channel_after.as_secs() as i64;
        if every == 0 || self.last_run.is_some_and(|last| now - last < every) {
            return Some(source);
        }
        self.last_run = Some(now);
        let filter = VodFilter {
            status: Some(Status::Found),
            since: Some(now - WATCH_DAYS * 86_400),
            public: Some(true),
            ..VodFilter::default()
        };
        let Some(page) = parts
            .store
            .job("could not read the captures to re-read", move |store| {
                store.vods(&filter, Sort::Recent, None, CANDIDATES, CANDIDATES * 4)
            })
            .await
        else {
            return Some(source);
        };
        self.read_at.retain(|_, at| now - *at < channel_every);
        let Some(streamer_id) = visibility::next_channel(&page.items, &self.read_at, now, channel_every)
        else {
            return Some(source);
        };
        self.read_at.insert(streamer_id, now);
        let fetcher = settings.fetcher.clone();
        let (source, videos) = blocking("the video-list re-read", move || {
            let mut source = source;
            let videos = source.videos(&fetcher, streamer_id, VIDEOS_PER_READ, now);
            (source, videos)
        })
        .await?;
        parts.metrics.inc("vodprobe_listing_reread_requests_total", &[]);
        let videos = match videos {
            Ok(videos) => videos,
            Err(error) => {
                parts
                    .metrics
                    .inc("vodprobe_listing_errors_total", &[("kind", error.kind())]);
                warn!(streamer_id, "re-reading a channel's video list failed: {error}");
                return Some(source);
            }
        };
        let full = videos.len() >= VIDEOS_PER_READ as usize;
        let records: Vec<_> = page
            .items
            .into_iter()
            .filter(|record| record.streamer_id == streamer_id)
            .collect();
        let changes = visibility::changes(&records, &videos, full);
        if changes.is_empty() {
            return Some(source);
        }
        let at = parts.clock.now();
        parts
            .store
            .job("could not store what a video list re-read found", move |store| {
                store.update(|tx| {
                    for (key, kind) in &changes {
                        let detail = if *kind == EventKind::Deleted { VANISHED } else { "" };
                        if tx.set_not_public(*key, *kind, detail, at)? {
                            debug!(
                                streamer_id,
                                stream_id = key.1,
                                kind = kind.as_str(),
                                "capture no longer public"
                            );
                        }
                    }
                    Ok::<_, crate::store::StoreError>(())
                })
            })
            .await;
        Some(source)
    }
}
