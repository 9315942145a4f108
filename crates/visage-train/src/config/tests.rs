//! Tests of the experiment config: the shipped configs, round trips, errors naming the key.

use super::*;
use visage_data::{ChannelOrder, CropScale, OnBadImage};

fn quickstart_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/quickstart.toml")
}

#[test]
fn the_quickstart_config_loads_and_round_trips() {
    let config = ExperimentConfig::load(&quickstart_path()).unwrap();
    let again: ExperimentConfig = toml::from_str(&config.to_toml()).unwrap();
    assert_eq!(config, again);
}

/// Whether building the model of `spec` is too slow for a unit test (full-width ResNet-50
/// and deeper: tens of millions of parameters to initialise); those are validated only.
fn is_large(spec: &ModelSpec) -> bool {
    matches!(spec.backbone(), visage_model::BackboneSpec::Resnet(r)
            if r.depth >= 50 && r.width_multiplier >= 0.5)
}

/// Builds the model of a spec, whatever its family.
struct Build;

impl visage_model::WithFamily<burn::backend::Flex> for Build {
    type Output = Result<(), visage_model::ModelError>;

    fn run<M: visage_model::DetectorFamily<burn::backend::Flex>>(
        self,
        spec: &M::Spec,
    ) -> Self::Output {
        M::new(spec, &Default::default()).map(|_| ())
    }
}

#[test]
fn every_shipped_config_loads_round_trips_and_builds() {
    use burn::backend::Flex;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let again: ExperimentConfig = toml::from_str(&config.to_toml())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(config, again, "{}", path.display());
            if !is_large(&config.model) {
                config
                    .model
                    .with_family::<Flex, _>(Build)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    // Each detector of the seed papers with its paper recipe and a CPU-sized variant.
    for expected in [
        "quickstart",
        "fan",
        "fan-tiny",
        "srn",
        "srn-tiny",
        "ainnoface",
        "ainnoface-tiny",
        "df2s2",
        "df2s2-tiny",
        "retinaface-mnet",
        "retinaface-r50",
        "retinaface-mnet-tiny",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
}

#[test]
fn retinaface_configs_follow_pytorch_retinaface() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in ["retinaface-mnet", "retinaface-r50"] {
        let config = ExperimentConfig::load(&dir.join(format!("{name}.toml"))).unwrap();
        let ModelSpec::RetinaFace(spec) = &config.model else {
            panic!("{name} is not a RetinaFace config")
        };
        assert_eq!(
            spec.min_sizes,
            vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]]
        );
        assert_eq!(spec.variances, [0.1, 0.2]);
        assert_eq!(spec.assign.match_iou, 0.35);
        assert_eq!(spec.loss.neg_pos_ratio, 7.0);
        assert_eq!(spec.loss.box_weight, 2.0);
        assert_eq!(config.data.channel_order, ChannelOrder::Bgr);
        assert_eq!(config.data.mean, [104.0, 117.0, 123.0]);
        assert_eq!(config.data.std, [1.0; 3]);
        let t = &config.test;
        assert_eq!(
            (
                t.score_threshold,
                t.pre_nms_top_k,
                t.nms_threshold,
                t.max_detections
            ),
            (0.02, 5000, 0.4, 750)
        );
        assert_eq!(t.max_size, None, "detect.py runs at the original size");
    }
}

#[test]
fn an_unknown_key_names_the_file_and_line() {
    let text = std::fs::read_to_string(quickstart_path())
        .unwrap()
        .replace("[train]\n", "[train]\nlearning_rate = 0.1\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let err = ExperimentConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("learning_rate"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn a_bad_value_names_the_key() {
    let text = std::fs::read_to_string(quickstart_path()).unwrap();
    let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
    config.data.crop_scale = CropScale::Uniform([0.8, 0.5]);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("data.crop_scale"), "{err}");
    let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
    config.train.lr_steps = vec![5, 3];
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("train.lr_steps"), "{err}");
    let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
    config.train.loss_spike_factor = 0.5;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("train.loss_spike_factor"), "{err}");
    let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
    config.train.max_consecutive_skips = 0;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("train.max_consecutive_skips"), "{err}");
}

#[test]
fn the_long_run_keys_parse_with_their_defaults() {
    let text = std::fs::read_to_string(quickstart_path()).unwrap();
    let config: ExperimentConfig = toml::from_str(&text).unwrap();
    assert_eq!(config.train.on_non_finite, NonFinitePolicy::Stop);
    assert_eq!(config.train.checkpoint_every, 0);
    let text = text.replace(
        "[train]\n",
        "[train]\non_non_finite = \"skip\"\ncheckpoint_every = 50\n",
    );
    let config: ExperimentConfig = toml::from_str(&text).unwrap();
    assert_eq!(config.train.on_non_finite, NonFinitePolicy::Skip);
    assert_eq!(config.train.checkpoint_every, 50);
    let bad = text.replace("\"skip\"", "\"ignore\"");
    let err = toml::from_str::<ExperimentConfig>(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ignore") && err.contains("stop"), "{err}");
}

#[test]
fn data_augmentation_keys_parse_round_trip_and_name_their_key() {
    let base = std::fs::read_to_string(quickstart_path()).unwrap();
    let quick: ExperimentConfig = toml::from_str(&base).unwrap();
    assert_eq!(quick.data.crop_scale, CropScale::Uniform([0.3, 1.0]));
    assert!(!quick.data.colour_jitter && !quick.data.pad_to_square);
    assert!(!quick.data.random_interpolation);
    assert_eq!(quick.data.expand_max_ratio, 1.0);
    assert_eq!(quick.data.channel_order, ChannelOrder::Rgb);
    let with = |lines: &str| {
        let text = base.replace("crop_scale = [0.3, 1.0]", lines);
        assert_ne!(text, base);
        toml::from_str::<ExperimentConfig>(&text)
    };
    let c = with(
        "crop_scale = { choices = [0.3, 0.45, 0.6, 0.8, 1.0] }\ncolour_jitter = true\n\
             pad_to_square = true\nexpand_max_ratio = 4.0\nrandom_interpolation = true\n\
             channel_order = \"bgr\"",
    )
    .unwrap();
    assert_eq!(
        c.data.crop_scale,
        CropScale::Choices(vec![0.3, 0.45, 0.6, 0.8, 1.0])
    );
    assert_eq!(c.data.channel_order, ChannelOrder::Bgr);
    assert!(c.data.colour_jitter && c.data.pad_to_square && c.data.random_interpolation);
    c.validate().unwrap();
    let again: ExperimentConfig = toml::from_str(&c.to_toml()).unwrap();
    assert_eq!(c, again);
    let u = with("crop_scale = { uniform = [0.5, 1.0] }").unwrap();
    assert_eq!(u.data.crop_scale, CropScale::Uniform([0.5, 1.0]));
    for bad in [
        "crop_scale = { uniform = [0.5, 1.0], choices = [1.0] }",
        "crop_scale = { range = [0.5, 1.0] }",
        "crop_scale = [0.5]",
        "channel_order = \"rbg\"",
    ] {
        assert!(with(bad).is_err(), "{bad}");
    }
    for (line, key) in [
        ("crop_scale = { choices = [] }", "data.crop_scale.choices"),
        (
            "crop_scale = { choices = [0.5, 1.5] }",
            "data.crop_scale.choices",
        ),
        ("expand_max_ratio = 0.5", "data.expand_max_ratio"),
        (
            "expand_max_ratio = 2.0\nexpand_prob = 2.0",
            "data.expand_prob",
        ),
    ] {
        let err = with(line).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains(key), "{line}: {err}");
    }
}

#[test]
fn bad_image_and_prefetch_keys_default_parse_and_validate() {
    let base = std::fs::read_to_string(quickstart_path()).unwrap();
    let quick: ExperimentConfig = toml::from_str(&base).unwrap();
    assert_eq!(quick.data.on_bad_image, OnBadImage::Skip);
    assert_eq!(quick.data.max_image_pixels, 50_000_000);
    assert_eq!(quick.data.prefetch_batches, 2);
    let with = |lines: &str| {
        let text = base.replace("crop_scale = [0.3, 1.0]", lines);
        assert_ne!(text, base);
        toml::from_str::<ExperimentConfig>(&text)
    };
    let c = with(
        "crop_scale = [0.3, 1.0]
on_bad_image = \"error\"
max_image_pixels = 1000
             prefetch_batches = 4",
    )
    .unwrap();
    assert_eq!(c.data.on_bad_image, OnBadImage::Error);
    assert_eq!(
        (c.data.max_image_pixels, c.data.prefetch_batches),
        (1000, 4)
    );
    c.validate().unwrap();
    let again: ExperimentConfig = toml::from_str(&c.to_toml()).unwrap();
    assert_eq!(c, again);
    for bad in [
        "on_bad_image = \"ignore\"",
        "on_bad_image = true",
        "max_image_pixels = -1",
    ] {
        assert!(with(bad).is_err(), "{bad}");
    }
    for (line, key) in [
        ("max_image_pixels = 0", "data.max_image_pixels"),
        ("prefetch_batches = 0", "data.prefetch_batches"),
        ("prefetch_batches = 65", "data.prefetch_batches"),
    ] {
        let err = with(line).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains(key), "{line}: {err}");
    }
}

#[test]
fn devices_parse_and_replicas_is_refused_with_what_to_use() {
    // The quickstart without its own `devices` line, so each case sets the key once.
    let text: String = std::fs::read_to_string(quickstart_path())
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("devices ="))
        .map(|line| format!("{line}\n"))
        .collect();
    let with = |line: &str| -> Result<ExperimentConfig, String> {
        let text = text.replace("[train]\n", &format!("[train]\n{line}\n"));
        let config: ExperimentConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    };
    let config = with(r#"devices = ["cuda:0", "cuda:1"]"#).unwrap();
    assert_eq!(
        config.train.devices,
        [crate::DeviceName::Cuda(0), crate::DeviceName::Cuda(1)]
    );
    let again: ExperimentConfig = toml::from_str(&config.to_toml()).unwrap();
    assert_eq!(again.train.devices, config.train.devices);
    let err = with("replicas = 2").unwrap_err();
    assert!(
        err.contains("train.replicas") && err.contains(r#"devices = ["cpu", "cpu"]"#),
        "{err}"
    );
    let err = with(r#"devices = ["cuda:0", "cpu"]"#).unwrap_err();
    assert!(
        err.contains("train.devices") && err.contains("one backend"),
        "{err}"
    );
    let err = with(r#"devices = ["tpu"]"#).unwrap_err();
    assert!(err.contains("unknown device `tpu`"), "{err}");
    let many = format!("devices = [{}]", ["\"cpu\""; 9].join(", "));
    let err = with(&many).unwrap_err();
    assert!(err.contains("9 devices for a batch of 8"), "{err}");
}
