//! A structural encoding of Twitch media playlists: store what a playlist says, not how it is
//! spelled. Pure; no I/O.
//!
//! A 4-hour Twitch playlist is about 34 KB of text that says little: a few header values, then
//! `#EXTINF:10.000,` / `N.ts` pairs that differ only in `N`, a last segment of another length,
//! some muted ranges. Here it becomes a list of operations, each rendering one or more lines:
//!
//! | first byte    | operation                    | operands                                      |
//! |---------------|------------------------------|-----------------------------------------------|
//! | `0x00..=0x3F` | a line from [`LINES`]        | —                                             |
//! | `0x40..=0x7F` | [`DECIMAL_PREFIXES`] + number | decimal                                       |
//! | `0x80..=0x9F` | [`DATE_PREFIXES`] + date-time | zigzag varint unix seconds (`%Y-%m-%dT%H:%M:%S`) |
//! | `0xC0..=0xDF` | a run of segments            | varint count, [zigzag varint start − expected], [decimal duration] |
//! | `0xF0`        | a line kept verbatim         | varint length, UTF-8 bytes                    |
//!
//! A run renders `count` pairs `#EXTINF:{duration},` / `{n}{suffix}.{ext}` for consecutive
//! `n`. Its operation byte carries the kind in bits 0–2 (`suffix × 2 + ext`, suffixes `""`,
//! `-muted`, `-unmuted`, extensions `ts`, `mp4`); bit 3 set means a start other than where the
//! previous run ended (0 at first) follows, bit 4 set means a duration follows (else the
//! previous run's). A decimal is a varint of its digits and a byte counting those after the
//! point (`10.000` → 10000, 3). So a muted range costs two runs of three bytes each. The value starts with a flags byte: bit 0 lines end in CRLF, bit 1 the text ends
//! with a line end. Anything not recognised is kept verbatim, line by line, so every UTF-8 text
//! round-trips byte for byte; the store checks that before trusting an encoding.
//!
//! The tables below are part of the stored format: entries may be appended, never changed.
//! [`record`] does the same for stream records.

use std::fmt::Write as _;

pub mod record;

/// Whole lines with a one-byte code. Append only.
pub const LINES: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-PLAYLIST-TYPE:EVENT",
    "#EXT-X-PLAYLIST-TYPE:VOD",
    "#EXT-X-ENDLIST",
    "#EXT-X-MAP:URI=\"init-0.mp4\"",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-TWITCH-DISCONTINUITY",
    "",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-VERSION:3",
    "#EXT-X-TARGETDURATION:10",
    "#EXT-X-MEDIA-SEQUENCE:0",
    "#EXT-X-TWITCH-ELAPSED-SECS:0.000",
    "#EXT-X-VERSION:6",
];

/// Line prefixes followed by a decimal number. Append only.
pub const DECIMAL_PREFIXES: &[&str] = &[
    "#EXT-X-VERSION:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-TWITCH-ELAPSED-SECS:",
    "#EXT-X-TWITCH-TOTAL-SECS:",
    "#EXT-X-DISCONTINUITY-SEQUENCE:",
];

/// Line prefixes followed by `YYYY-MM-DDTHH:MM:SS`. Append only.
pub const DATE_PREFIXES: &[&str] = &["#ID3-EQUIV-TDTG:"];

const SUFFIXES: [&str; 3] = ["", "-muted", "-unmuted"];
const EXTENSIONS: [&str; 2] = ["ts", "mp4"];

const OP_DECIMAL: u8 = 0x40;
const OP_DATE: u8 = 0x80;
const OP_RUN: u8 = 0xC0;
const RUN_HAS_START: u8 = 0x08;
const RUN_HAS_DURATION: u8 = 0x10;
const OP_VERBATIM: u8 = 0xF0;
const FLAG_CRLF: u8 = 1;
const FLAG_FINAL_NEWLINE: u8 = 2;
const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnpackError {
    #[error("packed playlist ends inside an operation")]
    Truncated,
    #[error("packed playlist has an unknown operation {0:#04x}")]
    UnknownOperation(u8),
    #[error("packed playlist has an invalid value: {0}")]
    Invalid(&'static str),
}

/// A decimal as written: digits and how many of them follow the point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decimal {
    digits: u64,
    scale: u8,
}

impl Decimal {
    /// Only the spelling [`Decimal::render`] gives back: no sign, no leading zeros, no exponent.
    fn parse(text: &str) -> Option<Decimal> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
            Some(_) => return None,
            None => (text, ""),
        };
        let canonical_whole = whole == "0" || (!whole.is_empty() && !whole.starts_with('0'));
        let all_digits = whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
        if !canonical_whole || !all_digits || whole.len() + fraction.len() > 19 || fraction.len() > 30 {
            return None;
        }
        let mut digits = 0u64;
        for b in whole.bytes().chain(fraction.bytes()) {
            digits = digits * 10 + u64::from(b - b'0');
        }
        Some(Decimal {
            digits,
            scale: fraction.len() as u8,
        })
    }

    fn render(self, out: &mut String) {
        let digits = self.digits.to_string();
        let scale = usize::from(self.scale);
        if scale == 0 {
            out.push_str(&digits);
            return;
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
}

/// One `#EXTINF` / URI pair in the shape Twitch writes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    index: u64,
    duration: Decimal,
    kind: u8,
}

fn parse_index(text: &str) -> Option<u64> {
    let canonical = text == "0" || (!text.is_empty() && !text.starts_with('0'));
    if !canonical || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_segment(info: &str, uri: &str) -> Option<Segment> {
    let duration = Decimal::parse(info.strip_prefix("#EXTINF:")?.strip_suffix(',')?)?;
    let (stem, ext) = uri.rsplit_once('.')?;
    let ext = EXTENSIONS.iter().position(|e| *e == ext)?;
    // The longest suffix first: "-unmuted" also ends in "muted".
    let (index, suffix) = [(2, "-unmuted"), (1, "-muted"), (0, "")]
        .into_iter()
        .find_map(|(code, suffix)| Some((parse_index(stem.strip_suffix(suffix)?)?, code)))?;
    let kind = (suffix * 2 + ext) as u8;
    Some(Segment {
        index,
        duration,
        kind,
    })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// A length-prefixed UTF-8 string.
fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn put_decimal(out: &mut Vec<u8>, decimal: Decimal) {
    put_varint(out, decimal.digits);
    out.push(decimal.scale);
}

fn parse_date(text: &str) -> Option<i64> {
    let time = chrono::NaiveDateTime::parse_from_str(text, DATE_FORMAT).ok()?;
    let unix = time.and_utc().timestamp();
    (render_date(unix)? == text).then_some(unix)
}

fn render_date(unix: i64) -> Option<String> {
    let time = chrono::DateTime::from_timestamp(unix, 0)?;
    let mut text = String::with_capacity(19);
    write!(text, "{}", time.format(DATE_FORMAT)).ok()?;
    Some(text)
}

/// Encodes `text` (any UTF-8 text; a Twitch media playlist packs to a few dozen bytes).
pub fn pack(text: &str) -> Vec<u8> {
    let crlf = text.contains("\r\n") && text.matches('\n').count() == text.matches("\r\n").count();
    let newline = if crlf { "\r\n" } else { "\n" };
    let (body, final_newline) = match text.strip_suffix(newline) {
        Some(body) => (body, true),
        None => (text, false),
    };
    let lines: Vec<&str> = if body.is_empty() && !final_newline {
        Vec::new()
    } else {
        body.split(newline).collect()
    };
    let mut out = Vec::with_capacity(64);
    out.push((u8::from(crlf) * FLAG_CRLF) | (u8::from(final_newline) * FLAG_FINAL_NEWLINE));
    let mut expected = 0u64;
    let mut duration: Option<Decimal> = None;
    let mut at = 0;
    while at < lines.len() {
        if at + 1 < lines.len()
            && let Some(first) = parse_segment(lines[at], lines[at + 1])
        {
            let mut count = 1u64;
            while at + 2 * (count as usize) + 1 < lines.len() {
                let next = at + 2 * count as usize;
                match parse_segment(lines[next], lines[next + 1]) {
                    Some(segment)
                        if segment.duration == first.duration
                            && segment.kind == first.kind
                            && segment.index == first.index + count =>
                    {
                        count += 1;
                    }
                    _ => break,
                }
            }
            let new_start = first.index != expected;
            let new_duration = duration != Some(first.duration);
            out.push(
                OP_RUN
                    | first.kind
                    | if new_start { RUN_HAS_START } else { 0 }
                    | if new_duration { RUN_HAS_DURATION } else { 0 },
            );
            put_varint(&mut out, count);
            if new_start {
                put_varint(&mut out, zigzag(first.index.wrapping_sub(expected) as i64));
            }
            if new_duration {
                put_decimal(&mut out, first.duration);
            }
            duration = Some(first.duration);
            expected = first.index.wrapping_add(count);
            at += 2 * count as usize;
            continue;
        }
        pack_line(&mut out, lines[at]);
        at += 1;
    }
    out
}

fn pack_line(out: &mut Vec<u8>, line: &str) {
    if let Some(code) = LINES.iter().position(|known| *known == line) {
        out.push(code as u8);
        return;
    }
    for (code, prefix) in DECIMAL_PREFIXES.iter().enumerate() {
        if let Some(decimal) = line.strip_prefix(prefix).and_then(Decimal::parse) {
            out.push(OP_DECIMAL + code as u8);
            put_decimal(out, decimal);
            return;
        }
    }
    for (code, prefix) in DATE_PREFIXES.iter().enumerate() {
        if let Some(unix) = line.strip_prefix(prefix).and_then(parse_date) {
            out.push(OP_DATE + code as u8);
            put_varint(out, zigzag(unix));
            return;
        }
    }
    out.push(OP_VERBATIM);
    put_str(out, line);
}

/// Reads packed bytes back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next `len` bytes.
    fn take(&mut self, len: usize) -> Result<&'a [u8], UnpackError> {
        let end = self.at.checked_add(len).ok_or(UnpackError::Truncated)?;
        let bytes = self.bytes.get(self.at..end).ok_or(UnpackError::Truncated)?;
        self.at = end;
        Ok(bytes)
    }

    /// What [`put_str`] wrote.
    fn text(&mut self) -> Result<&'a str, UnpackError> {
        let len = usize::try_from(self.varint()?).map_err(|_| UnpackError::Invalid("length"))?;
        std::str::from_utf8(self.take(len)?).map_err(|_| UnpackError::Invalid("UTF-8"))
    }

    fn byte(&mut self) -> Result<u8, UnpackError> {
        let byte = *self.bytes.get(self.at).ok_or(UnpackError::Truncated)?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, UnpackError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F)
                .checked_shl(shift)
                .ok_or(UnpackError::Invalid("varint"))?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(UnpackError::Invalid("varint longer than 64 bits"))
    }

    fn decimal(&mut self) -> Result<Decimal, UnpackError> {
        let digits = self.varint()?;
        let scale = self.byte()?;
        if scale > 30 {
            return Err(UnpackError::Invalid("decimal scale"));
        }
        Ok(Decimal { digits, scale })
    }
}

/// A counter kept as decimal text: incrementing it is cheaper than formatting each number.
struct Odometer {
    digits: [u8; 20],
    /// Where the number's first digit is in `digits`.
    first: usize,
    /// `u64::MAX` + 1 wraps to 0, as the encoder's arithmetic does.
    value: u64,
}

impl Odometer {
    fn new(value: u64) -> Odometer {
        let mut odometer = Odometer {
            digits: [b'0'; 20],
            first: 20,
            value,
        };
        odometer.set(value);
        odometer
    }

    fn set(&mut self, mut value: u64) {
        self.value = value;
        self.first = 20;
        loop {
            self.first -= 1;
            self.digits[self.first] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
    }

    fn text(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.digits[self.first..]).unwrap_or("0")
    }

    fn increment(&mut self) {
        if self.value == u64::MAX {
            self.set(0);
            return;
        }
        self.value += 1;
        let mut at = 20;
        loop {
            at -= 1;
            if self.digits[at] == b'9' {
                self.digits[at] = b'0';
                if at == self.first {
                    self.first -= 1;
                    self.digits[self.first] = b'1';
                    return;
                }
            } else {
                self.digits[at] += 1;
                return;
            }
        }
    }
}

/// Decodes what [`pack`] wrote. `max_len` bounds the text (a corrupt count must not allocate
/// without limit).
pub fn unpack(bytes: &[u8], max_len: usize) -> Result<String, UnpackError> {
    let mut reader = Reader { bytes, at: 0 };
    let flags = reader.byte()?;
    if flags & !(FLAG_CRLF | FLAG_FINAL_NEWLINE) != 0 {
        return Err(UnpackError::Invalid("flags"));
    }
    let newline = if flags & FLAG_CRLF != 0 { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(bytes.len() * 64);
    let mut first = true;
    let mut line_start = |out: &mut String| {
        if !first {
            out.push_str(newline);
        }
        first = false;
    };
    let mut expected = 0u64;
    let mut duration: Option<Decimal> = None;
    while reader.at < bytes.len() {
        if out.len() > max_len {
            return Err(UnpackError::Invalid("text longer than the cap"));
        }
        let op = reader.byte()?;
        match op {
            _ if usize::from(op) < LINES.len() => {
                line_start(&mut out);
                out.push_str(LINES[usize::from(op)]);
            }
            _ if (OP_DECIMAL..OP_DATE).contains(&op) => {
                let prefix = DECIMAL_PREFIXES
                    .get(usize::from(op - OP_DECIMAL))
                    .ok_or(UnpackError::UnknownOperation(op))?;
                let decimal = reader.decimal()?;
                line_start(&mut out);
                out.push_str(prefix);
                decimal.render(&mut out);
            }
            _ if (OP_DATE..0xA0).contains(&op) => {
                let prefix = DATE_PREFIXES
                    .get(usize::from(op - OP_DATE))
                    .ok_or(UnpackError::UnknownOperation(op))?;
                let date = render_date(unzigzag(reader.varint()?)).ok_or(UnpackError::Invalid("date"))?;
                line_start(&mut out);
                out.push_str(prefix);
                out.push_str(&date);
            }
            OP_VERBATIM => {
                let text = reader.text()?;
                line_start(&mut out);
                out.push_str(text);
            }
            _ if (OP_RUN..0xE0).contains(&op) => {
                let kind = usize::from(op & 0x07);
                let suffix = SUFFIXES
                    .get(kind / 2)
                    .ok_or(UnpackError::Invalid("segment kind"))?;
                let ext = EXTENSIONS[kind % 2];
                let count = reader.varint()?;
                let start = if op & RUN_HAS_START != 0 {
                    expected.wrapping_add(unzigzag(reader.varint()?) as u64)
                } else {
                    expected
                };
                if op & RUN_HAS_DURATION != 0 {
                    duration = Some(reader.decimal()?);
                }
                let duration = duration.ok_or(UnpackError::Invalid("a run without a duration"))?;
                let mut info = String::from("#EXTINF:");
                duration.render(&mut info);
                info.push(',');
                // Each pair is at least this long: refuse a count that would pass the cap.
                let min_pair = info.len() + newline.len() * 2 + ext.len() + 2;
                if count.saturating_mul(min_pair as u64) > (max_len - out.len().min(max_len)) as u64 {
                    return Err(UnpackError::Invalid("run longer than the cap"));
                }
                // Reserve once: the pairs with the widest number (the playlist route's hot path).
                let widest = start.wrapping_add(count).max(start).to_string().len();
                let pair = info.len() + 2 * newline.len() + widest + suffix.len() + 1 + ext.len();
                out.reserve(usize::try_from(count).unwrap_or(usize::MAX).saturating_mul(pair));
                let mut tail = String::with_capacity(suffix.len() + 1 + ext.len());
                tail.push_str(suffix);
                tail.push('.');
                tail.push_str(ext);
                let mut number = Odometer::new(start);
                for _ in 0..count {
                    line_start(&mut out);
                    out.push_str(&info);
                    line_start(&mut out);
                    out.push_str(number.text());
                    out.push_str(&tail);
                    number.increment();
                }
                expected = start.wrapping_add(count);
            }
            _ => return Err(UnpackError::UnknownOperation(op)),
        }
    }
    if flags & FLAG_FINAL_NEWLINE != 0 {
        out.push_str(newline);
    }
    if out.len() > max_len {
        return Err(UnpackError::Invalid("text longer than the cap"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
