//! Direct confirmation: which of some channels are live now, asked by id rather than found in
//! the listing, so a stream's end is known without a full pass.
//!
//! - Helix: `GET streams?user_id=A&user_id=B…` lists the live streams of those channels (up
//!   to 100 ids); a channel asked and not listed is offline.
//! - GQL: `users(ids: [...]) { id login broadcastSettings {…} stream { id createdAt
//!   viewersCount game {…} } }` answers every channel asked, in order; a null `stream` is
//!   offline, a null user (unknown, banned) is not live either.
//!
//! Both answers carry what a record needs (login, viewers, title, game, language, maturity),
//! so followed channels are checked this way instead of found in the listing: a live one
//! comes back as a [`Sighting`]. Logins are resolved to channel ids here too
//! ([`Source::users_by_login`]: GQL `users(logins:)`, Helix `users?login=`).
//!
//! Like the page decoders, these are strict about the envelope and lenient about single
//! entries: a malformed one is skipped and its channel counted as unanswered, never as
//! offline. A Helix item whose channel cannot be read makes the whole answer unusable as
//! evidence of absence, so then nobody is taken for offline.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::gql::{gql_node, gql_refusal};
use super::helix::helix_item;
use super::json::{id_at, parse_json, str_at, time_at};
use super::{DiscoverError, GqlSource, HelixSource, Source};
use crate::fetch::Fetcher;
use crate::record::Sighting;

/// Both APIs take at most this many channels per request.
pub const CONFIRM_BATCH: usize = 100;

/// Live channels by id, with what a record needs of their streams.
pub const GQL_USERS_QUERY: &str = "query LiveNow($ids: [ID!]) {
  users(ids: $ids) { id login broadcastSettings { title language isMature }
    stream { id createdAt viewersCount game { id name } } }
}";

/// Channel ids by login (a null entry for an unknown login).
pub const GQL_LOGINS_QUERY: &str = "query Logins($logins: [String!]) {
  users(logins: $logins) { id login }
}";

/// What a confirmation answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveNow {
    /// Channels live now: streamer id → (stream id, start in unix seconds).
    pub live: HashMap<u64, (u64, i64)>,
    /// Channels asked and shown not live.
    pub offline: HashSet<u64>,
    /// Entries that were malformed and left out (their channels are neither live nor offline).
    pub skipped: usize,
    /// The live channels' streams as a listing page would show them, where the answer held
    /// every field a record needs.
    pub sightings: Vec<Sighting>,
}

impl LiveNow {
    pub fn merge(&mut self, other: LiveNow) {
        self.live.extend(other.live);
        self.offline.extend(other.offline);
        self.skipped += other.skipped;
        self.sightings.extend(other.sightings);
    }
}

/// A login resolved: (login as asked, lower case; channel id; login as Twitch spells it).
pub type UserId = (String, u64, String);

impl Source {
    /// Which of `streamer_ids` are live now: one request per [`CONFIRM_BATCH`] ids (none for
    /// an empty list). Any failed request fails the whole call. `now` as for [`Source::page`].
    pub fn live_streams(
        &mut self,
        fetcher: &Fetcher,
        streamer_ids: &[u64],
        now: i64,
    ) -> Result<LiveNow, DiscoverError> {
        let mut answer = LiveNow::default();
        for batch in streamer_ids.chunks(CONFIRM_BATCH) {
            answer.merge(match self {
                Source::Gql(source) => source.live_streams(fetcher, batch)?,
                Source::Helix(source) => source.live_streams(fetcher, batch, now)?,
            });
        }
        Ok(answer)
    }
}

impl Source {
    /// Channel ids of `logins` (lower case), [`CONFIRM_BATCH`] a request; an unknown login is
    /// left out of the answer.
    pub fn users_by_login(
        &mut self,
        fetcher: &Fetcher,
        logins: &[String],
        now: i64,
    ) -> Result<Vec<UserId>, DiscoverError> {
        let mut found = Vec::new();
        for batch in logins.chunks(CONFIRM_BATCH) {
            let body = match self {
                Source::Gql(source) => {
                    let body = json!({"query": GQL_LOGINS_QUERY, "variables": {"logins": batch}});
                    source.post(fetcher, &body)?
                }
                Source::Helix(source) => {
                    // `users` sits beside `streams` under the configured helix_url.
                    let base = source.streams_url.strip_suffix("streams").unwrap_or_default();
                    let mut url = format!("{base}users?");
                    for (index, login) in batch.iter().enumerate() {
                        let sep = if index == 0 { "" } else { "&" };
                        url.push_str(&format!("{sep}login={login}"));
                    }
                    source.get(fetcher, &url, now)?
                }
            };
            found.extend(decode_users_by_login(
                &body,
                batch,
                matches!(self, Source::Gql(_)),
            )?);
        }
        Ok(found)
    }
}

/// GQL `data.users` (in the order asked, null for unknown) or Helix `data` (only the known).
pub(crate) fn decode_users_by_login(
    body: &[u8],
    asked: &[String],
    gql: bool,
) -> Result<Vec<UserId>, DiscoverError> {
    let root = parse_json(body, "body")?;
    let users = if gql {
        root.get("data")
            .and_then(|d| d.get("users"))
            .and_then(Value::as_array)
            .ok_or_else(|| gql_refusal(&root, "data.users"))?
    } else {
        root.get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| DiscoverError::Decode("data: not a list".into()))?
    };
    let mut found = Vec::new();
    for (index, user) in users.iter().enumerate() {
        if user.is_null() {
            continue;
        }
        let path = format!("data.users[{index}]");
        let (Ok(id), Ok(login)) = (id_at(user, "id", &path), str_at(user, "login", &path)) else {
            continue;
        };
        let lower = login.to_ascii_lowercase();
        // A rename between asking and answering would not match: only what was asked counts.
        if asked.contains(&lower) {
            found.push((lower, id, login.to_string()));
        }
    }
    Ok(found)
}

impl GqlSource {
    fn live_streams(&self, fetcher: &Fetcher, ids: &[u64]) -> Result<LiveNow, DiscoverError> {
        let ids_text: Vec<String> = ids.iter().map(u64::to_string).collect();
        let body = json!({"query": GQL_USERS_QUERY, "variables": {"ids": ids_text}});
        decode_gql_users(&self.post(fetcher, &body)?, ids)
    }
}

impl HelixSource {
    fn live_streams(&mut self, fetcher: &Fetcher, ids: &[u64], now: i64) -> Result<LiveNow, DiscoverError> {
        let mut url = format!("{}?first={}", self.streams_url, CONFIRM_BATCH);
        for id in ids {
            url.push_str(&format!("&user_id={id}"));
        }
        decode_helix_live(&self.get(fetcher, &url, now)?, ids)
    }
}

/// `data.users` of a GQL answer to [`GQL_USERS_QUERY`] for `asked` (in that order).
pub(crate) fn decode_gql_users(body: &[u8], asked: &[u64]) -> Result<LiveNow, DiscoverError> {
    let root = parse_json(body, "body")?;
    let Some(users) = root
        .get("data")
        .and_then(|d| d.get("users"))
        .and_then(Value::as_array)
    else {
        return Err(gql_refusal(&root, "data.users"));
    };
    let mut answer = LiveNow::default();
    // A null user is offline only where its position names the channel.
    let in_order = users.len() == asked.len();
    for (index, user) in users.iter().enumerate() {
        let path = format!("data.users[{index}]");
        if user.is_null() {
            match asked.get(index).filter(|_| in_order) {
                Some(id) => {
                    answer.offline.insert(*id);
                }
                None => answer.skipped += 1,
            }
            continue;
        }
        match gql_user(user, &path) {
            Ok((streamer_id, stream)) if asked.contains(&streamer_id) => match stream {
                Some(stream) => {
                    answer.live.insert(streamer_id, stream);
                    if let Some(sighting) = gql_user_sighting(user, &path) {
                        answer.sightings.push(sighting);
                    }
                }
                None => {
                    answer.offline.insert(streamer_id);
                }
            },
            _ => answer.skipped += 1,
        }
    }
    // A channel answered twice, once live (a null user by position and its own entry, or
    // repeated entries), is taken for live: ending a stream on a contradiction is the costlier
    // mistake, and it is asked again later.
    answer.offline.retain(|id| !answer.live.contains_key(id));
    Ok(answer)
}

fn gql_user(user: &Value, path: &str) -> Result<(u64, Option<(u64, i64)>), String> {
    let streamer_id = id_at(user, "id", path)?;
    let stream = match user.get("stream") {
        None => return Err(format!("{path}.stream: missing")),
        Some(Value::Null) => None,
        Some(stream) => {
            let stream_path = format!("{path}.stream");
            Some((
                id_at(stream, "id", &stream_path)?,
                time_at(stream, "createdAt", &stream_path)?,
            ))
        }
    };
    Ok((streamer_id, stream))
}

/// A live user's stream as the listing's node would show it (`None` if a field is missing).
fn gql_user_sighting(user: &Value, path: &str) -> Option<Sighting> {
    let stream = user.get("stream")?;
    let node = json!({
        "id": stream.get("id")?,
        "viewersCount": stream.get("viewersCount")?,
        "createdAt": stream.get("createdAt")?,
        "game": stream.get("game").unwrap_or(&Value::Null),
        "broadcaster": {
            "id": user.get("id")?,
            "login": user.get("login")?,
            "broadcastSettings": user.get("broadcastSettings").unwrap_or(&Value::Null),
        },
    });
    gql_node(&node, path).ok()
}

/// `data` of a Helix `streams?user_id=…` answer for `asked`: channels not listed are offline.
pub(crate) fn decode_helix_live(body: &[u8], asked: &[u64]) -> Result<LiveNow, DiscoverError> {
    let root = parse_json(body, "body")?;
    let items = root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data: not a list".into()))?;
    let mut answer = LiveNow::default();
    let mut unreadable = false;
    let mut listed = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("data[{index}]");
        let Ok(streamer_id) = id_at(item, "user_id", &path) else {
            unreadable = true;
            answer.skipped += 1;
            continue;
        };
        // A channel that was not asked is no evidence about any tracked stream.
        if !asked.contains(&streamer_id) {
            answer.skipped += 1;
            continue;
        }
        listed.insert(streamer_id);
        match (id_at(item, "id", &path), time_at(item, "started_at", &path)) {
            (Ok(stream_id), Ok(started)) => {
                answer.live.insert(streamer_id, (stream_id, started));
                if let Ok(sighting) = helix_item(item, &path) {
                    answer.sightings.push(sighting);
                }
            }
            _ => answer.skipped += 1,
        }
    }
    if !unreadable {
        answer.offline = asked.iter().copied().filter(|id| !listed.contains(id)).collect();
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gql_users_tell_live_offline_and_malformed_apart() {
        let body = json!({"data": {"users": [
            {"id": "1", "stream": {"id": "11", "createdAt": "2024-01-01T00:00:00Z"}},
            {"id": "2", "stream": null},
            null,
            {"id": "4", "stream": {"id": "x", "createdAt": "2024-01-01T00:00:00Z"}},
            {"id": "5"},
        ]}});
        let answer = decode_gql_users(body.to_string().as_bytes(), &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(answer.live, HashMap::from([(1, (11, 1_704_067_200))]));
        assert_eq!(answer.offline, HashSet::from([2, 3]));
        assert_eq!(answer.skipped, 2, "a malformed entry is never taken for offline");
    }

    #[test]
    fn gql_users_give_sightings_of_live_channels() {
        let body = json!({"data": {"users": [
            {"id": "1", "login": "Alice", "broadcastSettings": {"title": "hi", "language": "PT", "isMature": true},
             "stream": {"id": "11", "createdAt": "2024-01-01T00:00:00Z", "viewersCount": 3,
                        "game": {"id": "9", "name": "Chess"}}},
            {"id": "2", "stream": {"id": "12", "createdAt": "2024-01-01T00:00:00Z"}},
        ]}});
        let answer = decode_gql_users(body.to_string().as_bytes(), &[1, 2]).unwrap();
        assert_eq!(answer.live.len(), 2);
        assert_eq!(
            answer.sightings.len(),
            1,
            "the old short shape still confirms, without a sighting"
        );
        let s = &answer.sightings[0];
        assert_eq!((s.streamer_id, s.stream_id, s.viewers), (1, 11, 3));
        assert_eq!(
            (s.login.as_str(), s.language.as_str(), s.game_name.as_str()),
            ("Alice", "pt", "Chess")
        );
        assert!(s.is_mature);
    }

    #[test]
    fn logins_resolve_and_unknown_ones_are_left_out() {
        let asked = vec!["alice".to_string(), "ghost".to_string()];
        let gql = json!({"data": {"users": [{"id": "1", "login": "Alice"}, null]}});
        let found = decode_users_by_login(gql.to_string().as_bytes(), &asked, true).unwrap();
        assert_eq!(found, vec![("alice".to_string(), 1, "Alice".to_string())]);
        let helix = json!({"data": [{"id": "1", "login": "alice"}]});
        let found = decode_users_by_login(helix.to_string().as_bytes(), &asked, false).unwrap();
        assert_eq!(found, vec![("alice".to_string(), 1, "alice".to_string())]);
        let refused = json!({"errors": [{"message": "x"}], "data": {"users": null}});
        assert!(decode_users_by_login(refused.to_string().as_bytes(), &asked, true).is_err());
    }

    #[test]
    fn gql_users_answered_both_live_and_offline_are_live() {
        let live = json!({"id": "1", "stream": {"id": "11", "createdAt": "2024-01-01T00:00:00Z"}});
        for users in [json!([null, live]), json!([{"id": "1", "stream": null}, live])] {
            let body = json!({"data": {"users": users}});
            let answer = decode_gql_users(body.to_string().as_bytes(), &[1, 2]).unwrap();
            assert_eq!(answer.live, HashMap::from([(1, (11, 1_704_067_200))]), "{users}");
            assert!(answer.offline.is_empty(), "{users}");
        }
    }

    #[test]
    fn gql_users_refused_is_an_error_not_an_answer() {
        let body = json!({"errors": [{"message": "service timeout"}], "data": {"users": null}});
        let error = decode_gql_users(body.to_string().as_bytes(), &[1]).unwrap_err();
        assert!(matches!(error, DiscoverError::Status { .. }), "{error}");
        assert!(decode_gql_users(b"<html>", &[1]).is_err());
    }

    #[test]
    fn helix_channels_not_listed_are_offline() {
        let body = json!({"data": [
            {"id": "11", "user_id": "1", "started_at": "2024-01-01T00:00:00Z"},
            {"id": "12", "user_id": "2", "started_at": "yesterday"},
        ], "pagination": {}});
        let answer = decode_helix_live(body.to_string().as_bytes(), &[1, 2, 3]).unwrap();
        assert_eq!(answer.live, HashMap::from([(1, (11, 1_704_067_200))]));
        assert_eq!(answer.offline, HashSet::from([3]), "2 is listed, if malformed");
        assert_eq!(answer.skipped, 1);
    }

    #[test]
    fn helix_channels_not_asked_are_left_out() {
        let body = json!({"data": [
            {"id": "11", "user_id": "1", "started_at": "2024-01-01T00:00:00Z"},
            {"id": "19", "user_id": "9", "started_at": "2024-01-01T00:00:00Z"},
        ]});
        let answer = decode_helix_live(body.to_string().as_bytes(), &[1, 2]).unwrap();
        assert_eq!(answer.live, HashMap::from([(1, (11, 1_704_067_200))]));
        assert_eq!(answer.offline, HashSet::from([2]));
        assert_eq!(answer.skipped, 1);
    }

    #[test]
    fn helix_item_of_an_unknown_channel_makes_nobody_offline() {
        let body = json!({"data": [{"id": "11", "started_at": "2024-01-01T00:00:00Z"}]});
        let answer = decode_helix_live(body.to_string().as_bytes(), &[1, 2]).unwrap();
        assert!(answer.offline.is_empty());
        assert!(decode_helix_live(b"{}", &[1]).is_err());
    }
}
