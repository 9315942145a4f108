//! How the network input's pixels relate to the image: what a loss that compares a
//! prediction with the image's own pixels (RetinaFace's mesh branch) needs to undo.

/// The input normalisation of a model: input = (pixel − mean) / std per plane, pixels in
/// 0..255, planes in RGB or BGR order (the `[data]` table's `mean`, `std`,
/// `channel_order`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelNormalisation {
    /// Per-plane mean in the input's plane order, pixel units 0..255.
    pub mean: [f32; 3],
    /// Per-plane divisor in the input's plane order, pixel units.
    pub std: [f32; 3],
    /// Planes in B, G, R order (Pytorch_Retinaface) instead of R, G, B.
    pub bgr: bool,
}

impl PixelNormalisation {
    /// The RGB value in [0, 1] of the normalised input values `planes` (in the input's plane
    /// order).
    pub fn to_unit_rgb(&self, planes: [f32; 3]) -> [f32; 3] {
        let unit = |i: usize| (planes[i] * self.std[i] + self.mean[i]) / 255.0;
        if self.bgr {
            [unit(2), unit(1), unit(0)]
        } else {
            [unit(0), unit(1), unit(2)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undoes_mean_std_and_plane_order() {
        let n = PixelNormalisation {
            mean: [104.0, 117.0, 123.0],
            std: [1.0, 1.0, 1.0],
            bgr: true,
        };
        // B = 104 + 151 = 255, G = 117 + 0, R = 123 − 123 = 0.
        let rgb = n.to_unit_rgb([151.0, 0.0, -123.0]);
        assert_eq!(rgb, [0.0, 117.0 / 255.0, 1.0]);
        let n = PixelNormalisation {
            mean: [0.0; 3],
            std: [255.0; 3],
            bgr: false,
        };
        assert_eq!(n.to_unit_rgb([0.25, 0.5, 1.0]), [0.25, 0.5, 1.0]);
    }
}
