//! `visage import`: convert a PyTorch backbone checkpoint to safetensors once.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::backend::Flex;
use clap::{Args, ValueEnum};
use visage_backbone::weights::StateDict;
use visage_backbone::{Backbone, BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};

/// Backbone architectures whose PyTorch checkpoints can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// torchvision resnet18.
    Resnet18,
    /// torchvision resnet34.
    Resnet34,
    /// torchvision resnet50.
    Resnet50,
    /// torchvision resnet101.
    Resnet101,
    /// torchvision resnet152.
    Resnet152,
    /// Pytorch_Retinaface MobileNetV1 ×0.25.
    #[value(name = "mobilenet0.25")]
    Mobilenet025,
}

/// `visage import WEIGHTS.pth --arch resnet50 --out FILE.safetensors`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A `torch.save(model.state_dict())` file (`.pth`, `.pt`, `.tar`; zip or legacy format),
    /// or a safetensors file.
    pub weights: PathBuf,
    /// The architecture the checkpoint belongs to.
    #[arg(long, value_enum)]
    pub arch: Arch,
    /// Where to write the safetensors file (torchvision / Pytorch_Retinaface key names).
    #[arg(long)]
    pub out: PathBuf,
    /// Take only the keys under this prefix, with the prefix removed (e.g. `body.` to take the
    /// backbone out of a Pytorch_Retinaface detector checkpoint).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Channel width multiplier of the network (torchvision: 1; MobileNet-0.25: 0.25). Only
    /// needed for reduced-width test models.
    #[arg(long)]
    pub width_multiplier: Option<f32>,
}

fn backbone_config(args: &ImportArgs) -> BackboneConfig {
    let resnet = |depth| {
        BackboneConfig::ResNet(
            ResNetConfig::new(depth).with_width_multiplier(args.width_multiplier.unwrap_or(1.0)),
        )
    };
    match args.arch {
        Arch::Resnet18 => resnet(ResNetDepth::D18),
        Arch::Resnet34 => resnet(ResNetDepth::D34),
        Arch::Resnet50 => resnet(ResNetDepth::D50),
        Arch::Resnet101 => resnet(ResNetDepth::D101),
        Arch::Resnet152 => resnet(ResNetDepth::D152),
        Arch::Mobilenet025 => BackboneConfig::MobileNet(
            MobileNetV1Config::new().with_width_multiplier(args.width_multiplier.unwrap_or(0.25)),
        ),
    }
}

/// Runs the command.
pub fn run(args: ImportArgs) -> Result<()> {
    if let Some(w) = args.width_multiplier {
        anyhow::ensure!(
            w.is_finite() && w > 0.0,
            "--width-multiplier must be > 0, got {w}"
        );
    }
    let mut dict = StateDict::read(&args.weights)?;
    if let Some(prefix) = &args.prefix {
        let sub = dict.with_prefix_removed(prefix);
        anyhow::ensure!(
            !sub.is_empty(),
            "{}: no key starts with `{prefix}` (first keys: {})",
            args.weights.display(),
            dict.keys().take(5).collect::<Vec<_>>().join(", ")
        );
        dict = sub;
    }
    let device = Default::default();
    let backbone: Backbone<Flex> = backbone_config(&args).init(&device);
    let layout = backbone.torch_layout();
    let ignored = dict.keys().filter(|k| (layout.is_ignored)(k)).count();
    let backbone = backbone.load_state_dict(&dict)?;
    let metadata = HashMap::from([
        ("source".to_string(), args.weights.display().to_string()),
        (
            "arch".to_string(),
            format!("{:?}", args.arch).to_lowercase(),
        ),
        ("layout".to_string(), layout.name.to_string()),
        (
            "producer".to_string(),
            format!("visage {}", env!("CARGO_PKG_VERSION")),
        ),
    ]);
    backbone.save_safetensors(&args.out, metadata)?;
    // Read the written file back through the same path a config's `weights` takes.
    let check: Backbone<Flex> = backbone_config(&args).init(&device);
    check
        .load_file(&args.out)
        .with_context(|| format!("verifying {}", args.out.display()))?;
    eprintln!(
        "{}: {} tensors read, {} ignored (classifier, BatchNorm counters), {} values \
         (parameters and BatchNorm statistics) loaded into {}; wrote {} ({} bytes), verified",
        args.weights.display(),
        dict.len(),
        ignored,
        burn::module::Module::num_params(&backbone),
        args.arch
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default(),
        args.out.display(),
        std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0)
    );
    Ok(())
}
