//! Fetching over HTTP: the only module that knows ureq.
//!
//! One [`Fetcher`] holds one agent, so connections to a domain are reused across candidates
//! (the original tool opened a connection per request). Every phase is bounded: connecting by
//! `connect_timeout`, the whole exchange — head and body — by `request_timeout` (or a domain's
//! own `timeout`), and the body by a byte cap, so a blackholed, trickling or endlessly streaming
//! server costs at most its timeout and a bounded buffer. Failures are typed so callers can tell
//! "the object is not there" (an answer) from "the domain is broken" (a [`FetchError`]).
//!
//! [`Pacer`] is the request budget: a rate in requests per second turned into evenly spaced
//! slots. It is plain data over `Instant`s so it can be shared behind a lock and tested without
//! sleeping.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

/// Bounds applied to every request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FetchSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Bodies of "found" answers larger than this are refused.
    pub max_body_bytes: usize,
}

impl FetchSettings {
    /// The bounds the configuration's `[limits]` set.
    pub fn from_limits(limits: &crate::config::LimitsConfig) -> FetchSettings {
        FetchSettings {
            connect_timeout: limits.connect_timeout,
            request_timeout: limits.request_timeout,
            max_body_bytes: limits.max_playlist_bytes,
        }
    }
}

/// Bodies of answers that are not read for their content (403 pages and the like) are drained
/// up to this size so the connection can be reused, and no further.
const MAX_DRAIN_BYTES: u64 = 64 * 1024;

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The body when the caller asked for it (status in `read_body_for`), else empty.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when present and numeric.
    pub retry_after: Option<Duration>,
}

/// Why no answer came back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out {phase} after {after:?}")]
    Timeout { phase: &'static str, after: Duration },
    #[error("host name not found (DNS)")]
    Dns,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection reset or closed early: {0}")]
    Reset(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("answer is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("not valid HTTP: {0}")]
    Protocol(String),
    #[error("{0}")]
    Other(String),
}

impl FetchError {
    /// A short fixed name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Dns => "dns",
            FetchError::Connect(_) => "connect",
            FetchError::Reset(_) => "reset",
            FetchError::Tls(_) => "tls",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Protocol(_) => "protocol",
            FetchError::Other(_) => "other",
        }
    }
}

/// A shared HTTP client with the appliance's bounds.
#[derive(Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    settings: FetchSettings,
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_recv_response(Some(settings.request_timeout))
            .timeout_global(Some(settings.request_timeout))
            .max_redirects(3)
            .max_idle_connections_per_host(8)
            .max_response_header_size(64 * 1024)
            .user_agent(concat!("vodprobe/", env!("CARGO_PKG_VERSION")))
            .build();
        Fetcher {
            agent: config.into(),
            settings,
        }
    }

    pub fn settings(&self) -> FetchSettings {
        self.settings
    }

    /// GETs `url`. The body is read (up to `max_body_bytes`) only when the status is in
    /// `read_body_for`; `timeout` replaces `request_timeout` for this request.
    pub fn get(
        &self,
        url: &str,
        read_body_for: &[u16],
        timeout: Option<Duration>,
    ) -> Result<Answer, FetchError> {
        let whole = timeout.unwrap_or(self.settings.request_timeout);
        let request = self
            .agent
            .get(url)
            .config()
            .timeout_recv_response(Some(whole))
            .timeout_global(Some(whole))
            .build();
        let mut response = request
            .call()
            .map_err(|error| classify(error, self.settings, whole))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = if read_body_for.contains(&status) {
            read_capped(response.body_mut(), self.settings, whole)?
        } else {
            // Drain a small body so the connection returns to the pool; a large one is dropped
            // with its connection rather than read.
            let _ = response
                .body_mut()
                .with_config()
                .limit(MAX_DRAIN_BYTES)
                .read_to_vec();
            Vec::new()
        };
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// Asks whether `url` exists without reading it: a HEAD request, answered with its status
    /// (the body, if a server sends one, is not read). `timeout` replaces `request_timeout`.
    pub fn head(&self, url: &str, timeout: Option<Duration>) -> Result<u16, FetchError> {
        let whole = timeout.unwrap_or(self.settings.request_timeout);
        let request = self
            .agent
            .head(url)
            .config()
            .timeout_recv_response(Some(whole))
            .timeout_global(Some(whole))
            .build();
        let response = request
            .call()
            .map_err(|error| classify(error, self.settings, whole))?;
        Ok(response.status().as_u16())
    }
}

/// The HTTP methods [`Fetcher::send`] speaks (the JSON APIs need no others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// An answer from a JSON API: unlike [`Answer`], the body is always read (up to the cap) and
/// the response headers are kept, because APIs put rate-limit state and error details there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAnswer {
    pub status: u16,
    /// Response headers in arrival order, names lowercased; values that are not text are dropped.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when present and numeric.
    pub retry_after: Option<Duration>,
}

impl ApiAnswer {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl Fetcher {
    /// Sends one request to a JSON API under the same bounds as [`Fetcher::get`] (connect and
    /// whole-request timeouts, `max_body_bytes`), with `headers` added. The body of every
    /// answer is read, whatever its status, since API errors explain themselves in it. A GET
    /// carries no body: passing one is refused rather than silently dropped.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<ApiAnswer, FetchError> {
        let whole = self.settings.request_timeout;
        let result = match method {
            Method::Get => {
                if body.is_some() {
                    return Err(FetchError::Other("a GET request carries no body".into()));
                }
                with_headers(self.agent.get(url), headers, whole).call()
            }
            Method::Post => {
                let request = with_headers(self.agent.post(url), headers, whole);
                match body {
                    Some(bytes) => request.send(bytes),
                    None => request.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|error| classify(error, self.settings, whole))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let retry_after = headers
            .iter()
            .find(|(name, _)| name == "retry-after")
            .and_then(|(_, value)| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_capped(response.body_mut(), self.settings, whole)?;
        Ok(ApiAnswer {
            status,
            headers,
            body,
            retry_after,
        })
    }
}

/// Adds the caller's headers and the whole-request timeout to a request of either body kind.
fn with_headers<B>(
    request: ureq::RequestBuilder<B>,
    headers: &[(&str, String)],
    whole: Duration,
) -> ureq::RequestBuilder<B> {
    let request = headers.iter().fold(request, |request, (name, value)| {
        request.header(*name, value.as_str())
    });
    request
        .config()
        .timeout_recv_response(Some(whole))
        .timeout_global(Some(whole))
        .build()
}

/// Reads a body up to `max_body_bytes`; a longer one is refused, not truncated.
fn read_capped(
    body: &mut ureq::Body,
    settings: FetchSettings,
    whole: Duration,
) -> Result<Vec<u8>, FetchError> {
    let limit = settings.max_body_bytes;
    body.with_config()
        .limit(limit as u64)
        .read_to_vec()
        .map_err(|error| match error {
            ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge { limit },
            other => classify(other, settings, whole),
        })
}

fn classify(error: ureq::Error, settings: FetchSettings, whole: Duration) -> FetchError {
    match error {
        ureq::Error::Timeout(timeout) => {
            let (phase, after) = match timeout {
                ureq::Timeout::Connect | ureq::Timeout::Resolve => ("connecting", settings.connect_timeout),
                ureq::Timeout::RecvResponse => ("waiting for the response head", whole),
                ureq::Timeout::RecvBody => ("reading the body", whole),
                _ => ("before the answer was complete", whole),
            };
            FetchError::Timeout { phase, after }
        }
        ureq::Error::HostNotFound => FetchError::Dns,
        ureq::Error::ConnectionFailed => FetchError::Connect("could not connect".into()),
        // A failed handshake (unknown issuer, wrong name) surfaces as an I/O error wrapping
        // the TLS library's own.
        ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            FetchError::Tls(io.to_string())
        }
        // The system resolver's failure is an uncategorised I/O error; std words it so.
        ureq::Error::Io(io) if io.to_string().starts_with("failed to lookup address") => FetchError::Dns,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => FetchError::Connect("connection refused".into()),
            ErrorKind::TimedOut | ErrorKind::WouldBlock => FetchError::Timeout {
                phase: "reading",
                after: whole,
            },
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof => FetchError::Reset(io.to_string()),
            _ => FetchError::Other(io.to_string()),
        },
        ureq::Error::Tls(message) => FetchError::Tls(message.to_string()),
        ureq::Error::Rustls(error) => FetchError::Tls(error.to_string()),
        ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge {
            limit: settings.max_body_bytes,
        },
        ureq::Error::Protocol(error) => FetchError::Protocol(error.to_string()),
        other => FetchError::Other(other.to_string()),
    }
}

/// Evenly spaced request slots at `rate` per second. A request takes the next free slot; slots
/// not used are not saved up beyond one, so an idle period never turns into a burst.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(requests_per_second: f64) -> Pacer {
        let rate = if requests_per_second.is_finite() && requests_per_second > 0.0 {
            requests_per_second
        } else {
            1.0
        };
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: None,
        }
    }

    /// The time between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the next request may start.
    pub fn ready_at(&self, now: Instant) -> Instant {
        self.next.map_or(now, |next| next.max(now))
    }

    /// Takes the slot at `ready_at(now)` and returns it.
    pub fn take(&mut self, now: Instant) -> Instant {
        let slot = self.ready_at(now);
        self.next = Some(slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_spaces_requests_and_never_bursts_after_idle() {
        let start = Instant::now();
        let mut pacer = Pacer::new(4.0);
        let slots: Vec<Duration> = (0..4).map(|_| pacer.take(start) - start).collect();
        assert_eq!(
            slots,
            vec![
                Duration::ZERO,
                Duration::from_millis(250),
                Duration::from_millis(500),
                Duration::from_millis(750)
            ]
        );
        // After a long idle period, only one request is immediate; the next waits an interval.
        let later = start + Duration::from_secs(60);
        assert_eq!(pacer.take(later), later);
        assert_eq!(pacer.take(later), later + Duration::from_millis(250));
    }

    #[test]
    fn a_name_that_does_not_resolve_is_a_dns_failure() {
        let fetcher = Fetcher::new(FetchSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            max_body_bytes: 1024,
        });
        // `.invalid` never resolves (RFC 2606).
        let error = fetcher
            .get("http://vodprobe-fault.invalid/x", &[200], None)
            .expect_err("no such host");
        assert!(matches!(error, FetchError::Dns), "{error:?}");
        assert_eq!(error.kind(), "dns");
    }

    #[test]
    fn pacer_refuses_nonsense_rates() {
        let now = Instant::now();
        let mut pacer = Pacer::new(0.0);
        pacer.take(now);
        assert_eq!(pacer.ready_at(now), now + Duration::from_secs(1));
    }
}
