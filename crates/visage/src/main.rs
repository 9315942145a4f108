//! `visage`: train, run and evaluate face detectors.
//!
//! ```text
//! visage synth  --out data/synth
//! visage train  --config configs/quickstart.toml
//! visage detect photo.jpg photos/ --weights runs/quickstart/best --json out.json --draw drawn/
//! visage eval   --split val --weights runs/quickstart/best
//! visage eval   --predictions pred/ --gt eval_tools/ground_truth/ [--json report.json]
//! visage export --weights runs/quickstart/best --out face.onnx --postprocess
//! visage train  --config configs/fan.toml --devices cuda:0,cuda:1,cuda:2,cuda:3
//! visage train  --config configs/fan.toml --nnodes 2 --node-rank 0 --master-addr node0:29500
//! visage config fan > fan.toml             # the shipped configs, built into the binary
//! visage check-device --device cuda:0     # one training step per family, against the CPU
//! visage import resnet50-0676ba61.pth --arch resnet50 --out resnet50.safetensors
//! ```

mod backend;
mod cmd_check_device;
mod cmd_config;
mod cmd_coordinator;
mod cmd_detect;
mod cmd_eval;
mod cmd_export;
mod cmd_import;
mod cmd_plot;
mod cmd_synth;
mod cmd_train;
mod detect_output;
mod draw;
mod images;
mod mesh_output;
mod test_time_args;
mod train_progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Face detection in Rust: FAN, SRN / AInnoFace, DF²S², RetinaFace on Burn.
#[derive(Debug, Parser)]
#[command(name = "visage", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the synthetic WIDER FACE set (real layout, .txt and .mat annotations).
    Synth(cmd_synth::SynthArgs),
    /// Train a detector from a config file.
    Train(cmd_train::TrainArgs),
    /// Detect faces in images and directories of images.
    Detect(cmd_detect::DetectArgs),
    /// Score a detector (or an existing submission) with the official WIDER FACE protocol.
    Eval(cmd_eval::EvalArgs),
    /// Write a trained detector as an ONNX model (raw outputs, or detections with
    /// --postprocess).
    Export(cmd_export::ExportArgs),
    /// Convert a PyTorch backbone checkpoint (.pth) to a verified safetensors file.
    Import(cmd_import::ImportArgs),
    /// Run the coordinator of multi-machine training on its own (rank 0 of `visage train
    /// --nnodes N` otherwise starts one).
    Coordinator(cmd_coordinator::CoordinatorArgs),
    /// Print a shipped experiment config (`configs/NAME.toml`), or list them.
    Config(cmd_config::ConfigArgs),
    /// Check that a GPU backend trains as the CPU does: one step of every tiny family on
    /// both, compared.
    CheckDevice(cmd_check_device::CheckDeviceArgs),
    /// Overlay the precision-recall curves of saved reports (eval --json) as PNG and SVG.
    Plot(cmd_plot::PlotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth(args) => cmd_synth::run(args),
        Command::Train(args) => cmd_train::run(args),
        Command::Detect(args) => cmd_detect::run(args),
        Command::Eval(args) => cmd_eval::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::Import(args) => cmd_import::run(args),
        Command::Plot(args) => cmd_plot::run(args),
        Command::Config(args) => cmd_config::run(args),
        Command::Coordinator(args) => cmd_coordinator::run(args),
        Command::CheckDevice(args) => cmd_check_device::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
