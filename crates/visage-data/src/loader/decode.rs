//! Decoding image files to RGB: [`load_rgb_limited`] sorts every failure into a
//! [`BadImageKind`] (missing, unreadable, empty, not an image, corrupt, truncated, too large), checks the header's size before decoding any pixel, and refuses a JPEG that ends
//! before its end-of-image marker ([`jpeg_truncation`]); [`load_rgb`] is the same without a
//! pixel limit.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, RgbImage};

use super::jpeg_end::jpeg_truncation;
use crate::error::{BadImageKind, DataError};

/// Decodes an image file to RGB with no limit on its pixel count (the decoder's own
/// allocation limit, 512 MiB, still applies): [`load_rgb_limited`] with `u64::MAX`. Prefer
/// [`load_rgb_limited`] for files from users; errors are [`DataError::BadImage`] naming the
/// file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    load_rgb_limited(path, u64::MAX)
}

/// Decodes an image file to RGB, refusing files whose header says width × height is above
/// `max_pixels` before any pixel is decoded, and JPEGs cut short (ending before their EOI
/// marker, which the decoder would otherwise fill with grey; bytes after EOI are fine). Every
/// failure is a [`DataError::BadImage`] naming the file and the reason; a file cut short (a
/// JPEG as above, a PNG whose decoder meets the end of the file) is
/// [`BadImageKind::Truncated`].
pub fn load_rgb_limited(path: &Path, max_pixels: u64) -> Result<RgbImage, DataError> {
    let bad = |kind: BadImageKind, detail: String| DataError::BadImage {
        path: path.to_path_buf(),
        kind,
        detail,
    };
    // The whole file in memory: the JPEG decoder reads it all anyway, and the truncation
    // check walks it.
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad(BadImageKind::Missing, e.to_string()),
        _ => bad(BadImageKind::Unreadable, e.to_string()),
    })?;
    if bytes.is_empty() {
        return Err(bad(BadImageKind::Empty, "zero-byte file".into()));
    }
    // Without a path, the reader guesses the format from the content only.
    let mut reader = image::ImageReader::new(Cursor::new(bytes.as_slice()))
        .with_guessed_format()
        .map_err(|e| bad(BadImageKind::Unreadable, e.to_string()))?;
    let from_content = reader.format().is_some();
    if !from_content {
        match ImageFormat::from_path(path) {
            Ok(f) => reader.set_format(f),
            Err(_) => {
                return Err(bad(
                    BadImageKind::NotAnImage,
                    "unknown format (content and extension)".into(),
                ))
            }
        }
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        if let Some(detail) = jpeg_truncation(&bytes) {
            return Err(bad(BadImageKind::Truncated, detail));
        }
    }
    let fail = |e: image::ImageError| {
        let kind = match &e {
            image::ImageError::IoError(io)
                if from_content && io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                BadImageKind::Truncated
            }
            image::ImageError::IoError(_) if from_content => BadImageKind::Corrupt,
            image::ImageError::IoError(_) => BadImageKind::NotAnImage,
            image::ImageError::Limits(_) => BadImageKind::TooLarge,
            _ if from_content => BadImageKind::Corrupt,
            _ => BadImageKind::NotAnImage,
        };
        let detail = match kind {
            BadImageKind::Truncated => format!("the file ends before the image is complete ({e})"),
            _ => e.to_string(),
        };
        bad(kind, detail)
    };
    let decoder = reader.into_decoder().map_err(fail)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(bad(
            BadImageKind::TooLarge,
            format!("{w}×{h} = {pixels} pixels, over max_image_pixels = {max_pixels}"),
        ));
    }
    if pixels == 0 {
        return Err(bad(BadImageKind::Corrupt, format!("{w}×{h} image")));
    }
    Ok(image::DynamicImage::from_decoder(decoder)
        .map_err(fail)?
        .into_rgb8())
}
