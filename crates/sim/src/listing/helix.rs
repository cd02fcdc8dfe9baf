//! The simulated Helix API: auth and the point budget, the streams pages (with the looping last
//! cursor and occasional invalid cursors), a channel's videos (placeholder thumbnails while
//! processing), streams by user id for confirmations, and the app-token endpoint.

use super::*;

/// Serves one Helix endpoint from the state and the parsed query (first, after).
pub(super) type HelixEndpoint = fn(&State, &[(String, String)], usize, usize) -> Result<Value, Response>;

/// Auth and the point budget, then `endpoint`.
pub(super) fn helix(st: &mut State, req: &Request, endpoint: HelixEndpoint) -> Response {
    let bearer = req
        .header("Authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| st.tokens.get(token));
    let Some(token) = bearer.filter(|t| t.expires > Instant::now()) else {
        return twitch_error(401, "Invalid OAuth token");
    };
    if req.header("Client-Id") != Some(token.client_id.as_str()) {
        return twitch_error(401, "Client ID and OAuth token do not match");
    }

    // One point per request in a fixed one-minute window; Twitch refills continuously, but a
    // window is enough for a client that only reads the headers.
    let now = Instant::now();
    let (started, reset, used) = match st.window {
        Some(window) if now < window.0 + RATE_WINDOW => window,
        _ => (now, unix_now() + RATE_WINDOW.as_secs() as i64, 0),
    };
    let limit = st.points_per_minute;
    let allowed = used < limit;
    let used = if allowed { used + 1 } else { used };
    st.window = Some((started, reset, used));
    let rate_headers = |response: Response| {
        response
            .header("Ratelimit-Limit", limit.to_string())
            .header("Ratelimit-Remaining", (limit.saturating_sub(used)).to_string())
            .header("Ratelimit-Reset", reset.to_string())
    };
    if !allowed {
        return rate_headers(twitch_error(429, "Too Many Requests"));
    }

    let mut first = HELIX_DEFAULT_FIRST;
    let mut offset = 0;
    let pairs = query_pairs(req.query().unwrap_or(""));
    for (key, value) in &pairs {
        match key.as_str() {
            "first" => match value.parse::<u64>() {
                Ok(n) if (1..=HELIX_MAX_FIRST).contains(&n) => first = n,
                _ => {
                    let message =
                        "The parameter \"first\" was malformed: the value must be between 1 and 100";
                    return rate_headers(twitch_error(400, message));
                }
            },
            "after" if helix_invalid_cursor_now(st) => {
                return rate_headers(twitch_error(400, "invalid cursor"));
            }
            "after" => match decode_cursor(value) {
                Some(n) => offset = n,
                None => return rate_headers(twitch_error(400, "The parameter \"after\" was malformed")),
            },
            _ => {}
        }
    }
    match endpoint(st, &pairs, first as usize, offset) {
        Ok(body) => rate_headers(json_ok(&body)),
        Err(refusal) => rate_headers(refusal),
    }
}

/// Counts a Helix request with a cursor; true when it is to be refused as an invalid cursor
/// (every Nth, per [`SimListing::set_invalid_cursor_every`]).
pub(super) fn helix_invalid_cursor_now(st: &mut State) -> bool {
    st.cursor_requests += 1;
    st.invalid_cursor_every
        .is_some_and(|n| n > 0 && st.cursor_requests % n == 0)
}

/// `data` of one page of `items` (`first` from `offset`) with Helix's pagination.
pub(super) fn helix_page(items: Vec<Value>, first: usize, offset: usize) -> Value {
    let end = offset.saturating_add(first).min(items.len());
    let start = offset.min(end);
    let pagination = if end < items.len() {
        json!({"cursor": encode_cursor(end)})
    } else {
        json!({})
    };
    let data: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    json!({"data": data, "pagination": pagination})
}

pub(super) fn helix_streams(
    st: &State,
    _: &[(String, String)],
    first: usize,
    offset: usize,
) -> Result<Value, Response> {
    let order = ordered(st);
    let end = offset.saturating_add(first).min(order.len());
    let start = offset.min(end);
    let data: Vec<Value> = order[start..end].iter().map(|s| helix_item(s)).collect();
    let pagination = if end < order.len() {
        json!({"cursor": encode_cursor(end)})
    } else if st.looping_last_cursor && !order.is_empty() {
        // Twitch's last page often carries a cursor that leads back to page 1.
        json!({"cursor": encode_cursor(0)})
    } else {
        json!({})
    };
    Ok(json!({"data": data, "pagination": pagination}))
}

/// `/helix/videos?user_id=` (Twitch also takes `id` or `game_id`; the simulator needs only
/// `user_id`). Every simulated video is an archive: `type` other than `all` or `archive`
/// lists nothing.
pub(super) fn helix_videos(
    st: &State,
    pairs: &[(String, String)],
    first: usize,
    offset: usize,
) -> Result<Value, Response> {
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(user_id) = param("user_id") else {
        return Err(twitch_error(400, "Missing required parameter \"user_id\""));
    };
    let Ok(user_id) = user_id.parse::<u64>() else {
        return Err(twitch_error(400, "Invalid user_id"));
    };
    let archives = matches!(param("type"), None | Some("all" | "archive"));
    let videos = st.videos.get(&user_id).filter(|_| archives);
    let items: Vec<Value> = videos
        .into_iter()
        .flatten()
        .map(|v| {
            let login = v.login();
            let mut item = json!({
                "id": v.video_id.to_string(),
                "stream_id": v.stream_id.to_string(),
                "user_id": user_id.to_string(),
                "user_login": login,
                "user_name": login,
                "title": format!("archive of {}", v.stream_id),
                "description": "",
                "created_at": rfc3339(v.created_at),
                "published_at": rfc3339(v.created_at),
                "url": format!("https://www.twitch.tv/videos/{}", v.video_id),
                "thumbnail_url": if processing(st, v.stream_id) {
                    PROCESSING_THUMBNAIL.to_string()
                } else {
                    v.thumbnail_url()
                },
                "viewable": if v.public { "public" } else { "private" },
                "view_count": 0,
                "language": "en",
                "type": "archive",
                "duration": "0s",
            });
            // Null when nothing is muted; left out while withheld.
            if !st.mute_info_withheld {
                item["muted_segments"] = if v.muted.is_empty() {
                    Value::Null
                } else {
                    v.muted
                        .iter()
                        .map(|m| json!({"duration": m.duration, "offset": m.offset}))
                        .collect()
                };
            }
            item
        })
        .collect();
    Ok(helix_page(items, first, offset))
}

/// Whether Helix shows the placeholder thumbnail for a video of this broadcast.
pub(super) fn processing(st: &State, stream_id: u64) -> bool {
    let Some(period) = st.processing_period else {
        return false;
    };
    st.streams.contains_key(&stream_id) || st.ended.get(&stream_id).is_some_and(|at| at.elapsed() < period)
}

pub(super) fn helix_item(s: &LiveStream) -> Value {
    json!({
        "id": s.stream_id.to_string(),
        "user_id": s.streamer_id.to_string(),
        "user_login": s.login,
        "user_name": s.login,
        "game_id": s.game_id,
        "game_name": s.game_name,
        "type": "live",
        "title": s.title,
        "viewer_count": s.viewers,
        "started_at": rfc3339(s.started_at),
        "language": s.language,
        "is_mature": s.is_mature
    })
}

/// `/helix/streams?user_id=…`: the live streams of those channels (at most 100 ids).
pub(super) fn helix_streams_of_users(
    st: &State,
    pairs: &[(String, String)],
    first: usize,
    offset: usize,
) -> Result<Value, Response> {
    let ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "user_id")
        .map(|(_, v)| v.as_str())
        .collect();
    if ids.len() > CONFIRM_MAX_IDS {
        return Err(twitch_error(
            400,
            "The parameter \"user_id\" may be given at most 100 times",
        ));
    }
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| id.parse::<u64>().ok())
        .filter_map(|id| live_stream_of(st, id))
        .map(helix_item)
        .collect();
    Ok(helix_page(items, first, offset))
}

/// `/helix/users?login=…&id=…`: the known channels among those asked (at most 100), unknown
/// ones left out.
pub(super) fn helix_users(
    st: &State,
    pairs: &[(String, String)],
    _first: usize,
    _offset: usize,
) -> Result<Value, Response> {
    let asked: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k == "login" || k == "id").collect();
    if asked.len() > CONFIRM_MAX_IDS {
        return Err(twitch_error(
            400,
            "The parameters \"login\" and \"id\" may be given at most 100 times",
        ));
    }
    let data: Vec<Value> = asked
        .iter()
        .filter_map(|(key, value)| match key.as_str() {
            "login" => user_by_login(st, value),
            _ => value
                .parse::<u64>()
                .ok()
                .and_then(|id| Some((id, st.users.get(&id)?.as_str()))),
        })
        .map(|(id, login)| json!({"id": id.to_string(), "login": login, "display_name": login}))
        .collect();
    Ok(json!({"data": data}))
}

pub(super) fn token(st: &mut State, req: &Request) -> Response {
    // Twitch takes the parameters from a form body; a secret only in the query string is
    // refused while `reject_query_secrets` is set (the default).
    let form = String::from_utf8_lossy(&req.body);
    let in_body = query_pairs(&form).iter().any(|(name, _)| name == "client_secret");
    if st.reject_query_secrets && !in_body {
        return twitch_error(400, "missing client secret (send it in the form body)");
    }
    let params: HashMap<String, String> = query_pairs(req.query().unwrap_or(""))
        .into_iter()
        .chain(query_pairs(&form))
        .collect();
    let param = |name: &str| params.get(name).map_or("", String::as_str);
    if param("grant_type") != "client_credentials" {
        return twitch_error(400, "unsupported grant type");
    }
    if param("client_id") != st.client_id {
        return twitch_error(400, "invalid client");
    }
    if param("client_secret").is_empty() {
        return twitch_error(403, "invalid client secret");
    }
    st.tokens_issued += 1;
    let value = format!("simtoken{:016x}", st.tokens_issued);
    let lifetime = st.token_lifetime;
    st.tokens.insert(
        value.clone(),
        Token {
            client_id: st.client_id.clone(),
            expires: Instant::now() + lifetime,
        },
    );
    json_ok(&json!({"access_token": value, "expires_in": lifetime.as_secs(), "token_type": "bearer"}))
}
