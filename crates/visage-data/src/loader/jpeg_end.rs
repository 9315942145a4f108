//! Finding where a JPEG stream ends: [`jpeg_truncation`] walks the marker segments and the
//! entropy-coded data to the end-of-image marker, so that a file cut short is refused instead
//! of being decoded into grey (the `image` crate's decoder pads missing data silently).
//!
//! The walk (ITU T.81, B.1): SOI `FFD8`; then segments, each a marker `FFxx` (any number of
//! `FF` fill bytes before it) followed by a big-endian length that counts itself, skipped
//! whole — so an EXIF thumbnail inside APP1, with its own SOI and EOI, is skipped too; after
//! each SOS segment, the entropy-coded data up to the next marker, in which `FF00` is a
//! stuffed `FF` and `FFD0`–`FFD7` are restart markers; a progressive JPEG has several SOS,
//! with tables between them; the stream ends at EOI `FFD9`. Bytes after EOI are ignored
//! (cameras write padding and vendor data there).

/// Start of image.
const SOI: u8 = 0xD8;
/// End of image.
const EOI: u8 = 0xD9;
/// Start of scan: entropy-coded data follows its header.
const SOS: u8 = 0xDA;
/// Temporary private use: a marker without a length.
const TEM: u8 = 0x01;

/// Whether `marker` stands alone (no length field): SOI, EOI, TEM and the restart markers.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, TEM | SOI | EOI | 0xD0..=0xD7)
}

/// `None` when `bytes`, a JPEG stream starting with SOI, reaches its EOI marker; otherwise
/// where and how it ends early, for the error message (e.g. `"the file ends inside the
/// entropy-coded data of scan 1 (byte 3072), before the end-of-image marker"`). A stream not
/// starting with SOI is not judged here (`None`): the decoder reports it.
pub(crate) fn jpeg_truncation(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != SOI {
        return None;
    }
    let len = bytes.len();
    let early = |what: String| {
        Some(format!(
            "the file ends {what}, before the JPEG end-of-image marker (FFD9)"
        ))
    };
    let mut pos = 2;
    let mut scans = 0usize;
    loop {
        // A marker: one or more FF, then its code.
        if pos >= len {
            return early(format!("after {len} bytes, where a marker was expected"));
        }
        if bytes[pos] != 0xFF {
            // Not a marker where one must be: the decoder judges the file (corrupt, not cut).
            return None;
        }
        while pos < len && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return early(format!("inside a marker (byte {len})"));
        };
        pos += 1;
        if marker == EOI {
            return None;
        }
        if is_standalone(marker) {
            continue;
        }
        let Some(length) = bytes.get(pos..pos + 2) else {
            return early(format!(
                "inside the length of marker FF{marker:02X} (byte {pos})"
            ));
        };
        let length = u16::from_be_bytes([length[0], length[1]]) as usize;
        if length < 2 {
            return None;
        }
        if pos + length > len {
            return early(format!(
                "inside the segment of marker FF{marker:02X} at byte {} ({length} bytes \
                 announced, {} present)",
                pos - 2,
                len - pos
            ));
        }
        pos += length;
        if marker == SOS {
            scans += 1;
            match entropy_coded_end(bytes, pos) {
                Some(end) => pos = end,
                None => {
                    return early(format!(
                        "inside the entropy-coded data of scan {scans} (byte {len})"
                    ))
                }
            }
        }
    }
}

/// The offset of the first marker (its first `FF`) at or after `start` that ends the
/// entropy-coded data of a scan, skipping stuffed bytes `FF00` and restart markers
/// `FFD0`–`FFD7`; `None` when the data runs to the end of `bytes`.
fn entropy_coded_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    while pos < bytes.len() {
        let offset = bytes[pos..].iter().position(|&b| b == 0xFF)?;
        let ff = pos + offset;
        match *bytes.get(ff + 1)? {
            0x00 | 0xD0..=0xD7 => pos = ff + 2,
            // Fill bytes: the marker's code comes after the last FF.
            0xFF => pos = ff + 1,
            _ => return Some(ff),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment: marker, length (counting itself), payload.
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    /// SOI, a DQT-like table, SOF0, one SOS with entropy data full of stuffed bytes and
    /// restart markers, EOI.
    fn baseline() -> Vec<u8> {
        let mut j = vec![0xFF, SOI];
        j.extend(segment(0xDB, &[0; 65]));
        j.extend(segment(0xC0, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0]));
        j.extend(segment(SOS, &[1, 1, 0, 0, 63, 0]));
        j.extend([
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0x00, 0xFF, 0xD1, 0x78,
        ]);
        j.extend([0xFF, EOI]);
        j
    }

    #[test]
    fn complete_streams_pass_and_trailing_bytes_are_ignored() {
        let j = baseline();
        assert_eq!(jpeg_truncation(&j), None);
        let mut trailing = j.clone();
        trailing.extend([0, 0, 0xFF, 0xD8, 1, 2, 3]);
        assert_eq!(jpeg_truncation(&trailing), None);
        // Fill bytes before a marker, and before EOI.
        let mut filled = vec![0xFF, SOI, 0xFF, 0xFF];
        filled.extend(&j[2..j.len() - 2]);
        filled.extend([0xFF, 0xFF, 0xFF, EOI]);
        assert_eq!(jpeg_truncation(&filled), None);
    }

    #[test]
    fn every_cut_before_eoi_is_truncated() {
        let j = baseline();
        for cut in 2..j.len() {
            let e = jpeg_truncation(&j[..cut]).unwrap_or_else(|| panic!("cut at {cut}"));
            assert!(e.starts_with("the file ends"), "{e}");
        }
        let e = jpeg_truncation(&j[..j.len() - 4]).unwrap();
        assert!(e.contains("entropy-coded data of scan 1"), "{e}");
        let e = jpeg_truncation(&j[..30]).unwrap();
        assert!(e.contains("segment of marker FFDB at byte 2"), "{e}");
    }

    #[test]
    fn an_exif_thumbnail_with_its_own_eoi_does_not_end_the_stream() {
        let thumb = baseline();
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(&thumb);
        let mut j = vec![0xFF, SOI];
        j.extend(segment(0xE1, &exif));
        let main = baseline();
        j.extend(&main[2..]);
        assert_eq!(jpeg_truncation(&j), None);
        // Cut in the main image's scan: the thumbnail's FFD9 is still in the file.
        let cut = &j[..j.len() - 4];
        assert!(cut.windows(2).any(|w| w == [0xFF, EOI]));
        assert!(jpeg_truncation(cut).is_some());
    }

    #[test]
    fn progressive_streams_have_several_scans() {
        let mut j = vec![0xFF, SOI];
        j.extend(segment(0xC2, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0]));
        for (k, data) in [[0x01, 0xFF, 0x00], [0x02, 0x03, 0x04], [0xFF, 0xD3, 0x05]]
            .iter()
            .enumerate()
        {
            j.extend(segment(0xC4, &[k as u8; 20]));
            j.extend(segment(SOS, &[1, 1, 0, 1, 5, 0]));
            j.extend(data);
        }
        j.extend([0xFF, EOI]);
        assert_eq!(jpeg_truncation(&j), None);
        let e = jpeg_truncation(&j[..j.len() - 3]).unwrap();
        assert!(e.contains("scan 3"), "{e}");
        // Cut right after the second scan's data (before scan 3's table, SOS, data and EOI):
        // a marker is missing.
        let second_end = j.len() - 24 - 10 - 3 - 2;
        assert_eq!(&j[second_end - 3..second_end], &[0x02, 0x03, 0x04]);
        assert!(jpeg_truncation(&j[..second_end]).is_some());
    }

    #[test]
    fn not_a_jpeg_or_garbage_between_segments_is_left_to_the_decoder() {
        assert_eq!(jpeg_truncation(b"\x89PNG\r\n"), None);
        assert_eq!(jpeg_truncation(b""), None);
        let mut j = vec![0xFF, SOI];
        j.extend(segment(0xDB, &[0; 4]));
        j.push(0x42);
        assert_eq!(jpeg_truncation(&j), None);
    }
}
