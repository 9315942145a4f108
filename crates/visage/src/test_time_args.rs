//! The test-time flags shared by `visage detect` and `visage eval` (they override the
//! checkpoint config's `[test] short_side` and `[test.tta]`), and the post-processing flags
//! shared by `visage detect` and `visage export --postprocess`.

use anyhow::Result;
use clap::Args;
use visage_model::{TestSpec, TtaSpec};

/// `--short-side`, `--tta-scales`, `--tta-flip`, `--no-tta`.
#[derive(Debug, Clone, Default, Args)]
pub struct TestTimeArgs {
    /// Resize images so that their shorter side is this (overrides test.short_side).
    #[arg(long)]
    pub short_side: Option<u32>,
    /// Test-time augmentation: run each image at these multiples of its test scale, merging
    /// all passes before one NMS (overrides test.tta.scales), e.g. `0.5,1,1.5`.
    #[arg(long, value_delimiter = ',', conflicts_with = "no_tta")]
    pub tta_scales: Option<Vec<f32>>,
    /// With test-time augmentation, also run each scale on the mirrored image (sets
    /// test.tta.flip; with no `[test.tta]` nor --tta-scales, the scale is 1).
    #[arg(long, conflicts_with = "no_tta")]
    pub tta_flip: bool,
    /// One pass per image even if the config has `[test.tta]`.
    #[arg(long)]
    pub no_tta: bool,
}

impl TestTimeArgs {
    /// Applies the flags to `test` and checks the result (errors name the `test.*` key).
    pub fn apply(&self, test: &mut TestSpec) -> Result<()> {
        if self.short_side.is_some() {
            test.short_side = self.short_side;
        }
        if self.no_tta {
            test.tta = None;
        }
        if let Some(scales) = &self.tta_scales {
            let flip = test.tta.as_ref().is_some_and(|t| t.flip);
            test.tta = Some(TtaSpec {
                scales: scales.clone(),
                flip,
            });
        }
        if self.tta_flip {
            test.tta
                .get_or_insert_with(|| TtaSpec {
                    scales: vec![1.0],
                    flip: true,
                })
                .flip = true;
        }
        test.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        test: TestTimeArgs,
    }

    fn apply(args: &[&str], test: &TestSpec) -> Result<TestSpec> {
        let cli = Cli::try_parse_from(std::iter::once("visage").chain(args.iter().copied()))?;
        let mut test = test.clone();
        cli.test.apply(&mut test)?;
        Ok(test)
    }

    #[test]
    fn flags_override_the_config() {
        let plain = TestSpec::default();
        assert_eq!(apply(&[], &plain).unwrap(), plain);
        let t = apply(&["--tta-scales", "0.5,1,1.5", "--tta-flip"], &plain).unwrap();
        assert_eq!(
            t.tta,
            Some(TtaSpec {
                scales: vec![0.5, 1.0, 1.5],
                flip: true
            })
        );
        assert_eq!(apply(&["--no-tta"], &t).unwrap().tta, None);
        let flipped = apply(&["--tta-flip"], &plain).unwrap();
        assert_eq!(flipped.tta.unwrap().scales, vec![1.0]);
        assert_eq!(
            apply(&["--short-side", "800"], &plain).unwrap().short_side,
            Some(800)
        );
        let err = apply(&["--tta-scales", "0,1"], &plain)
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.tta.scales"), "{err}");
        assert!(apply(&["--no-tta", "--tta-flip"], &plain).is_err());
    }
}

/// `--score-threshold`, `--nms-threshold`, `--top-k`, `--keep`.
#[derive(Debug, Clone, Default, Args)]
pub struct PostprocessArgs {
    /// Minimum score (overrides the config's test.score_threshold).
    #[arg(long)]
    pub score_threshold: Option<f32>,
    /// NMS IoU threshold (overrides test.nms_threshold).
    #[arg(long)]
    pub nms_threshold: Option<f32>,
    /// Candidates entering NMS per image (overrides test.pre_nms_top_k).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Detections kept per image after NMS (overrides test.max_detections).
    #[arg(long)]
    pub keep: Option<usize>,
}

impl PostprocessArgs {
    /// Whether any flag is given.
    pub fn any(&self) -> bool {
        self.score_threshold.is_some()
            || self.nms_threshold.is_some()
            || self.top_k.is_some()
            || self.keep.is_some()
    }

    /// Applies the flags to `test` (the caller validates the result).
    pub fn apply(&self, test: &mut TestSpec) {
        if let Some(v) = self.score_threshold {
            test.score_threshold = v;
        }
        if let Some(v) = self.nms_threshold {
            test.nms_threshold = v;
        }
        if let Some(v) = self.top_k {
            test.pre_nms_top_k = v;
        }
        if let Some(v) = self.keep {
            test.max_detections = v;
        }
    }
}
