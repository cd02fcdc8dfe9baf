//! The warp filters: which path and method reach which handler, and the one rejection handler
//! that answers everything unmatched in the JSON error envelope.

use super::Backend;
use super::cache::ReplyCache;
use super::feeds::{self, FeedRequest, FeedTarget};
use super::handlers::{self, ApiError, PlaylistRequest, Reply};
use super::web;
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection};

/// Admin request bodies are small JSON objects.
const MAX_BODY_BYTES: u64 = 16 * 1024;

pub fn to_response(result: Result<Reply, ApiError>) -> warp::reply::Response {
    let reply = result.unwrap_or_else(|error| error.reply());
    let mut response = warp::reply::Response::new(reply.body.into());
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The query string, or "" when there is none (warp's own filter rejects a missing one).
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Every route, with rejections turned into error envelopes.
pub fn routes(
    backend: Arc<dyn Backend>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with = move || {
        let backend = backend.clone();
        warp::any().map(move || backend.clone())
    };
    let lists = Arc::new(ReplyCache::default());
    let vods_cache = lists.clone();
    let vods = warp::path!("api" / "v1" / "vods")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .then(move |backend, raw| {
            let cache = vods_cache.clone();
            async move { to_response(handlers::cached(&cache, "vods", backend, raw, handlers::vods).await) }
        });
    let events = warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .then(|backend, raw| async move { to_response(super::events::events(backend, raw).await) });
    let status_series = warp::path!("api" / "v1" / "status" / "series")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .then(|backend, raw| async move { to_response(super::status::series(backend, raw).await) });
    let vod =
        warp::path!("api" / "v1" / "vods" / String)
            .and(warp::get())
            .and(with())
            .and(raw_query())
            .then(|id, backend, raw| async move {
                to_response(handlers::vods_by_stream_id(backend, id, raw).await)
            });
    let playlist = warp::path!("vods" / String / String)
        .and(warp::get())
        .and(with())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .and(raw_query())
        .then(
            |stream_id, file, backend, accept_encoding, if_none_match, query| async move {
                let request = PlaylistRequest {
                    stream_id,
                    file,
                    variant: None,
                    accept_encoding,
                    if_none_match,
                    query,
                };
                to_response(handlers::playlist(backend, request).await)
            },
        );
    let variant = warp::path!("vods" / String / String / String)
        .and(warp::get())
        .and(with())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .and(raw_query())
        .then(
            |stream_id, start, file, backend, accept_encoding, if_none_match, query| async move {
                let request = PlaylistRequest {
                    stream_id,
                    file: start,
                    variant: Some(file),
                    accept_encoding,
                    if_none_match,
                    query,
                };
                to_response(handlers::playlist(backend, request).await)
            },
        );
    let streamers = warp::path!("api" / "v1" / "streamers")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .then(move |backend, raw| {
            let cache = lists.clone();
            async move {
                to_response(handlers::cached(&cache, "streamers", backend, raw, handlers::streamers).await)
            }
        });
    let categories = warp::path!("api" / "v1" / "categories")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .map(|backend: Arc<dyn Backend>, raw: String| to_response(handlers::categories(&*backend, &raw)));
    let languages = warp::path!("api" / "v1" / "languages")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .map(|backend: Arc<dyn Backend>, raw: String| to_response(handlers::languages(&*backend, &raw)));
    let domains = warp::path!("api" / "v1" / "domains")
        .and(warp::get())
        .and(with())
        .and(raw_query())
        .map(|backend: Arc<dyn Backend>, raw: String| to_response(handlers::domains(&*backend, &raw)));
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .and(raw_query())
        .map(|raw: String| to_response(handlers::openapi(&raw)));
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .and(with())
        .then(|backend| async move { to_response(handlers::healthz(backend).await) });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with())
        .then(|backend| async move { to_response(handlers::metrics(backend).await) });
    let page = warp::path::end()
        .and(warp::get())
        .and(with())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|backend, accept_encoding, if_none_match| {
            web_asset(backend, String::new(), accept_encoding, if_none_match)
        });
    let web_file = warp::path!("web" / String)
        .and(warp::get())
        .and(with())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|name, backend, accept_encoding, if_none_match| {
            web_asset(backend, name, accept_encoding, if_none_match)
        });
    // What every feed reads besides its target: the headers its links and validators need and
    // the query; made into the request for a target by the route.
    let feed_request = || {
        warp::header::optional::<String>("host")
            .and(warp::header::optional::<String>("x-forwarded-proto"))
            .and(warp::header::optional::<String>("if-none-match"))
            .and(warp::header::optional::<String>("if-modified-since"))
            .and(raw_query())
            .map(|host, forwarded_proto, if_none_match, if_modified_since, query| {
                Box::new(move |target| FeedRequest {
                    target,
                    host,
                    forwarded_proto,
                    if_none_match,
                    if_modified_since,
                    query,
                }) as FeedAsk
            })
    };
    let feed_all = warp::path!("feeds" / "captures.atom")
        .and(warp::get())
        .and(with())
        .and(feed_request())
        .then(|backend, ask: FeedAsk| serve_feed(backend, ask(FeedTarget::Captures)));
    let feed_channel = warp::path!("feeds" / "channels" / String)
        .and(warp::get())
        .and(with())
        .and(feed_request())
        .then(|file, backend, ask: FeedAsk| serve_feed(backend, ask(FeedTarget::Channel(file))));
    let feed_events = warp::path!("feeds" / "events.atom")
        .and(warp::get())
        .and(with())
        .and(feed_request())
        .then(|backend, ask: FeedAsk| serve_feed(backend, ask(FeedTarget::Events)));
    let feed_channel_events = warp::path!("feeds" / "channels" / String / "events.atom")
        .and(warp::get())
        .and(with())
        .and(feed_request())
        .then(|login, backend, ask: FeedAsk| serve_feed(backend, ask(FeedTarget::ChannelEvents(login))));
    let admin = {
        let with = with.clone();
        move || {
            with()
                .and(warp::header::optional::<String>("authorization"))
                .and_then(
                    |backend: Arc<dyn Backend>, authorization: Option<String>| async move {
                        match handlers::authorize(&*backend, authorization.as_deref()) {
                            Ok(()) => Ok(backend),
                            Err(error) => Err(warp::reject::custom(Refused(error))),
                        }
                    },
                )
        }
    };
    let body = || warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::bytes());
    let start_lookup = warp::path!("api" / "v1" / "lookups")
        .and(warp::post())
        .and(admin())
        .and(body())
        .then(|backend, body: bytes::Bytes| async move {
            to_response(handlers::start_lookup(backend, body.to_vec()).await)
        });
    let lookup = warp::path!("api" / "v1" / "lookups" / String)
        .and(warp::get())
        .and(admin())
        .map(|id: String, backend: Arc<dyn Backend>| to_response(handlers::lookup(&*backend, &id)));
    let requeue = warp::path!("api" / "v1" / "requeue")
        .and(warp::post())
        .and(admin())
        .and(body())
        .then(|backend, body: bytes::Bytes| async move {
            to_response(handlers::requeue(backend, body.to_vec()).await)
        });
    // Boxed in groups: one long `or` chain nests warp's types so deep that compiling this
    // crate takes many minutes.
    let lists = vods
        .or(vod)
        .unify()
        .or(page)
        .unify()
        .or(web_file)
        .unify()
        .or(playlist)
        .unify()
        .or(variant)
        .unify()
        .boxed();
    let reads = streamers
        .or(categories)
        .unify()
        .or(languages)
        .unify()
        .or(domains)
        .unify()
        .or(openapi)
        .unify()
        .or(healthz)
        .unify()
        .or(events)
        .unify()
        .or(status_series)
        .unify()
        .boxed();
    let rest = metrics
        .or(start_lookup)
        .unify()
        .or(lookup)
        .unify()
        .or(requeue)
        .unify()
        .boxed();
    let feeds = feed_all
        .or(feed_channel)
        .unify()
        .or(feed_events)
        .unify()
        .or(feed_channel_events)
        .unify()
        .boxed();
    lists
        .or(reads)
        .unify()
        .or(rest)
        .unify()
        .or(feeds)
        .unify()
        .recover(
            |rejection: Rejection| async move { Ok::<_, Infallible>(to_response(Err(rejected(&rejection)))) },
        )
        .unify()
}

/// A file of the web page; the page's policy names the configured CDN domains.
/// A feed request waiting for its target (see `feed_request` in [`routes`]).
type FeedAsk = Box<dyn FnOnce(FeedTarget) -> FeedRequest + Send>;

async fn serve_feed(backend: Arc<dyn Backend>, request: FeedRequest) -> warp::reply::Response {
    to_response(feeds::feed(backend, request).await)
}

fn web_asset(
    backend: Arc<dyn Backend>,
    name: String,
    accept_encoding: Option<String>,
    if_none_match: Option<String>,
) -> warp::reply::Response {
    let cdn_origins: Vec<String> = if name.is_empty() {
        let mut origins: Vec<String> = backend
            .domains()
            .iter()
            .filter_map(|domain| web::origin_of(&domain.url))
            .collect();
        origins.sort();
        origins.dedup();
        origins
    } else {
        Vec::new()
    };
    to_response(web::asset(&web::AssetRequest {
        name: &name,
        accept_encoding: accept_encoding.as_deref(),
        if_none_match: if_none_match.as_deref(),
        cdn_origins: &cdn_origins,
    }))
}

/// An admin route refused before its handler ran.
#[derive(Debug)]
struct Refused(ApiError);

impl warp::reject::Reject for Refused {}

fn rejected(rejection: &Rejection) -> ApiError {
    if let Some(Refused(error)) = rejection.find::<Refused>() {
        return error.clone();
    }
    if rejection.is_not_found() {
        return ApiError::not_found("no such route; the routes are described at /api/v1/openapi.json");
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new(405, "method_not_allowed", "this route does not take that method");
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::new(
            413,
            "body_too_large",
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
        );
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return ApiError::new(
            411,
            "length_required",
            "send a Content-Length header with the body",
        );
    }
    if let Some(header) = rejection.find::<warp::reject::InvalidHeader>() {
        return ApiError::new(
            400,
            "bad_header",
            format!("header {:?} is not valid", header.name()),
        );
    }
    ApiError::new(400, "bad_request", format!("{rejection:?}"))
}
