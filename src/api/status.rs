//! `GET /api/v1/status/series`: the last day of what the appliance did, in five-minute buckets
//! (`crate::series`), for the status page's charts.

use super::Backend;
use super::dto::rfc3339;
use super::handlers::{Reply, Result, blocking};
use super::params::Query;
use crate::series::{BUCKET_SECONDS, Bucket};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Serialize)]
struct SeriesItem {
    at: String,
    captures: u64,
    requests: u64,
    /// Share of the request budget used: requests over what the rate allowed in the bucket
    /// (so far, for the current one).
    budget_used: f64,
    queue_depth: u64,
    domains: BTreeMap<String, &'static str>,
}

#[derive(Serialize)]
struct SeriesAnswer {
    bucket_seconds: i64,
    from: String,
    to: String,
    /// Every domain any bucket names, sorted.
    domains: Vec<String>,
    items: Vec<SeriesItem>,
}

fn item(bucket: Bucket, now: i64) -> SeriesItem {
    let seconds = (now - bucket.at).clamp(1, BUCKET_SECONDS) as f64;
    let allowed = bucket.rate * seconds;
    SeriesItem {
        at: rfc3339(bucket.at),
        captures: bucket.captures,
        requests: bucket.requests,
        budget_used: if allowed > 0.0 {
            bucket.requests as f64 / allowed
        } else {
            0.0
        },
        queue_depth: bucket.queue_depth,
        domains: bucket
            .domains
            .into_iter()
            .map(|(url, health)| (url, health.as_str()))
            .collect(),
    }
}

pub async fn series(backend: Arc<dyn Backend>, raw: String) -> Result<Reply> {
    Query::parse(&raw, &[])?;
    let now = backend.now();
    let buckets = blocking(move || Ok(backend.status_series())).await?;
    let mut domains: Vec<String> = buckets
        .iter()
        .flat_map(|bucket| bucket.domains.keys().cloned())
        .collect();
    domains.sort();
    domains.dedup();
    Ok(Reply::json(&SeriesAnswer {
        bucket_seconds: BUCKET_SECONDS,
        from: rfc3339(now - 86_400),
        to: rfc3339(now),
        domains,
        items: buckets.into_iter().map(|bucket| item(bucket, now)).collect(),
    }))
}
