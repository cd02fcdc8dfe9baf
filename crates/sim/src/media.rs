//! Small but decodable MPEG-TS segments for the simulated CDN, so real players (ffprobe, mpv)
//! can read what the API serves. The payload is silent MPEG-1 Layer II audio: a frame whose
//! bit allocations are all zero carries no samples and decodes to silence, so no codec is needed
//! to produce it. Timestamps continue across segments so a playlist plays as one stream.

/// 48 kHz, mono, 32 kbit/s: 144 * 32000 / 48000 = 96 bytes per frame of 1152 samples (24 ms).
const MP2_HEADER: [u8; 4] = [0xFF, 0xFD, 0x14, 0xC0];
const MP2_FRAME_BYTES: usize = 96;
const SAMPLES_PER_FRAME: u64 = 1152;
const SAMPLE_RATE: u64 = 48_000;

const PMT_PID: u16 = 0x1000;
const AUDIO_PID: u16 = 0x0100;
/// Players expect the first PTS a little above zero (ffmpeg starts at 1.4 s).
const PTS_OFFSET: u64 = 126_000;

/// One TS segment of silent audio covering `[start, start + seconds)` of the broadcast.
pub fn ts_segment(start: f64, seconds: f64) -> Vec<u8> {
    let ticks = |s: f64| (s.max(0.0) * 90_000.0).round() as u64;
    // Frames [ceil(start), ceil(end)) so consecutive segments partition the frames exactly.
    let first_frame = (ticks(start) * SAMPLE_RATE).div_ceil(90_000 * SAMPLES_PER_FRAME);
    let end_frame = (ticks(start + seconds) * SAMPLE_RATE).div_ceil(90_000 * SAMPLES_PER_FRAME);
    let frames = end_frame.saturating_sub(first_frame).max(1);
    let mut out = Vec::with_capacity((frames as usize + 2) * 188);
    out.extend_from_slice(&psi_packet(0, &pat()));
    out.extend_from_slice(&psi_packet(PMT_PID, &pmt()));
    for i in 0..frames {
        let frame = first_frame + i;
        let pts = PTS_OFFSET + frame * SAMPLES_PER_FRAME * 90_000 / SAMPLE_RATE;
        // The continuity counter follows the frame number so it also runs on across segments.
        out.extend_from_slice(&audio_packet(pts, (frame & 0x0F) as u8));
    }
    out
}

fn pat() -> Vec<u8> {
    // program 1 → PMT PID
    let mut s = vec![0x00, 0xB0, 0, 0x00, 0x01, 0xC1, 0x00, 0x00];
    s.extend_from_slice(&[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
    finish_section(s)
}

fn pmt() -> Vec<u8> {
    let mut s = vec![0x02, 0xB0, 0, 0x00, 0x01, 0xC1, 0x00, 0x00];
    // PCR PID = audio PID; no program descriptors
    s.extend_from_slice(&[0xE0 | (AUDIO_PID >> 8) as u8, AUDIO_PID as u8, 0xF0, 0x00]);
    // stream_type 0x03: MPEG-1 audio
    s.extend_from_slice(&[0x03, 0xE0 | (AUDIO_PID >> 8) as u8, AUDIO_PID as u8, 0xF0, 0x00]);
    finish_section(s)
}

/// Fills in section_length and appends the CRC.
fn finish_section(mut s: Vec<u8>) -> Vec<u8> {
    let len = s.len() - 3 + 4;
    s[1] |= (len >> 8) as u8 & 0x0F;
    s[2] = len as u8;
    let crc = crc32_mpeg(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn psi_packet(pid: u16, section: &[u8]) -> [u8; 188] {
    let mut p = [0xFFu8; 188];
    p[..4].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10]);
    p[4] = 0; // pointer field
    p[5..5 + section.len()].copy_from_slice(section);
    p
}

/// One PES packet holding one audio frame, with the PCR in its adaptation field and stuffing
/// filling the rest of the 188 bytes.
fn audio_packet(pts: u64, cc: u8) -> [u8; 188] {
    let mut pes = Vec::with_capacity(14 + MP2_FRAME_BYTES);
    let pes_len = (3 + 5 + MP2_FRAME_BYTES) as u16;
    pes.extend_from_slice(&[0x00, 0x00, 0x01, 0xC0]);
    pes.extend_from_slice(&pes_len.to_be_bytes());
    pes.extend_from_slice(&[0x80, 0x80, 0x05]);
    pes.extend_from_slice(&[
        0x21 | ((pts >> 29) as u8 & 0x0E),
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) as u8 & 0xFE),
        (pts >> 7) as u8,
        0x01 | ((pts << 1) as u8 & 0xFE),
    ]);
    pes.extend_from_slice(&MP2_HEADER);
    pes.resize(14 + MP2_FRAME_BYTES, 0);

    let mut p = [0xFFu8; 188];
    p[..4].copy_from_slice(&[0x47, 0x40 | (AUDIO_PID >> 8) as u8, AUDIO_PID as u8, 0x30 | cc]);
    let af_len = 184 - 1 - pes.len();
    p[4] = af_len as u8;
    p[5] = 0x10; // PCR present
    let pcr = pts.saturating_sub(9_000); // PCR a little ahead of presentation
    p[6..12].copy_from_slice(&[
        (pcr >> 25) as u8,
        (pcr >> 17) as u8,
        (pcr >> 9) as u8,
        (pcr >> 1) as u8,
        ((pcr & 1) as u8) << 7 | 0x7E,
        0x00,
    ]);
    p[188 - pes.len()..].copy_from_slice(&pes);
    p
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final xor.
fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_mpeg2_check_value() {
        assert_eq!(crc32_mpeg(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn a_segment_is_whole_packets_with_tables_first() {
        let seg = ts_segment(20.0, 10.0);
        assert_eq!(seg.len() % 188, 0);
        assert!(seg.chunks(188).all(|p| p[0] == 0x47));
        // PAT on PID 0, PMT next, then audio frames covering 10 s (416 or 417 × 24 ms)
        assert_eq!((seg[1] & 0x1F, seg[2]), (0, 0));
        assert!((2 + 416..=2 + 417).contains(&(seg.len() / 188)));
        // A PSI section's CRC over itself including the CRC is zero.
        let pat = &seg[5..5 + 3 + usize::from(seg[7])];
        assert_eq!(crc32_mpeg(pat), 0);
    }

    #[test]
    fn timestamps_continue_across_segments() {
        let pts_of = |seg: &[u8], packet: usize| {
            let p = &seg[packet * 188..(packet + 1) * 188];
            let pes = &p[188 - 14 - MP2_FRAME_BYTES..];
            let b = &pes[9..14];
            (u64::from(b[0] >> 1 & 0x07) << 30)
                | (u64::from(b[1]) << 22)
                | (u64::from(b[2] >> 1) << 15)
                | (u64::from(b[3]) << 7)
                | u64::from(b[4] >> 1)
        };
        let a = ts_segment(0.0, 10.0);
        let b = ts_segment(10.0, 10.0);
        let last_a = pts_of(&a, a.len() / 188 - 1);
        let first_b = pts_of(&b, 2);
        assert_eq!(pts_of(&a, 2), PTS_OFFSET);
        assert_eq!(first_b - last_a, 1152 * 90_000 / 48_000);
    }
}
