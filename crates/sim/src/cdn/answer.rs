//! How one simulated domain answers a request: its fault first, then S3's object semantics
//! (200 or 206 for an object that exists, 403 `AccessDenied` for anything else, 416 for a range
//! past the end), with CloudFront's headers.

use super::*;

/// The trickle fault's pace: one byte of playlist per interval.
const TRICKLE_INTERVAL: Duration = Duration::from_millis(200);

fn cloudfront(resp: Response, hit: bool) -> Reply {
    resp.header("Server", "AmazonS3")
        .header(
            "X-Cache",
            if hit {
                "Hit from cloudfront"
            } else {
                "Error from cloudfront"
            },
        )
        .header("Access-Control-Allow-Origin", "*")
        .into()
}

fn access_denied() -> Reply {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                <Message>Access Denied</Message><RequestId>SIMULATED0000000</RequestId>\
                <HostId>vodprobe-sim</HostId></Error>";
    cloudfront(Response::new(403, "application/xml", body), false)
}

pub(super) fn handle(state: &Mutex<State>, domain: usize, req: &Request) -> Reply {
    let mut st = lock(state);
    let now = st.now;
    let Some(d) = st.domains.get_mut(domain) else {
        return access_denied();
    };
    d.log.push(LoggedRequest {
        method: req.method.clone(),
        target: req.target.clone(),
        range: req.header("Range").map(str::to_string),
        at: now,
    });
    d.arrivals.push(Instant::now());
    let prefix = d.prefix.clone();
    match d.fault.clone() {
        Fault::None => {}
        Fault::Unavailable => {
            let body = "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD>\
                        <BODY><H1>503 ERROR</H1></BODY></HTML>";
            return cloudfront(Response::new(503, "text/html", body), false);
        }
        Fault::Forbidden => return access_denied(),
        Fault::Blackhole => return Reply::Hold,
        Fault::Reset => return Reply::Reset,
        Fault::Garbage => {
            let body =
                "<!DOCTYPE html><html><head><title>Twitch</title></head><body>Not a playlist</body></html>";
            return cloudfront(Response::new(200, "text/html", body), true);
        }
        Fault::TooManyRequests { retry_after_secs } => {
            let resp = Response::new(429, "text/plain", "Too Many Requests\n")
                .header("Retry-After", retry_after_secs.to_string());
            return cloudfront(resp, false);
        }
        Fault::SlowTrickle => {
            let produce = Box::new(|w: &mut dyn std::io::Write, stop: &crate::http::StopSignal| {
                let mut src = EndlessPlaylist::default();
                let mut pending = Vec::new();
                loop {
                    if pending.is_empty() {
                        src.fill(&mut pending, 1);
                        pending.reverse();
                    }
                    if let Some(byte) = pending.pop() {
                        w.write_all(&[byte])?;
                        w.flush()?;
                    }
                    if stop.sleep(TRICKLE_INTERVAL) {
                        // An error, not Ok: the body must not look complete.
                        return Err(std::io::Error::other("server stopping"));
                    }
                }
            });
            return cloudfront(Response::stream(200, PLAYLIST_TYPE, None, produce), true);
        }
        Fault::CutMidBody => {
            let mut whole = Vec::new();
            EndlessPlaylist::default().fill(&mut whole, 8 * 1024);
            let len = whole.len() as u64;
            let produce = Box::new(move |w: &mut dyn std::io::Write, _: &crate::http::StopSignal| {
                w.write_all(&whole[..whole.len() / 2])?;
                w.flush()?;
                Err(std::io::Error::other("cut mid-body"))
            });
            return cloudfront(Response::stream(200, PLAYLIST_TYPE, Some(len), produce), true);
        }
        Fault::HugeBody => {
            let produce = Box::new(|w: &mut dyn std::io::Write, stop: &crate::http::StopSignal| {
                let mut src = EndlessPlaylist::default();
                let mut buf = Vec::with_capacity(70 * 1024);
                while !stop.is_stopped() {
                    buf.clear();
                    src.fill(&mut buf, 64 * 1024);
                    w.write_all(&buf)?;
                }
                Err(std::io::Error::other("server stopping"))
            });
            return cloudfront(Response::stream(200, PLAYLIST_TYPE, None, produce), true);
        }
    }
    if req.method != "GET" && req.method != "HEAD" {
        return cloudfront(
            Response::new(405, "text/plain", "Method Not Allowed\n").header("Allow", "GET, HEAD"),
            false,
        );
    }
    let Some(rest) = req
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(prefix.as_str()))
    else {
        return access_denied();
    };
    let mut parts = rest.split('/');
    let (Some(dir), Some(quality), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return access_denied();
    };
    let Some(held) = st.by_dir.get(dir).and_then(|&id| st.broadcasts.get(id)) else {
        return access_denied();
    };
    if !held.b.domains.contains(&domain)
        || held.deleted.contains(&domain)
        || !held.has_quality(quality)
        || held.retired(now)
    {
        return access_denied();
    }
    if file == "index-dvr.m3u8" {
        if held.playlist_gone(now) {
            return access_denied();
        }
        return object(req, PLAYLIST_TYPE, held.playlist().into_bytes());
    }
    if !held.has_object(file, now) {
        return access_denied();
    }
    let ctype = if held.b.container == Container::Ts {
        "video/mp2t"
    } else {
        "video/mp4"
    };
    object(req, ctype, held.segment(quality, file))
}

/// An existing object, honouring `Range` the way S3 does. HEAD shares this path: the server
/// drops the body but keeps its `Content-Length`, as S3 answers HEAD.
fn object(req: &Request, ctype: &str, body: Vec<u8>) -> Reply {
    let len = body.len() as u64;
    match byte_range(req.header("Range"), len) {
        Ask::Whole => cloudfront(
            Response::new(200, ctype, body).header("Accept-Ranges", "bytes"),
            true,
        ),
        Ask::Part(first, last) => {
            // Both ends are within the body (checked by `byte_range`).
            let part = body[first as usize..=last as usize].to_vec();
            let resp = Response::new(206, ctype, part)
                .header("Accept-Ranges", "bytes")
                .header("Content-Range", format!("bytes {first}-{last}/{len}"));
            cloudfront(resp, true)
        }
        Ask::Unsatisfiable => {
            let range = req.header("Range").unwrap_or_default();
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRange</Code>\
                 <Message>The requested range is not satisfiable</Message>\
                 <RangeRequested>{}</RangeRequested><ActualObjectSize>{len}</ActualObjectSize>\
                 <RequestId>SIMULATED0000000</RequestId><HostId>vodprobe-sim</HostId></Error>",
                range.replace(['<', '>', '&'], "")
            );
            let resp =
                Response::new(416, "application/xml", body).header("Content-Range", format!("bytes */{len}"));
            cloudfront(resp, false)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ask {
    Whole,
    /// Inclusive byte positions, both inside the object.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header against an object of `len` bytes as S3 does: a single `bytes=`
/// range is served (the end clamped to the object); one starting past the end, or an empty
/// suffix, is 416; anything S3 does not honour (other units, several ranges, bad syntax,
/// first > last) is ignored and the whole object is sent.
fn byte_range(header: Option<&str>, len: u64) -> Ask {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ask::Whole;
    };
    let Some((first, last)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Ask::Whole;
    };
    let num = |s: &str| {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse::<u64>().ok()
        }
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => Ask::Whole,
        // "bytes=-N": the last N bytes.
        (true, false) => match num(last) {
            None => Ask::Whole,
            Some(n) if n == 0 || len == 0 => Ask::Unsatisfiable,
            Some(n) => Ask::Part(len - n.min(len), len - 1),
        },
        (false, true) => match num(first) {
            None => Ask::Whole,
            Some(f) if f >= len => Ask::Unsatisfiable,
            Some(f) => Ask::Part(f, len - 1),
        },
        (false, false) => match (num(first), num(last)) {
            (Some(f), Some(l)) if f <= l => {
                if f >= len {
                    Ask::Unsatisfiable
                } else {
                    Ask::Part(f, l.min(len - 1))
                }
            }
            _ => Ask::Whole,
        },
    }
}

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// An endless, valid-looking EVENT playlist (header, then `#EXTINF` / `N.ts` lines forever)
/// for the trickle and huge-body faults.
#[derive(Default)]
struct EndlessPlaylist {
    next: u64,
    started: bool,
}

impl EndlessPlaylist {
    /// Appends whole lines until at least `want` bytes were added.
    fn fill(&mut self, out: &mut Vec<u8>, want: usize) {
        let start = out.len();
        if !self.started {
            self.started = true;
            out.extend_from_slice(
                b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
                  #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TWITCH-ELAPSED-SECS:0.000\n",
            );
        }
        while out.len() - start < want {
            out.extend_from_slice(format!("#EXTINF:10.000,\n{}.ts\n", self.next).as_bytes());
            self.next += 1;
        }
    }
}
