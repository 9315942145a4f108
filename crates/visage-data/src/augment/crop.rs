//! Random square crops: the side is drawn uniformly in `[a, b]` × the short edge (FAN) or from
//! a set of fractions (Pytorch_Retinaface: {0.3, 0.45, 0.6, 0.8, 1.0}).

use std::fmt;

use image::imageops;
use image::Rgb;
use rand::Rng;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::expand::pad_to_square;
use super::{Faces, Sample};
use crate::label_txt::Landmarks;

/// How the side of a random square crop is drawn, as a fraction of the image's short edge.
///
/// In TOML: `crop_scale = [0.3, 1.0]` or `crop_scale = { uniform = [0.3, 1.0] }` (uniform in
/// the range), or `crop_scale = { choices = [0.3, 0.45, 0.6, 0.8, 1.0] }` (one of the values,
/// equally likely). A uniform range serialises as the plain `[a, b]` pair.
#[derive(Debug, Clone, PartialEq)]
pub enum CropScale {
    /// `U(a, b)` (FAN: [0.3, 1]).
    Uniform([f32; 2]),
    /// One of the fractions, equally likely (Pytorch_Retinaface: [`CropScale::RETINAFACE`]).
    Choices(Vec<f32>),
}

impl Default for CropScale {
    fn default() -> Self {
        CropScale::Uniform([0.3, 1.0])
    }
}

impl CropScale {
    /// Pytorch_Retinaface's `PRE_SCALES`.
    pub const RETINAFACE: [f32; 5] = [0.3, 0.45, 0.6, 0.8, 1.0];

    /// Checks that every fraction is in (0, 1]. On error returns the sub-key (`""` for the
    /// uniform pair, `"choices"`) and the reason.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match self {
            CropScale::Uniform([lo, hi]) => {
                if lo > &0.0 && lo <= hi && hi <= &1.0 {
                    Ok(())
                } else {
                    Err(("", format!("[{lo}, {hi}] is not 0 < a ≤ b ≤ 1")))
                }
            }
            CropScale::Choices(c) => {
                if c.is_empty() {
                    Err(("choices", "must list at least one fraction".into()))
                } else if let Some(bad) = c.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
                    Err(("choices", format!("{bad} is not in (0, 1]")))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Draws one fraction. A uniform range draws exactly as the original `[a, b]` crop did (one
    /// draw unless a = b); choices draw one index.
    pub fn sample(&self, rng: &mut impl Rng) -> f32 {
        match self {
            CropScale::Uniform(scale) => {
                let (lo, hi) = (scale[0].min(scale[1]), scale[0].max(scale[1]));
                if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                }
            }
            CropScale::Choices(c) if c.is_empty() => 1.0,
            CropScale::Choices(c) => c[rng.random_range(0..c.len())],
        }
    }
}

impl Serialize for CropScale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CropScale::Uniform(pair) => pair.serialize(s),
            CropScale::Choices(c) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("choices", c)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for CropScale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CropScale;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a pair [a, b], { uniform = [a, b] } or { choices = [f, ...] }")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<CropScale, A::Error> {
                let pair = <[f32; 2]>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(CropScale::Uniform(pair))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CropScale, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "expected one key: `uniform` or `choices`",
                    ));
                };
                let out = match key.as_str() {
                    "uniform" => CropScale::Uniform(map.next_value()?),
                    "choices" => CropScale::Choices(map.next_value()?),
                    other => return Err(de::Error::unknown_field(other, &["uniform", "choices"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "`{extra}`: give either `uniform` or `choices`, not both"
                    )));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// What [`random_square_crop`] does when no drawn crop keeps a face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropFallback {
    /// After 8 tries: a crop of side = short edge over a randomly chosen face's centre (the
    /// default; the output is always a crop).
    AroundFace,
    /// After 250 tries (as Pytorch_Retinaface's `_crop`): the whole image, padded to a square
    /// with this colour at its right / bottom (`_pad_to_square`).
    PadToSquare(Rgb<u8>),
}

/// Tries of [`CropFallback::AroundFace`].
const CROP_TRIES: usize = 8;
/// Tries of [`CropFallback::PadToSquare`] (Pytorch_Retinaface's `_crop`).
const PAD_CROP_TRIES: usize = 250;

fn centre_inside(b: &[f32; 4], fx: f32, fy: f32, s: f32) -> bool {
    let (cx, cy) = ((b[0] + b[2]) * 0.5 - fx, (b[1] + b[3]) * 0.5 - fy);
    cx >= 0.0 && cx < s && cy >= 0.0 && cy < s
}

/// Crops the `side × side` square at `(x0, y0)` (inside the image) and keeps the faces whose
/// centre lies inside it, clipped to it. Landmarks are shifted; those now outside the crop are
/// marked not visible.
pub(crate) fn crop_at(sample: &Sample, x0: u32, y0: u32, side: u32) -> Sample {
    let (boxes, landmarks) = crop_faces(&sample.boxes, &sample.landmarks, x0, y0, side);
    Sample {
        image: imageops::crop_imm(&sample.image, x0, y0, side, side).to_image(),
        boxes,
        landmarks,
    }
}

/// The faces of [`crop_at`]: those whose centre lies inside the square, clipped and shifted.
pub(crate) fn crop_faces(
    boxes: &[[f32; 4]],
    landmarks: &[Option<Landmarks>],
    x0: u32,
    y0: u32,
    side: u32,
) -> Faces {
    let (fx, fy, s) = (x0 as f32, y0 as f32, side as f32);
    let mut out_boxes = Vec::new();
    let mut out_landmarks = Vec::new();
    for (b, lm) in boxes.iter().zip(landmarks) {
        if !centre_inside(b, fx, fy, s) {
            continue;
        }
        out_boxes.push([
            (b[0] - fx).clamp(0.0, s),
            (b[1] - fy).clamp(0.0, s),
            (b[2] - fx).clamp(0.0, s),
            (b[3] - fy).clamp(0.0, s),
        ]);
        out_landmarks.push(lm.map(|mut l| {
            for k in 0..5 {
                l.points[k] = [l.points[k][0] - fx, l.points[k][1] - fy];
                let [px, py] = l.points[k];
                if !(0.0..s).contains(&px) || !(0.0..s).contains(&py) {
                    l.visible[k] = false;
                }
            }
            l
        }));
    }
    (out_boxes, out_landmarks)
}

/// What [`random_square_crop`] decided, before any pixel is copied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CropPlan {
    /// The image has no pixels: leave it as it is.
    Keep,
    /// The `side × side` square at `(x0, y0)`.
    At { x0: u32, y0: u32, side: u32 },
    /// The whole image padded to a square with this colour ([`CropFallback::PadToSquare`]).
    Pad(Rgb<u8>),
}

/// Random square crop (FAN / RetinaFace style).
///
/// The side is `scale.sample() × short edge` (rounded, clamped to [1, short edge]), the position
/// uniform. Faces whose centre is inside are kept and clipped. When the sample has faces but a
/// crop keeps none, more crops are drawn, then `fallback` applies. The output is square.
pub fn random_square_crop(
    sample: Sample,
    rng: &mut impl Rng,
    scale: &CropScale,
    fallback: CropFallback,
) -> Sample {
    let (w, h) = sample.image.dimensions();
    match plan_crop(w, h, &sample.boxes, rng, scale, fallback) {
        CropPlan::Keep => sample,
        CropPlan::At { x0, y0, side } => crop_at(&sample, x0, y0, side),
        CropPlan::Pad(fill) => pad_to_square(sample, fill),
    }
}

/// The draws of [`random_square_crop`] on a `w × h` image with faces `boxes`.
pub(crate) fn plan_crop(
    w: u32,
    h: u32,
    boxes: &[[f32; 4]],
    rng: &mut impl Rng,
    scale: &CropScale,
    fallback: CropFallback,
) -> CropPlan {
    let short = w.min(h);
    if short == 0 {
        return CropPlan::Keep;
    }
    let tries = match fallback {
        CropFallback::AroundFace => CROP_TRIES,
        CropFallback::PadToSquare(_) => PAD_CROP_TRIES,
    };
    for _ in 0..tries {
        let f = scale.sample(rng);
        let side = ((f * short as f32).round() as u32).clamp(1, short);
        let x0 = rng.random_range(0..=w - side);
        let y0 = rng.random_range(0..=h - side);
        let (fx, fy, s) = (x0 as f32, y0 as f32, side as f32);
        if boxes.is_empty() || boxes.iter().any(|b| centre_inside(b, fx, fy, s)) {
            return CropPlan::At { x0, y0, side };
        }
    }
    if let CropFallback::PadToSquare(fill) = fallback {
        return CropPlan::Pad(fill);
    }
    // Fallback: the largest square, positioned over the centre of one face.
    let b = boxes[rng.random_range(0..boxes.len())];
    let (cx, cy) = ((b[0] + b[2]) * 0.5, (b[1] + b[3]) * 0.5);
    let range = |c: f32, extent: u32| {
        let max0 = extent - short;
        let lo = ((c - short as f32).floor() + 1.0).clamp(0.0, max0 as f32) as u32;
        let hi = (c.floor().max(0.0) as u32).min(max0);
        (lo.min(hi), hi)
    };
    let (xl, xh) = range(cx, w);
    let (yl, yh) = range(cy, h);
    let x0 = rng.random_range(xl..=xh);
    let y0 = rng.random_range(yl..=yh);
    CropPlan::At {
        x0,
        y0,
        side: short,
    }
}
