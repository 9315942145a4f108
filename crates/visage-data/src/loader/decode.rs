//! Decoding image files to RGB: [`load_rgb`], and [`load_rgb_limited`], which sorts every
//! failure into a [`BadImageKind`] (missing, unreadable, empty, not an image, corrupt, too
//! large) and checks the header's size before decoding any pixel.

use std::io::BufReader;
use std::path::Path;

use image::RgbImage;

use crate::error::{BadImageKind, DataError};

/// Decodes an image file to RGB (for training and inference). Errors name the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DataError::io(path, e))?;
    Ok(reader
        .decode()
        .map_err(|e| DataError::image(path, e))?
        .into_rgb8())
}

/// Decodes an image file to RGB, refusing files whose header says width × height is above
/// `max_pixels` before any pixel is decoded. Every failure is a [`DataError::BadImage`] naming
/// the file and the reason.
pub fn load_rgb_limited(path: &Path, max_pixels: u64) -> Result<RgbImage, DataError> {
    let bad = |kind: BadImageKind, detail: String| DataError::BadImage {
        path: path.to_path_buf(),
        kind,
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad(BadImageKind::Missing, e.to_string()),
        _ => bad(BadImageKind::Unreadable, e.to_string()),
    })?;
    let len = file
        .metadata()
        .map_err(|e| bad(BadImageKind::Unreadable, e.to_string()))?
        .len();
    if len == 0 {
        return Err(bad(BadImageKind::Empty, "zero-byte file".into()));
    }
    // Without a path, the reader guesses the format from the content only.
    let mut reader = image::ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| bad(BadImageKind::Unreadable, e.to_string()))?;
    let from_content = reader.format().is_some();
    if !from_content {
        match image::ImageFormat::from_path(path) {
            Ok(f) => reader.set_format(f),
            Err(_) => {
                return Err(bad(
                    BadImageKind::NotAnImage,
                    "unknown format (content and extension)".into(),
                ))
            }
        }
    }
    let fail = |e: image::ImageError| {
        let kind = match &e {
            image::ImageError::IoError(_) if from_content => BadImageKind::Corrupt,
            image::ImageError::IoError(_) => BadImageKind::NotAnImage,
            image::ImageError::Limits(_) => BadImageKind::TooLarge,
            _ if from_content => BadImageKind::Corrupt,
            _ => BadImageKind::NotAnImage,
        };
        bad(kind, e.to_string())
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
