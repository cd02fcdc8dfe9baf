//! A deliberately tiny HTTP/1.1 server for the simulators, built on `std::net` and threads.
//!
//! One accept thread per listener, one thread per connection, keep-alive with `Content-Length`
//! or chunked framing. Only what the simulators need: origin-form targets, `Content-Length`
//! request bodies (for a future GQL simulator), GET/HEAD semantics (HEAD drops the body but
//! keeps its framing headers). A [`Handler`] turns a parsed [`Request`] into a [`Reply`], which
//! can also be a fault: hold the connection silently ([`Reply::Hold`]) or reset it
//! ([`Reply::Reset`]). Bodies may be streamed by a producer closure, e.g. a trickle or an
//! endless body; producers get a [`StopSignal`] so that shutdown interrupts them.
//!
//! Shutdown (explicit or on drop) wakes the accept thread with a self-connection, shuts down
//! every open socket (which unblocks reads and writes in connection threads) and joins all
//! threads, so a dropped server leaves nothing running.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Cap on request line + headers; keeps memory per connection bounded.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Cap on the number of request headers.
pub const MAX_HEADERS: usize = 100;
/// Cap on a request body (`Content-Length` only; chunked request bodies get 501).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// A connection idle (or a request head stalled) this long is closed, so leaked client
/// connections do not pin threads forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed request. `target` is exactly what the client sent (path and query).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub http11: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Writes a streamed body. Returning `Err` closes the connection without finishing the body.
pub type Producer = Box<dyn FnOnce(&mut dyn Write, &StopSignal) -> io::Result<()> + Send>;

pub enum Body {
    Bytes(Vec<u8>),
    /// `len: Some(n)` is sent as `Content-Length: n` (the producer must write exactly `n`
    /// bytes or the connection is closed); `None` is sent chunked.
    Stream {
        len: Option<u64>,
        produce: Producer,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { len, .. } => write!(f, "Stream {{ len: {len:?} }}"),
        }
    }
}

/// A response description. Framing headers (`Content-Length`, `Transfer-Encoding`) are
/// derived from `body`; a `Connection: close` header makes the server close afterwards.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body.into()),
        }
        .header("Content-Type", content_type)
    }

    pub fn stream(status: u16, content_type: &str, len: Option<u64>, produce: Producer) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Stream { len, produce },
        }
        .header("Content-Type", content_type)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

#[derive(Debug)]
pub enum Reply {
    Respond(Response),
    /// Never answer; keep the connection open until the client leaves or the server stops.
    Hold,
    /// Close without answering. For a request without a body the head is still unread in the
    /// kernel's receive queue, and closing a socket with unread data makes Linux (and the BSDs)
    /// send a TCP RST: the client sees "connection reset by peer". With a body already read
    /// the close is an orderly FIN: the client sees EOF before any response.
    Reset,
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Reply::Respond(r)
    }
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Reply + Send + Sync + 'static,
{
    fn handle(&self, req: &Request) -> Reply {
        self(req)
    }
}

/// Set once when the server stops; streaming producers sleep on it instead of `thread::sleep`
/// so that shutdown is immediate. The flag is the data the condvar's mutex guards, so a
/// sleeper checks it and starts waiting atomically and cannot miss the wake-up.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopSignal {
    pub fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps up to `d`; returns true if the server is stopping.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = match self.cv.wait_timeout(stopped, deadline - now) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn stop(&self) {
        let mut stopped = lock(&self.stopped);
        *stopped = true;
        self.cv.notify_all();
    }
}

/// Poisoning only means another thread panicked mid-update; the simulators' state stays
/// usable, so recover instead of cascading the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Registry {
    stopped: bool,
    next_id: u64,
    streams: HashMap<u64, TcpStream>,
    handles: Vec<JoinHandle<()>>,
}

struct Shared {
    stop: StopSignal,
    registry: Mutex<Registry>,
    handler: Arc<dyn Handler>,
}

pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn bind(addr: impl ToSocketAddrs, handler: impl Handler) -> io::Result<Server> {
        Self::bind_arc(addr, Arc::new(handler))
    }

    pub fn bind_arc(addr: impl ToSocketAddrs, handler: Arc<dyn Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: StopSignal::default(),
            registry: Mutex::new(Registry::default()),
            handler,
        });
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("sim-http-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, sh))?;
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts shutting down without waiting: stops accepting and closes every connection.
    /// Lets a caller stop many servers at once before joining them.
    pub fn stop(&self) {
        let streams = {
            let mut reg = lock(&self.shared.registry);
            // Set under the registry lock so the accept thread cannot register a connection
            // after we have closed the others.
            reg.stopped = true;
            self.shared.stop.stop();
            reg.streams.drain().map(|(_, s)| s).collect::<Vec<_>>()
        };
        for s in streams {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Stops and joins every thread. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop();
        if let Some(accept) = self.accept.take() {
            let mut wake = self.addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            // The accept thread blocks in accept(); a self-connection wakes it to see the flag.
            // If even that fails, detach it rather than hang the caller.
            if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
                let _ = accept.join();
            }
        }
        let handles = std::mem::take(&mut lock(&self.shared.registry).handles);
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.is_stopped() {
            return;
        }
        match conn {
            Ok(stream) => spawn_connection(&shared, stream),
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reg = lock(&shared.registry);
    if reg.stopped {
        return;
    }
    reg.handles.retain(|h| !h.is_finished());
    let id = reg.next_id;
    reg.next_id += 1;
    let sh = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("sim-http-conn".into())
        .spawn(move || {
            // Deregisters even if the handler panics.
            let _guard = Deregister { shared: &sh, id };
            serve_connection(&sh, stream);
        });
    if let Ok(h) = spawned {
        reg.streams.insert(id, clone);
        reg.handles.push(h);
    }
}

struct Deregister<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        lock(&self.shared.registry).streams.remove(&self.id);
    }
}

enum HeadError {
    Closed,
    TooLarge,
}

/// Peeks (does not consume) until a full request head is queued; returns its length.
/// Peeking keeps the head in the kernel buffer, which is what lets [`Reply::Reset`] produce
/// a real RST.
fn peek_head(stream: &TcpStream, buf: &mut [u8], stop: &StopSignal) -> Result<usize, HeadError> {
    let deadline = Instant::now() + IDLE_TIMEOUT;
    let mut seen = 0;
    loop {
        let n = match stream.peek(buf) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Closed),
        };
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if n >= buf.len() {
            return Err(HeadError::TooLarge);
        }
        if stop.is_stopped() || Instant::now() >= deadline {
            return Err(HeadError::Closed);
        }
        if n == seen {
            // A partial head: peek would return at once again, so wait for more bytes.
            thread::sleep(Duration::from_millis(2));
        }
        seen = n;
    }
}

/// Parses request line + headers. Errors are reported to the client as 400.
fn parse_head(head: &[u8], peer: SocketAddr) -> Result<Request, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "head is not UTF-8")?;
    let mut lines = text.trim_start_matches("\r\n").split("\r\n");
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("malformed method");
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("malformed target");
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err("unsupported version"),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("malformed header name");
        }
        if headers.len() >= MAX_HEADERS {
            return Err("too many headers");
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        http11,
        headers,
        body: Vec::new(),
        peer,
    })
}

fn wants_keep_alive(req: &Request) -> bool {
    let conn = req.header("Connection").unwrap_or("").to_ascii_lowercase();
    let has = |t: &str| conn.split(',').any(|x| x.trim() == t);
    if req.http11 {
        !has("close")
    } else {
        has("keep-alive")
    }
}

fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    while !shared.stop.is_stopped() {
        let head_len = match peek_head(&stream, &mut buf, &shared.stop) {
            Ok(n) => n,
            Err(HeadError::Closed) => return,
            Err(HeadError::TooLarge) => return reject(&mut stream, 431),
        };
        let mut req = match parse_head(&buf[..head_len], peer) {
            Ok(r) => r,
            Err(_) => return reject(&mut stream, 400),
        };
        if req.header("Transfer-Encoding").is_some() {
            return reject(&mut stream, 501);
        }
        let body_len = match req.header("Content-Length").map(|v| v.parse::<usize>()) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY_BYTES => n,
            Some(Ok(_)) => return reject(&mut stream, 413),
            Some(Err(_)) => return reject(&mut stream, 400),
        };
        let mut consumed = false;
        if body_len > 0 {
            req.body = vec![0u8; body_len];
            if stream.read_exact(&mut buf[..head_len]).is_err() || stream.read_exact(&mut req.body).is_err() {
                return;
            }
            consumed = true;
        }
        let reply = shared.handler.handle(&req);
        if let Reply::Reset = reply {
            return; // dropping with the head unread sends RST (see Reply::Reset)
        }
        if !consumed && stream.read_exact(&mut buf[..head_len]).is_err() {
            return;
        }
        let resp = match reply {
            Reply::Respond(resp) => resp,
            Reply::Hold | Reply::Reset => return hold(&mut stream, &shared.stop),
        };
        match write_response(&mut stream, resp, &req, &shared.stop) {
            Ok(true) => {}
            _ => return,
        }
    }
}

/// Silently keeps the connection until the client leaves or shutdown closes the socket.
fn hold(stream: &mut TcpStream, stop: &StopSignal) {
    let mut sink = [0u8; 1024];
    while !stop.is_stopped() {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

fn reject(stream: &mut TcpStream, status: u16) {
    let body = format!("{} {}\n", status, reason(status));
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()));
    // Orderly close after a small grace so the client reads the error instead of a reset
    // caused by unread request bytes.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_millis(200);
    while Instant::now() < deadline && matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Writes the response; returns whether the connection may be reused.
fn write_response(
    stream: &mut TcpStream,
    resp: Response,
    req: &Request,
    stop: &StopSignal,
) -> io::Result<bool> {
    let close_requested = resp
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Connection") && v.to_ascii_lowercase().contains("close"));
    let keep_alive = wants_keep_alive(req) && !close_requested;
    let no_body = resp.status < 200 || resp.status == 204 || resp.status == 304;
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        let framing = ["Content-Length", "Transfer-Encoding", "Connection"];
        if !framing.iter().any(|f| k.eq_ignore_ascii_case(f)) && !v.contains(['\r', '\n']) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !no_body {
        match &resp.body {
            Body::Bytes(b) => head.push_str(&format!("Content-Length: {}\r\n", b.len())),
            Body::Stream { len: Some(n), .. } => head.push_str(&format!("Content-Length: {n}\r\n")),
            Body::Stream { len: None, .. } => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
    }
    head.push_str(match (keep_alive, req.http11) {
        (false, _) => "Connection: close\r\n",
        (true, false) => "Connection: keep-alive\r\n",
        (true, true) => "",
    });
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if no_body || req.is_head() {
        stream.write_all(&out)?;
        return Ok(keep_alive);
    }
    match resp.body {
        Body::Bytes(b) => {
            out.extend_from_slice(&b);
            stream.write_all(&out)?;
            Ok(keep_alive)
        }
        Body::Stream {
            len: Some(n),
            produce,
        } => {
            stream.write_all(&out)?;
            let mut w = Limited {
                inner: stream,
                left: n,
            };
            produce(&mut w, stop)?;
            Ok(keep_alive && w.left == 0)
        }
        Body::Stream { len: None, produce } => {
            stream.write_all(&out)?;
            produce(&mut Chunked { inner: stream }, stop)?;
            stream.write_all(b"0\r\n\r\n")?;
            Ok(keep_alive)
        }
    }
}

/// Refuses to write past the declared `Content-Length`.
struct Limited<'a> {
    inner: &'a mut TcpStream,
    left: u64,
}

impl Write for Limited<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(io::Error::other("body exceeds declared Content-Length"));
        }
        let take = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.write(&buf[..take])?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Each write becomes one chunk, sent in a single syscall so a trickle is one packet a byte.
struct Chunked<'a> {
    inner: &'a mut TcpStream,
}

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut chunk = format!("{:x}\r\n", buf.len()).into_bytes();
        chunk.extend_from_slice(buf);
        chunk.extend_from_slice(b"\r\n");
        self.inner.write_all(&chunk)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests;
