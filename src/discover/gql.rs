//! The GQL listing: Twitch's web client GraphQL API (no registration; unofficial).
//!
//! One POST per request with a fixed query; a page of streams is `data.streams`, a channel's
//! videos are `data.user.videos`. GraphQL answers 200 even when it refuses a query and explains
//! in `errors`, so the decoders here tell a refusal (a status error quoting the messages) from
//! an answer they do not understand (a decode error naming the path). It needs no clock: no
//! token expires and no quota is reported.

use serde_json::{Value, json};

use super::json::{count_at, id_at, opt_bool_at, opt_str_at, parse_json, str_at, time_at};
use super::videos::{muted_from, parse_preview_url, stretches_from};
use super::{DEFAULT_BACKOFF, DiscoverError, ListingPage, VideoHint, VideoOf, excerpt, status_error};
use crate::config::SourceConfig;
use crate::fetch::{Fetcher, Method};
use crate::record::Sighting;

/// GQL refuses pages larger than this.
pub const GQL_PAGE_SIZE: u32 = 30;

/// The query from the reference notes: only the fields a [`Sighting`] needs, sorted
/// explicitly (most viewed first).
pub const GQL_STREAMS_QUERY: &str = "query GetStreams($first: Int!, $cursor: Cursor) {
  streams(first: $first, after: $cursor, options: {sort: VIEWER_COUNT}) {
    pageInfo { hasNextPage }
    edges { cursor node { id viewersCount createdAt
      broadcaster { id login broadcastSettings { title language isMature } }
      game { id name } } }
  }
}";

/// A channel's newest archive videos, with what locates their playlists
/// (`seekPreviewsURL`), whether they were muted (`muteInfo`: the stretches Twitch's web player
/// overlays, its persisted query `VideoPlayer_MutedSegmentsAlertOverlay`, also read by
/// Brisppy/twitch-archiver) and whether the channel's archives are sub-only.
pub const GQL_VIDEOS_QUERY: &str = "query Videos($id: ID!, $first: Int!) {
  user(id: $id) {
    videos(first: $first, type: ARCHIVE, sort: TIME) { edges { node { id createdAt seekPreviewsURL
      muteInfo { mutedSegmentConnection { nodes { offset duration } } } } } }
    subscriptionProducts { hasSubonlyVideoArchive }
  }
}";

/// Twitch's GraphQL listing.
#[derive(Debug)]
pub struct GqlSource {
    url: String,
    client_id: String,
}

impl GqlSource {
    pub(super) fn new(config: &SourceConfig) -> GqlSource {
        GqlSource {
            url: config.gql_url.clone(),
            client_id: config.client_id.clone(),
        }
    }

    pub(super) fn page(&self, fetcher: &Fetcher, cursor: Option<&str>) -> Result<ListingPage, DiscoverError> {
        let body = json!({
            "query": GQL_STREAMS_QUERY,
            "variables": {"first": GQL_PAGE_SIZE, "cursor": cursor},
        });
        decode_gql(&self.post(fetcher, &body)?).map_err(|error| self.name_client(error))
    }

    /// An integrity refusal names the client id it concerns (the decoder does not know it).
    fn name_client(&self, error: DiscoverError) -> DiscoverError {
        match error {
            DiscoverError::Integrity { .. } => DiscoverError::Integrity {
                client_id: self.client_id.clone(),
            },
            other => other,
        }
    }

    pub(super) fn videos(
        &self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let body = json!({
            "query": GQL_VIDEOS_QUERY,
            "variables": {"id": streamer_id.to_string(), "first": first},
        });
        decode_gql_videos(&self.post(fetcher, &body)?).map_err(|error| self.name_client(error))
    }

    /// One GraphQL request; the body of a 2xx answer, or the error the answer means.
    pub(super) fn post(&self, fetcher: &Fetcher, body: &Value) -> Result<Vec<u8>, DiscoverError> {
        let body = body.to_string();
        let headers = [
            ("Client-Id", self.client_id.clone()),
            ("Content-Type", "application/json".to_string()),
        ];
        let answer = fetcher.send(Method::Post, &self.url, &headers, Some(body.as_bytes()))?;
        match answer.status {
            200..=299 => Ok(answer.body),
            401 | 403 => Err(DiscoverError::Auth(excerpt(&answer.body))),
            // Twitch refuses a missing or unknown client id with 400 and says so.
            400 if excerpt(&answer.body).to_ascii_lowercase().contains("client-id") => {
                Err(DiscoverError::Auth(excerpt(&answer.body)))
            }
            429 => Err(DiscoverError::RateLimited {
                retry_after: answer.retry_after.unwrap_or(DEFAULT_BACKOFF),
            }),
            _ => Err(status_error(&answer)),
        }
    }
}

/// `data.streams` of a GQL answer → a page.
pub(crate) fn decode_gql(body: &[u8]) -> Result<ListingPage, DiscoverError> {
    let root = parse_json(body, "body")?;
    let streams = root
        .get("data")
        .and_then(|d| d.get("streams"))
        .filter(|s| !s.is_null());
    let Some(streams) = streams else {
        return Err(gql_refusal(&root, "data.streams"));
    };
    let has_next = streams
        .get("pageInfo")
        .and_then(|p| p.get("hasNextPage"))
        .and_then(Value::as_bool)
        .ok_or_else(|| DiscoverError::Decode("data.streams.pageInfo.hasNextPage: missing".into()))?;
    let edges = streams
        .get("edges")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data.streams.edges: not a list".into()))?;
    let mut page = ListingPage::default();
    for (index, edge) in edges.iter().enumerate() {
        let path = format!("edges[{index}].node");
        match edge
            .get("node")
            .ok_or(format!("{path}: missing"))
            .and_then(|n| gql_node(n, &path))
        {
            Ok(sighting) => page.sightings.push(sighting),
            Err(reason) => page.skip(reason),
        }
    }
    if has_next {
        // The last edge's cursor continues the listing even when that edge's node was skipped.
        let last = edges.len().saturating_sub(1);
        let cursor = edges
            .last()
            .and_then(|edge| edge.get("cursor"))
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DiscoverError::Decode(format!("edges[{last}].cursor: missing although hasNextPage"))
            })?;
        page.next_cursor = Some(cursor.to_string());
    }
    Ok(page)
}

pub(super) fn gql_node(node: &Value, path: &str) -> Result<Sighting, String> {
    if !node.is_object() {
        return Err(format!("{path}: not an object"));
    }
    let broadcaster = node
        .get("broadcaster")
        .filter(|b| b.is_object())
        .ok_or(format!("{path}.broadcaster: missing"))?;
    let broadcaster_path = format!("{path}.broadcaster");
    let settings = broadcaster.get("broadcastSettings").unwrap_or(&Value::Null);
    let settings_path = format!("{broadcaster_path}.broadcastSettings");
    let game = node.get("game").unwrap_or(&Value::Null);
    let game_path = format!("{path}.game");
    Ok(Sighting {
        stream_id: id_at(node, "id", path)?,
        streamer_id: id_at(broadcaster, "id", &broadcaster_path)?,
        login: str_at(broadcaster, "login", &broadcaster_path)?.to_string(),
        title: opt_str_at(settings, "title", &settings_path)?,
        game_id: opt_str_at(game, "id", &game_path)?,
        game_name: opt_str_at(game, "name", &game_path)?,
        // GQL spells languages as an enum ("EN", "ZH_HK"); store them as Helix does.
        language: opt_str_at(settings, "language", &settings_path)?
            .to_lowercase()
            .replace('_', "-"),
        is_mature: opt_bool_at(settings, "isMature", &settings_path)?,
        viewers: count_at(node, "viewersCount", path)?,
        started_at: time_at(node, "createdAt", path)?,
    })
}

/// `data.user` of a GQL videos answer → hints (a null user has no videos).
pub(crate) fn decode_gql_videos(body: &[u8]) -> Result<Vec<VideoHint>, DiscoverError> {
    let root = parse_json(body, "body")?;
    let Some(data) = root.get("data").filter(|d| d.is_object()) else {
        return Err(gql_refusal(&root, "data"));
    };
    let user = match data.get("user") {
        Some(Value::Null) => return Ok(Vec::new()),
        Some(user) if user.is_object() => user,
        _ => return Err(gql_refusal(&root, "data.user")),
    };
    // Sub-only archives are a channel setting, carried by its subscription products (a list
    // on Twitch; a single object is accepted too).
    let subonly = match user.get("subscriptionProducts") {
        Some(Value::Array(products)) => products.iter().any(subonly_product),
        Some(product) => subonly_product(product),
        None => false,
    };
    let edges = user
        .get("videos")
        .and_then(|v| v.get("edges"))
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data.user.videos.edges: not a list".into()))?;
    let hints = edges
        .iter()
        .filter_map(|edge| gql_video_hint(edge.get("node")?, !subonly))
        .collect();
    Ok(hints)
}

/// One GQL video node. A null `seekPreviewsURL` (Twitch answers one now and then) still says
/// the video exists; the node carries no stream id, so the hint names its broadcast by
/// `createdAt` and has no path ([`VideoHint::path_known`] is false). A node whose URL names no
/// folder, or whose preview is null and `createdAt` unreadable, is left out.
fn gql_video_hint(node: &Value, public: bool) -> Option<VideoHint> {
    let hint = gql_video_path(node, public)?;
    Some(VideoHint {
        muted: gql_muted(node),
        muted_stretches: stretches_from(
            node.get("muteInfo")
                .and_then(|info| info.get("mutedSegmentConnection"))
                .and_then(|connection| connection.get("nodes")),
        ),
        ..hint
    })
}

/// `muteInfo { mutedSegmentConnection { nodes } }`: a null connection means nothing is muted;
/// a null or missing `muteInfo` (not asked, or not served) says nothing.
fn gql_muted(node: &Value) -> Option<bool> {
    let info = node.get("muteInfo")?;
    match info.get("mutedSegmentConnection")? {
        Value::Null => Some(false),
        connection => muted_from(connection.get("nodes")),
    }
}

fn gql_video_path(node: &Value, public: bool) -> Option<VideoHint> {
    match node.get("seekPreviewsURL")? {
        Value::String(url) => parse_preview_url(url, public),
        Value::Null => Some(VideoHint {
            broadcast: VideoOf::StartedAt(time_at(node, "createdAt", "node").ok()?),
            domain: String::new(),
            folder: String::new(),
            ts: String::new(),
            public,
            muted: None,
            muted_stretches: Vec::new(),
        }),
        _ => None,
    }
}

fn subonly_product(product: &Value) -> bool {
    product.get("hasSubonlyVideoArchive").and_then(Value::as_bool) == Some(true)
}

/// The error for a GQL answer without the expected data: GraphQL answers 200 and explains in
/// `errors` when it cannot serve the query (errors beside data concern single nodes, which
/// then come back null and are skipped); without `errors`, a decode error naming `path`.
pub(super) fn gql_refusal(root: &Value, path: &str) -> DiscoverError {
    let messages: Vec<&str> = root
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(|e| e.get("message")?.as_str()).collect())
        .unwrap_or_default();
    if messages.is_empty() {
        return DiscoverError::Decode(format!("{path}: missing"));
    }
    if let Some(refusal) = gql_known_refusal(root, &messages) {
        return refusal;
    }
    DiscoverError::Status {
        status: 200,
        body_excerpt: format!("GraphQL errors: {}", messages.join("; ")),
    }
}

/// Today's refusals that need their own remedy: the integrity check (Twitch refuses cursor
/// pages from some client ids; the client id is filled in by the caller) and a persisted query
/// Twitch no longer knows.
fn gql_known_refusal(root: &Value, messages: &[&str]) -> Option<DiscoverError> {
    let challenge = root
        .get("extensions")
        .and_then(|e| e.get("challenge"))
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str);
    if challenge == Some("integrity") || messages.iter().any(|m| m.contains("failed integrity check")) {
        return Some(DiscoverError::Integrity {
            client_id: String::new(),
        });
    }
    if messages.contains(&"PersistedQueryNotFound") {
        return Some(DiscoverError::PersistedQueryNotFound);
    }
    None
}

#[cfg(test)]
mod tests;
