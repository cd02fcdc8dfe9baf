//! How records and playlists are stored: each value is an encoding tag byte and its payload.
//! The tags are part of the file format (append only); a better encoding arrives as a new tag
//! and the old ones stay readable. Encoders trust the compact forms only after decoding them
//! back to exactly what was given; decoders name the key of anything they cannot read.

use super::StoreError;
use super::tables::{PLAYLISTS, STREAMS};
use crate::packed::record::Layout;
use crate::record::{StreamKey, StreamRecord};
use redb::TableHandle;

/// `streams_v1` tag: postcard of `StreamRecord`.
pub(super) const RECORD_POSTCARD: u8 = 1;
/// `streams_v1` tag: `crate::packed::record` with game and language spelled out (read only).
pub(super) const RECORD_PACKED_SPELLED: u8 = 2;
/// `streams_v1` tag: `crate::packed::record` (key fields left out, known categories and
/// languages as codes).
pub(super) const RECORD_PACKED: u8 = 3;

/// `playlists_v1` tag: zstd of the UTF-8 playlist text.
pub(super) const PLAYLIST_ZSTD: u8 = 1;
/// `playlists_v1` tag: the structural encoding of `crate::packed`.
pub(super) const PLAYLIST_PACKED: u8 = 2;
pub(super) const PLAYLIST_ZSTD_LEVEL: i32 = 3;
/// A packed playlist this small is kept without trying zstd (Twitch's pack to ~30 bytes).
pub(super) const PACKED_GOOD_ENOUGH: usize = 256;

/// Stored playlists are at most `limits.max_playlist_bytes` (8 MiB by default); this bound
/// only keeps a corrupt size field from allocating without limit.
pub(super) const MAX_PLAYLIST_TEXT: u64 = 256 << 20;

/// The compact encoding, trusted only once it decodes back to the same record; else postcard.
pub(super) fn encode_record(record: &StreamRecord) -> Result<Vec<u8>, StoreError> {
    let mut packed = Vec::with_capacity(192);
    packed.push(RECORD_PACKED);
    packed.extend_from_slice(&crate::packed::record::pack_record(record));
    if crate::packed::record::unpack_record(record.key(), &packed[1..], Layout::Coded)
        .is_ok_and(|back| back == *record)
    {
        return Ok(packed);
    }
    let mut out = Vec::with_capacity(256);
    out.push(RECORD_POSTCARD);
    postcard::to_extend(record, out).map_err(|error| StoreError::Encode {
        what: format!("stream {:?}", record.key()),
        message: error.to_string(),
    })
}

pub(super) fn decode_record(key: StreamKey, bytes: &[u8]) -> Result<StreamRecord, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: format!("stream {key:?} in {}: {problem}", STREAMS.name()),
    };
    match bytes.split_first() {
        Some((&RECORD_POSTCARD, payload)) => match postcard::take_from_bytes::<StreamRecord>(payload) {
            Ok((record, [])) if record.key() == key => Ok(record),
            Ok((record, [])) => Err(corrupt(format!("the record names itself {:?}", record.key()))),
            Ok((_, rest)) => Err(corrupt(format!("{} trailing bytes after the record", rest.len()))),
            Err(error) => Err(corrupt(format!("cannot decode postcard: {error}"))),
        },
        Some((&RECORD_PACKED, payload)) => crate::packed::record::unpack_record(key, payload, Layout::Coded)
            .map_err(|error| corrupt(error.to_string())),
        Some((&RECORD_PACKED_SPELLED, payload)) => {
            crate::packed::record::unpack_record(key, payload, Layout::Spelled)
                .map_err(|error| corrupt(error.to_string()))
        }
        Some((tag, _)) => Err(corrupt(format!("unknown encoding tag {tag}"))),
        None => Err(corrupt("empty value".to_string())),
    }
}

/// The smaller of the structural encoding and zstd. The structural one is trusted only after
/// it has been decoded back to the exact text, so nothing it cannot represent is lost.
pub(super) fn encode_playlist(key: StreamKey, text: &str) -> Result<Vec<u8>, StoreError> {
    let mut packed = Vec::with_capacity(64);
    packed.push(PLAYLIST_PACKED);
    packed.extend_from_slice(&crate::packed::pack(text));
    let exact = || crate::packed::unpack(&packed[1..], text.len()).is_ok_and(|back| back == text);
    if packed.len() <= PACKED_GOOD_ENOUGH && exact() {
        return Ok(packed);
    }
    let zstd = encode_zstd(key, text)?;
    if packed.len() < zstd.len() && exact() {
        return Ok(packed);
    }
    Ok(zstd)
}

pub(super) fn encode_zstd(key: StreamKey, text: &str) -> Result<Vec<u8>, StoreError> {
    let compressed =
        zstd::bulk::compress(text.as_bytes(), PLAYLIST_ZSTD_LEVEL).map_err(|error| StoreError::Encode {
            what: format!("playlist {key:?}"),
            message: error.to_string(),
        })?;
    let mut out = Vec::with_capacity(compressed.len() + 1);
    out.push(PLAYLIST_ZSTD);
    out.extend_from_slice(&compressed);
    Ok(out)
}

pub(super) fn decode_playlist(key: StreamKey, bytes: &[u8]) -> Result<String, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: format!("playlist {key:?} in {}: {problem}", PLAYLISTS.name()),
    };
    match bytes.split_first() {
        Some((&PLAYLIST_ZSTD, payload)) => {
            // The frame records its size (bulk compression writes it): allocate exactly that,
            // not the streaming decoder's buffers, on the playlist route's hot path.
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .filter(|&size| size <= MAX_PLAYLIST_TEXT)
                .ok_or_else(|| corrupt("no valid zstd frame size".to_string()))?;
            let text = zstd::bulk::decompress(payload, size as usize)
                .map_err(|error| corrupt(format!("cannot decompress: {error}")))?;
            String::from_utf8(text).map_err(|error| corrupt(format!("not UTF-8: {error}")))
        }
        Some((&PLAYLIST_PACKED, payload)) => crate::packed::unpack(payload, MAX_PLAYLIST_TEXT as usize)
            .map_err(|error| corrupt(error.to_string())),
        Some((tag, _)) => Err(corrupt(format!("unknown encoding tag {tag}"))),
        None => Err(corrupt("empty value".to_string())),
    }
}
