//! Our own accept loop around warp's filter. warp 0.4 drives hyper without a timer and without
//! a connection cap, so a slowloris client would hold a connection forever and a flood would
//! open sockets without bound. Here:
//!
//! * at most `max_connections` are open; at the cap, the connection that has gone longest
//!   without a request in flight (idle keep-alive, or a slowloris client still trickling its
//!   headers) is closed to make room, and if every one is busy new ones wait in the kernel's
//!   backlog — so clients that never finish a request cannot take every slot;
//! * hyper gets a timer: a request's headers must arrive within `header_timeout` (this also
//!   closes keep-alive connections that never send another request);
//! * a connection that moves no byte for `idle_timeout` with no request in flight is closed
//!   (a client that stops reading its response);
//! * at most `max_concurrent_requests` are handled at once; beyond that the answer is 503 with
//!   `Retry-After`, at once, never a queue;
//! * headers are capped (hyper's read buffer) and bodies by the routes;
//! * shutdown stops accepting, asks every connection to finish its request, and gives up
//!   after `shutdown_grace`.
//!
//! The settings arrive through a watch channel, so a configuration reload applies to the next
//! request (the cap) and the next connection (timeouts); open connections keep theirs.

use super::Backend;
use super::handlers::ApiError;
use super::routes::{routes, to_response};
use crate::metrics::{Kind, Metrics};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::http::{HeaderValue, Method, Request};

/// hyper's read buffer, which bounds a request's headers (hyper answers 431 beyond it).
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerSettings {
    pub max_concurrent_requests: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl ServerSettings {
    pub fn from_config(api: &crate::config::ApiConfig) -> ServerSettings {
        ServerSettings {
            max_concurrent_requests: api.max_concurrent_requests,
            max_connections: api.max_connections,
            header_timeout: api.header_timeout,
            idle_timeout: api.idle_timeout,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// The route label of a path for metrics: a fixed set, never the raw path.
fn route_label(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (_, ["api", "v1", "vods"]) => "vods",
        (_, ["api", "v1", "vods", _]) => "vod",
        (_, ["vods", _, _]) => "playlist",
        (_, ["vods", _, _, _]) => "variant_playlist",
        (_, ["api", "v1", "streamers"]) => "streamers",
        (_, ["api", "v1", "categories"]) => "categories",
        (_, ["api", "v1", "languages"]) => "languages",
        (_, ["api", "v1", "domains"]) => "domains",
        (_, ["api", "v1", "status", "series"]) => "status_series",
        (_, ["api", "v1", "lookups"]) => "lookups",
        (_, ["api", "v1", "lookups", _]) => "lookup",
        (_, ["api", "v1", "requeue"]) => "requeue",
        (_, ["api", "v1", "openapi.json"]) => "openapi",
        (_, ["feeds", "captures.atom"]) => "feed_captures",
        (_, ["feeds", "channels", _]) => "feed_channel",
        (_, ["feeds", "events.atom"]) => "feed_events",
        (_, ["feeds", "channels", _, "events.atom"]) => "feed_channel_events",
        (_, ["healthz"]) => "healthz",
        (_, ["metrics"]) => "metrics",
        (_, [""]) | (_, ["web", _]) => "web",
        _ => "other",
    }
}

/// What every request handler shares.
struct RequestContext {
    backend: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    in_flight: AtomicUsize,
    settings: watch::Receiver<ServerSettings>,
}

/// One request slot of `RequestContext::in_flight`, given back on drop (hyper drops the
/// handler's future when its client goes away).
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestContext {
    /// A slot if fewer than `max_concurrent_requests` are in flight, else the cap.
    fn try_slot(&self) -> Result<Slot<'_>, usize> {
        let cap = self.settings.borrow().max_concurrent_requests;
        let slot = Slot(&self.in_flight);
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= cap {
            return Err(cap);
        }
        Ok(slot)
    }
}

/// The open connections, so that at the cap the accept loop can close the one that has gone
/// longest without a request in flight.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: std::sync::Mutex<std::collections::HashMap<u64, Arc<ConnectionState>>>,
}

/// What the accept loop knows of one connection.
struct ConnectionState {
    /// Milliseconds (of the server's clock) since when no request has been in flight;
    /// `u64::MAX` while one is.
    free_since_ms: AtomicU64,
    in_flight: AtomicUsize,
    shed: tokio::sync::Notify,
}

/// Connections free for less than this are not shed: a keep-alive client between two
/// requests should not lose its connection to a newcomer.
const SHED_AFTER: Duration = Duration::from_millis(250);

impl Registry {
    fn add(&self, now_ms: u64) -> (u64, Arc<ConnectionState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            free_since_ms: AtomicU64::new(now_ms),
            in_flight: AtomicUsize::new(0),
            shed: tokio::sync::Notify::new(),
        });
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, state.clone());
        }
        (id, state)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Asks the connection free for longest (at least [`SHED_AFTER`]) to close; false when
    /// every one is busy or recently used.
    fn shed_one(&self, now_ms: u64) -> bool {
        let Ok(open) = self.open.lock() else {
            return false;
        };
        let oldest = open
            .values()
            .map(|state| (state.free_since_ms.load(Ordering::Relaxed), state))
            .filter(|(since, _)| *since != u64::MAX)
            .filter(|(since, _)| now_ms.saturating_sub(*since) >= SHED_AFTER.as_millis() as u64)
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, state)) => {
                // Marked busy so that the next call picks another while this one closes.
                state.free_since_ms.store(u64::MAX, Ordering::Relaxed);
                state.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A socket that notes when it last moved a byte.
struct Watched {
    inner: TcpStream,
    base: Instant,
    last_activity_ms: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let now = self.base.elapsed().as_millis() as u64;
        self.last_activity_ms.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn describe_metrics(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route and status.",
    );
    metrics.describe(
        "vodprobe_http_request_duration_seconds",
        Kind::Histogram,
        "Time to answer an HTTP request, by route.",
    );
    metrics.describe(
        "vodprobe_http_connections_open",
        Kind::Gauge,
        "HTTP connections open now.",
    );
    metrics.describe(
        "vodprobe_http_connections_total",
        Kind::Counter,
        "HTTP connections accepted, closed for idling, and shed at the connection cap.",
    );
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    mut settings: watch::Receiver<ServerSettings>,
    shutdown: CancellationToken,
) {
    let metrics = backend.metrics();
    describe_metrics(&metrics);
    let context = Arc::new(RequestContext {
        backend: backend.clone(),
        metrics: metrics.clone(),
        in_flight: AtomicUsize::new(0),
        settings: settings.clone(),
    });
    let mut max_connections = settings.borrow_and_update().max_connections;
    let connections = Arc::new(Semaphore::new(max_connections));
    let open = Arc::new(AtomicUsize::new(0));
    let registry = Arc::new(Registry::default());
    let clock = Instant::now();
    let service = warp::service(routes(backend));
    let tracker = TaskTracker::new();
    loop {
        if settings.has_changed().unwrap_or(false) {
            let wanted = settings.borrow_and_update().max_connections;
            resize(&connections, max_connections, wanted);
            max_connections = wanted;
        }
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => break,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                // At the cap: make room by closing a connection with nothing in flight, and
                // look again now and then while every one is busy.
                let mut permit = None;
                while permit.is_none() {
                    if registry.shed_one(clock.elapsed().as_millis() as u64) {
                        metrics.inc("vodprobe_http_connections_total", &[("event", "shed")]);
                    }
                    permit = tokio::select! {
                        permit = connections.clone().acquire_owned() => match permit {
                            Ok(permit) => Some(permit),
                            Err(_) => break,
                        },
                        () = tokio::time::sleep(SHED_AFTER) => None,
                        () = shutdown.cancelled() => break,
                    };
                }
                match permit {
                    Some(permit) => permit,
                    None => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(_error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        metrics.inc("vodprobe_http_connections_total", &[("event", "accepted")]);
        let open_now = open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.set("vodprobe_http_connections_open", &[], open_now as f64);
        let context = context.clone();
        let service = service.clone();
        let shutdown = shutdown.clone();
        let open = open.clone();
        let settings = *settings.borrow();
        let (id, state) = registry.add(clock.elapsed().as_millis() as u64);
        let registry = registry.clone();
        tracker.spawn(async move {
            connection(stream, context.clone(), service, settings, state, clock, shutdown).await;
            registry.remove(id);
            let open_now = open.fetch_sub(1, Ordering::Relaxed) - 1;
            context
                .metrics
                .set("vodprobe_http_connections_open", &[], open_now as f64);
            drop(permit);
        });
    }
    tracker.close();
    let grace = settings.borrow().shutdown_grace;
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
}

/// Changes the connection cap from `from` to `to`. Shrinking waits for connections to close:
/// the surplus permits are taken as they come back and never returned.
fn resize(connections: &Arc<Semaphore>, from: usize, to: usize) {
    if to > from {
        connections.add_permits(to - from);
    } else if to < from {
        let surplus = u32::try_from(from - to).unwrap_or(u32::MAX);
        let connections = connections.clone();
        tokio::spawn(async move {
            if let Ok(permits) = connections.acquire_many_owned(surplus).await {
                permits.forget();
            }
        });
    }
}

async fn connection<S>(
    stream: TcpStream,
    context: Arc<RequestContext>,
    service: S,
    settings: ServerSettings,
    state: Arc<ConnectionState>,
    clock: Instant,
    shutdown: CancellationToken,
) where
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let base = Instant::now();
    let last_activity_ms = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        base,
        last_activity_ms: last_activity_ms.clone(),
    });
    let metrics = context.metrics.clone();
    let handler = {
        let state = state.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let context = context.clone();
            let mut service = service.clone();
            let state = state.clone();
            async move {
                state.in_flight.fetch_add(1, Ordering::Relaxed);
                state.free_since_ms.store(u64::MAX, Ordering::Relaxed);
                let response = handle(request, &context, &mut service).await;
                if state.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
                    let now = clock.elapsed().as_millis() as u64;
                    state.free_since_ms.store(now, Ordering::Relaxed);
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connection = builder.serve_connection(io, handler);
    tokio::pin!(connection);
    let check_every = (settings.idle_timeout / 4).max(Duration::from_millis(50));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = state.shed.notified() => {
                // Chosen because nothing was in flight; if a request began since, let it finish.
                if state.in_flight.load(Ordering::Relaxed) == 0 {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep(check_every) => {
                let idle_ms = base.elapsed().as_millis() as u64 - last_activity_ms.load(Ordering::Relaxed);
                if state.in_flight.load(Ordering::Relaxed) == 0 && idle_ms >= settings.idle_timeout.as_millis() as u64 {
                    metrics.inc("vodprobe_http_connections_total", &[("event", "idle_closed")]);
                    return;
                }
            }
        }
    }
}

async fn handle<S>(
    request: Request<Incoming>,
    context: &RequestContext,
    service: &mut S,
) -> warp::reply::Response
where
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>,
{
    let started = Instant::now();
    let route = route_label(request.method(), request.uri().path());
    let mut response = if request.method() == Method::OPTIONS {
        preflight()
    } else {
        match context.try_slot() {
            Ok(slot) => {
                let response = match service.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                drop(slot);
                response
            }
            Err(cap) => to_response(Err(ApiError::unavailable(format!(
                "over {cap} requests in flight; retry shortly"
            )))),
        }
    };
    let origin = context.backend.cors_origin();
    if !origin.is_empty()
        && let Ok(origin) = HeaderValue::from_str(&origin)
    {
        let headers = response.headers_mut();
        headers.insert("access-control-allow-origin", origin);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("ETag, Retry-After, Location"),
        );
    }
    let status = response.status().as_u16().to_string();
    context.metrics.inc(
        "vodprobe_http_requests_total",
        &[("route", route), ("status", &status)],
    );
    context.metrics.observe(
        "vodprobe_http_request_duration_seconds",
        &[("route", route)],
        started.elapsed().as_secs_f64(),
    );
    response
}

/// CORS preflight: browsers ask before an admin POST with `Authorization`.
fn preflight() -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Vec::new().into());
    *response.status_mut() = warp::http::StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Authorization, Content-Type, If-None-Match"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_pattern_not_by_path() {
        let get = Method::GET;
        assert_eq!(route_label(&get, "/api/v1/vods"), "vods");
        assert_eq!(route_label(&get, "/api/v1/vods/123"), "vod");
        assert_eq!(route_label(&get, "/vods/1/2.m3u8"), "playlist");
        assert_eq!(route_label(&get, "/etc/passwd"), "other");
        assert_eq!(route_label(&get, "/healthz"), "healthz");
        assert_eq!(route_label(&get, "/"), "web");
        assert_eq!(route_label(&get, "/web/app.js"), "web");
        assert_eq!(route_label(&get, "/feeds/captures.atom"), "feed_captures");
        assert_eq!(route_label(&get, "/feeds/channels/a.m3u"), "feed_channel");
        assert_eq!(route_label(&get, "/feeds/events.atom"), "feed_events");
        assert_eq!(
            route_label(&get, "/feeds/channels/a/events.atom"),
            "feed_channel_events"
        );
    }
}
