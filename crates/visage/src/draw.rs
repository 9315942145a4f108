//! Drawing detections on a copy of an image: box outlines coloured by score, the score
//! written above each box with a small built-in bitmap font (digits and '.'), and the five
//! landmarks as small squares where the detector predicts them.

use image::{Rgb, RgbImage};
use visage_model::Detection;

/// 3 × 5 glyphs for '0'..'9' and '.', one row per `u8` (bit 2 = left column).
const GLYPHS: [[u8; 5]; 11] = [
    [0b111, 0b101, 0b101, 0b101, 0b111], // 0
    [0b010, 0b110, 0b010, 0b010, 0b111], // 1
    [0b111, 0b001, 0b111, 0b100, 0b111], // 2
    [0b111, 0b001, 0b111, 0b001, 0b111], // 3
    [0b101, 0b101, 0b111, 0b001, 0b001], // 4
    [0b111, 0b100, 0b111, 0b001, 0b111], // 5
    [0b111, 0b100, 0b111, 0b101, 0b111], // 6
    [0b111, 0b001, 0b010, 0b010, 0b010], // 7
    [0b111, 0b101, 0b111, 0b101, 0b111], // 8
    [0b111, 0b101, 0b111, 0b001, 0b111], // 9
    [0b000, 0b000, 0b000, 0b000, 0b010], // .
];

/// Green for confident detections fading to red for unsure ones.
fn score_colour(score: f32) -> Rgb<u8> {
    let s = score.clamp(0.0, 1.0);
    Rgb([((1.0 - s) * 255.0) as u8, (s * 255.0) as u8, 40])
}

fn put(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
        image.put_pixel(x as u32, y as u32, colour);
    }
}

/// Draws a rectangle outline `thickness` pixels wide inside `[x1, y1, x2, y2]`.
pub fn draw_box(image: &mut RgbImage, bbox: [f32; 4], colour: Rgb<u8>, thickness: i64) {
    let [x1, y1, x2, y2] = bbox.map(|v| v.round() as i64);
    for t in 0..thickness {
        for x in x1..=x2 {
            put(image, x, y1 + t, colour);
            put(image, x, y2 - t, colour);
        }
        for y in y1..=y2 {
            put(image, x1 + t, y, colour);
            put(image, x2 - t, y, colour);
        }
    }
}

/// Writes `text` (digits and '.') with its top-left corner at (x, y), each font pixel
/// `scale` × `scale` image pixels.
pub fn draw_text(image: &mut RgbImage, text: &str, x: i64, y: i64, colour: Rgb<u8>, scale: i64) {
    let mut cursor = x;
    for c in text.chars() {
        let glyph = match c {
            '0'..='9' => GLYPHS[c as usize - '0' as usize],
            '.' => GLYPHS[10],
            _ => {
                cursor += 4 * scale;
                continue;
            }
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(
                                image,
                                cursor + col * scale + dx,
                                y + row as i64 * scale + dy,
                                colour,
                            );
                        }
                    }
                }
            }
        }
        cursor += 4 * scale;
    }
}

/// Colours of the five landmarks: left eye, right eye, nose, left and right mouth corner
/// (detect.py's order of colours).
const LANDMARK_COLOURS: [Rgb<u8>; 5] = [
    Rgb([255, 0, 0]),
    Rgb([0, 255, 255]),
    Rgb([255, 0, 255]),
    Rgb([0, 255, 0]),
    Rgb([0, 0, 255]),
];

/// Fills the square of side `2·radius + 1` centred on `(x, y)`.
pub fn draw_point(image: &mut RgbImage, x: f32, y: f32, colour: Rgb<u8>, radius: i64) {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            put(image, cx + dx, cy + dy, colour);
        }
    }
}

/// Draws every detection (box xyxy in image pixels, score, landmarks if any) on `image`.
pub fn draw_detections(image: &mut RgbImage, detections: &[Detection]) {
    let scale = if image.width().max(image.height()) > 1000 {
        2
    } else {
        1
    };
    for d in detections {
        let (bbox, score) = (d.bbox, d.score);
        let colour = score_colour(score);
        draw_box(image, bbox, colour, scale + 1);
        let label = format!("{score:.2}");
        let y = (bbox[1].round() as i64 - 6 * scale - 1).max(0);
        draw_text(image, &label, bbox[0].round() as i64, y, colour, scale);
        for (p, c) in d.landmarks.iter().flatten().zip(LANDMARK_COLOURS) {
            draw_point(image, p[0], p[1], c, scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_outline_is_drawn_inside_and_interior_untouched() {
        let mut image = RgbImage::new(20, 20);
        let red = Rgb([255, 0, 0]);
        draw_box(&mut image, [2.0, 3.0, 10.0, 12.0], red, 1);
        assert_eq!(*image.get_pixel(2, 3), red);
        assert_eq!(*image.get_pixel(10, 12), red);
        assert_eq!(*image.get_pixel(6, 3), red);
        assert_eq!(*image.get_pixel(6, 7), Rgb([0, 0, 0]));
        // Boxes partly outside the image are clipped, not a panic: only the edges inside
        // (here the right edge, two pixels wide) are drawn.
        let mut image = RgbImage::new(20, 20);
        draw_box(&mut image, [-5.0, -5.0, 15.0, 15.0], red, 2);
        assert_eq!(*image.get_pixel(15, 10), red);
        assert_eq!(*image.get_pixel(14, 10), red);
        assert_eq!(*image.get_pixel(0, 10), Rgb([0, 0, 0]));
    }

    #[test]
    fn landmarks_are_drawn_as_coloured_points() {
        let mut image = RgbImage::new(40, 40);
        let marks = [
            [10.0, 10.0],
            [30.0, 10.0],
            [20.0, 20.0],
            [12.0, 30.0],
            [28.0, 30.0],
        ];
        let d = Detection {
            bbox: [2.0, 2.0, 38.0, 38.0],
            score: 0.9,
            landmarks: Some(marks),
            mesh: None,
        };
        draw_detections(&mut image, &[d]);
        for (p, c) in marks.iter().zip(LANDMARK_COLOURS) {
            assert_eq!(*image.get_pixel(p[0] as u32, p[1] as u32), c);
            assert_eq!(*image.get_pixel(p[0] as u32 + 1, p[1] as u32 + 1), c);
        }
        assert_eq!(*image.get_pixel(20, 25), Rgb([0, 0, 0]));
    }

    #[test]
    fn text_renders_the_glyph_bits() {
        let mut image = RgbImage::new(12, 6);
        let white = Rgb([255, 255, 255]);
        draw_text(&mut image, "1.", 0, 0, white, 1);
        // '1': middle column lit on the first row, full bottom row.
        assert_eq!(*image.get_pixel(1, 0), white);
        assert_eq!(*image.get_pixel(0, 0), Rgb([0, 0, 0]));
        assert_eq!(*image.get_pixel(0, 4), white);
        // '.': one pixel at the bottom of the second cell (x offset 4).
        assert_eq!(*image.get_pixel(5, 4), white);
        assert_eq!(*image.get_pixel(5, 3), Rgb([0, 0, 0]));
    }
}
