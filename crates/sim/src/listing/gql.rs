//! The simulated GQL endpoint: the streams page (with today's refusals of persisted queries and
//! of cursor pages from refused client ids), a user's videos, and confirmations by id
//! (`users(ids:)`), each answered from the listing's state as Twitch shapes them.

use super::*;

/// GraphQL reports request problems as 200 with an `errors` list.
pub(super) fn gql_errors(message: &str) -> Response {
    json_ok(&json!({"errors": [{"message": message, "path": ["streams"]}], "data": {"streams": null}}))
}

/// The same for the videos query, whose root field is `user`.
pub(super) fn gql_user_errors(message: &str) -> Response {
    json_ok(&json!({"errors": [{"message": message, "path": ["user"]}], "data": {"user": null}}))
}

pub(super) fn gql_query(body: &Value) -> &str {
    body.get("query").and_then(Value::as_str).unwrap_or("")
}

/// A GQL body whose query asks for a user's videos.
pub(super) fn gql_asks_videos(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|b| gql_query(&b).contains("videos("))
}

pub(super) fn gql(st: &State, req: &Request) -> Response {
    match req.header("Client-Id") {
        None => return twitch_error(400, "The \"Client-ID\" header is missing from the request."),
        Some(id) if id != st.client_id && !PUBLIC_CLIENT_IDS.contains(&id) => {
            return twitch_error(400, "The \"Client-ID\" header is invalid.");
        }
        Some(_) => {}
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return twitch_error(400, "The request body is not valid JSON.");
    };
    if let Some(refusal) = gql_persisted_or_refused(st, req, &body) {
        return refusal;
    }
    let query = gql_query(&body);
    if query.contains("videos(") && query.contains("user(") {
        return gql_videos(st, &body);
    }
    if !query.contains("streams(") {
        return gql_errors("the simulator serves only the GetStreams and Videos queries");
    }
    let variables = body.get("variables").unwrap_or(&Value::Null);
    let Some(first) = variables.get("first").and_then(Value::as_u64) else {
        return gql_errors("Variable \"$first\" of required type \"Int!\" was not provided.");
    };
    let offset = match variables.get("cursor").unwrap_or(&Value::Null) {
        Value::Null => 0,
        Value::String(cursor) => match decode_cursor(cursor) {
            Some(offset) => offset,
            None => return gql_errors("invalid cursor"),
        },
        _ => return gql_errors("Variable \"$cursor\" got invalid value"),
    };
    let order = ordered(st);
    let end = offset
        .saturating_add(first.min(GQL_MAX_FIRST) as usize)
        .min(order.len());
    let start = offset.min(end);
    let edges: Vec<Value> = order[start..end]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"cursor": encode_cursor(start + i + 1), "node": gql_node(s)}))
        .collect();
    json_ok(&json!({
        "data": {"streams": {"pageInfo": {"hasNextPage": end < order.len()}, "edges": edges}},
        "extensions": {"operationName": "GetStreams"}
    }))
}

/// Today's refusals, before the query is served: a persisted-query request (a hash and no
/// `query`) is not found; a cursor page of the streams query from a refused client id fails
/// the integrity check (HTTP 200, null data, an `integrity` challenge).
pub(super) fn gql_persisted_or_refused(st: &State, req: &Request, body: &Value) -> Option<Response> {
    let persisted = body
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some();
    if persisted && body.get("query").is_none_or(Value::is_null) {
        return Some(json_ok(&json!({
            "errors": [{"message": "PersistedQueryNotFound"}],
            "extensions": {"durationMilliseconds": 1}
        })));
    }
    let query = gql_query(body);
    let cursor = body
        .get("variables")
        .and_then(|v| v.get("cursor"))
        .unwrap_or(&Value::Null);
    let client_id = req.header("Client-Id").unwrap_or("");
    if query.contains("streams(")
        && !cursor.is_null()
        && st.refused_client_ids.iter().any(|id| id == client_id)
    {
        return Some(json_ok(&json!({
            "data": {"streams": null},
            "errors": [{"message": "failed integrity check", "path": ["streams"]}],
            "extensions": {"challenge": {"type": "integrity"}}
        })));
    }
    None
}

/// `user(id: $id) { videos(first: $first) ... subscriptionProducts ... }`.
pub(super) fn gql_videos(st: &State, body: &Value) -> Response {
    let variables = body.get("variables").unwrap_or(&Value::Null);
    let Some(first) = variables.get("first").and_then(Value::as_u64) else {
        return gql_user_errors("Variable \"$first\" of required type \"Int!\" was not provided.");
    };
    if first > GQL_MAX_VIDEOS {
        return gql_user_errors("first must be at most 100");
    }
    // `ID!` takes a string or a number.
    let id = match variables.get("id") {
        Some(Value::String(id)) => id.parse::<u64>().ok(),
        Some(Value::Number(id)) => id.as_u64(),
        _ => return gql_user_errors("Variable \"$id\" of required type \"ID!\" was not provided."),
    };
    let Some((id, videos)) = id.and_then(|id| Some((id, st.videos.get(&id)?))) else {
        return json_ok(&json!({"data": {"user": null}}));
    };
    let asks_mute_info = gql_query(body).contains("muteInfo");
    let edges: Vec<Value> = videos
        .iter()
        .take(first as usize)
        .enumerate()
        .map(|(i, v)| {
            let mut node = json!({
                "id": v.video_id.to_string(),
                "createdAt": rfc3339(v.created_at),
                "broadcastType": "ARCHIVE",
                "seekPreviewsURL": if st.null_seek_previews_every.is_some_and(|n| v.video_id % n == 0) {
                    Value::Null
                } else {
                    Value::String(v.seek_previews_url())
                },
            });
            if asks_mute_info {
                node["muteInfo"] = gql_mute_info(st, v);
            }
            json!({"cursor": encode_cursor(i + 1), "node": node})
        })
        .collect();
    let subonly = videos.iter().any(|v| !v.public);
    json_ok(&json!({
        "data": {"user": {
            "id": id.to_string(),
            "videos": {"pageInfo": {"hasNextPage": videos.len() > edges.len()}, "edges": edges},
            "subscriptionProducts": [{"hasSubonlyVideoArchive": subonly, "tier": "1000"}]
        }},
        "extensions": {"operationName": "Videos"}
    }))
}

/// `muteInfo { mutedSegmentConnection { nodes { offset duration } } }`: the connection is null
/// when nothing is muted; `muteInfo` itself is null while withheld.
fn gql_mute_info(st: &State, v: &SimVideo) -> Value {
    if st.mute_info_withheld {
        return Value::Null;
    }
    if v.muted.is_empty() {
        return json!({"mutedSegmentConnection": null});
    }
    let nodes: Vec<Value> = v
        .muted
        .iter()
        .map(|m| json!({"offset": m.offset, "duration": m.duration}))
        .collect();
    json!({"mutedSegmentConnection": {"nodes": nodes}})
}

/// A broadcast language as GQL's enum names it: upper case, and Portuguese without its
/// region (the real enum has `PT` and no `PT_BR`; Helix keeps "pt-br").
pub(super) fn gql_language(language: &str) -> String {
    match language {
        "pt-br" => "PT".to_string(),
        other => other.to_uppercase().replace('-', "_"),
    }
}

pub(super) fn gql_node(s: &LiveStream) -> Value {
    let game = if s.game_id.is_empty() {
        Value::Null
    } else {
        json!({"id": s.game_id, "name": s.game_name})
    };
    json!({
        "id": s.stream_id.to_string(),
        "viewersCount": s.viewers,
        "createdAt": rfc3339(s.started_at),
        "broadcaster": {
            "id": s.streamer_id.to_string(),
            "login": s.login,
            "broadcastSettings": {
                "title": s.title,
                "language": gql_language(&s.language),
                "isMature": s.is_mature
            }
        },
        "game": game
    })
}

/// A GQL body resolving logins: `users(logins: $logins)`.
pub(super) fn gql_asks_logins(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|b| gql_query(&b).contains("users(") && b.pointer("/variables/logins").is_some())
}

/// `users(logins: $logins) { id login }`: in the order asked, null for an unknown login (as
/// Twitch answers `[null]`); logins compare without case.
pub(super) fn gql_logins(st: &State, req: &Request) -> Response {
    let Some(logins) = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|b| b.pointer("/variables/logins").and_then(Value::as_array).cloned())
    else {
        return json_ok(
            &json!({"errors": [{"message": "Variable \"$logins\" was not provided."}], "data": {"users": null}}),
        );
    };
    if logins.len() > CONFIRM_MAX_IDS {
        return json_ok(&json!({"errors": [{"message": "too many logins"}], "data": {"users": null}}));
    }
    let users: Vec<Value> = logins
        .iter()
        .map(|login| {
            let login = login.as_str().unwrap_or("");
            user_by_login(st, login).map_or(
                Value::Null,
                |(id, login)| json!({"id": id.to_string(), "login": login}),
            )
        })
        .collect();
    json_ok(&json!({"data": {"users": users}}))
}

/// `users(ids: $ids) { id login broadcastSettings {…} stream { id createdAt viewersCount game
/// {…} } }`: every id is a channel; its stream is the newest of the live set's streams with its
/// user id, or null; an id never seen is null.
pub(super) fn gql_users(st: &State, req: &Request) -> Response {
    match req.header("Client-Id") {
        None => return twitch_error(400, "The \"Client-ID\" header is missing from the request."),
        Some(id) if id != st.client_id => return twitch_error(400, "The \"Client-ID\" header is invalid."),
        Some(_) => {}
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return twitch_error(400, "The request body is not valid JSON.");
    };
    let Some(ids) = body.pointer("/variables/ids").and_then(Value::as_array) else {
        return json_ok(
            &json!({"errors": [{"message": "Variable \"$ids\" was not provided."}], "data": {"users": null}}),
        );
    };
    if ids.len() > CONFIRM_MAX_IDS {
        return json_ok(&json!({"errors": [{"message": "too many ids"}], "data": {"users": null}}));
    }
    let users: Vec<Value> = ids
        .iter()
        .map(|id| {
            let Some(user_id) = id.as_str().and_then(|id| id.parse::<u64>().ok()) else {
                return Value::Null;
            };
            let live = live_stream_of(st, user_id);
            let Some(login) = st.users.get(&user_id).or(live.map(|s| &s.login)) else {
                // Twitch answers null for an id it does not know.
                return Value::Null;
            };
            let stream = live.map_or(Value::Null, |s| {
                let game = if s.game_id.is_empty() {
                    Value::Null
                } else {
                    json!({"id": s.game_id, "name": s.game_name})
                };
                json!({"id": s.stream_id.to_string(), "createdAt": rfc3339(s.started_at),
                       "viewersCount": s.viewers, "game": game})
            });
            // Offline channels keep the settings of their last stream; here: empty ones.
            let settings = live.map_or(
                json!({"title": "", "language": "EN", "isMature": false}),
                |s| json!({"title": s.title, "language": gql_language(&s.language), "isMature": s.is_mature}),
            );
            json!({"id": user_id.to_string(), "login": login, "broadcastSettings": settings, "stream": stream})
        })
        .collect();
    json_ok(&json!({"data": {"users": users}}))
}
