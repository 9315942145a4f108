//! Training-loader throughput: images/s for decode + augment + batch at 640×640, per thread
//! count, for comparison with `tools/bench/python_loader.py` (a Pytorch_Retinaface-style
//! loader) on the same images.
//!
//! ```text
//! cargo run -p visage-data --example loader_bench -- <root> [batches] [threads,...] [repeats]
//! ```
//! `<root>` is a synthetic set (`visage synth --out <root>`; generated here with 400 train
//! images when it has no `train/label.txt`). Reads `<root>/train/label.txt` with images under
//! `<root>/WIDER_train/images`. Per thread count (default `1,2`): one warm-up batch, then
//! `batches` (default 24) timed batches of 32, over as many epochs as needed, `repeats`
//! times (default 1). Prints wall-clock images/s, and images per CPU-second of the whole
//! process (user + system time of every thread, from `/proc/self/stat`): on a machine shared
//! with other work the second is the steadier per-core figure.
//!
//! The configuration follows Pytorch_Retinaface's `preproc`: crop side from {0.3, 0.45, 0.6,
//! 0.8, 1.0} × short edge with 250 tries, else the image padded to a square; its photometric
//! distortion; flip ½; resize to 640×640 with one of five interpolations; BGR planes minus
//! (104, 117, 123), std 1.

use std::path::PathBuf;
use std::time::Instant;

use visage_data::{
    generate, ChannelOrder, CropScale, Dataset, Loader, LoaderConfig, SelectionPolicy, SynthConfig,
};

/// User + system CPU seconds of this process (all threads), Linux only; 100 ticks per second.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the command name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(
        args.first()
            .ok_or("usage: loader_bench <root> [batches] [threads,...] [repeats]")?,
    );
    let batches: usize = args.get(1).map_or(Ok(24), |a| a.parse())?;
    let threads: Vec<usize> = args
        .get(2)
        .map_or("1,2", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let repeats: usize = args.get(3).map_or(Ok(1), |a| a.parse())?;

    let label = root.join("train/label.txt");
    if !label.exists() {
        let cfg = SynthConfig {
            train_images: 400,
            val_images: 10,
            ..SynthConfig::default()
        };
        println!(
            "generating {}: {:?}",
            root.display(),
            generate(&root, &cfg)?
        );
    }
    let (dataset, report) = Dataset::open_label(
        &label,
        &root.join("WIDER_train/images"),
        &SelectionPolicy::default(),
    )?;
    println!(
        "visage loader: {} images, {} faces kept, batch 32, 640x640, {batches} timed batches",
        report.images, report.faces_kept
    );

    for _ in 0..repeats {
        for &t in &threads {
            let cfg = LoaderConfig {
                batch_size: 32,
                input_size: 640,
                threads: t,
                crop_scale: CropScale::Choices(CropScale::RETINAFACE.to_vec()),
                pad_to_square: true,
                colour_jitter: true,
                random_interpolation: true,
                flip_prob: 0.5,
                channel_order: ChannelOrder::Bgr,
                mean: [104.0, 117.0, 123.0],
                std: [1.0, 1.0, 1.0],
                ..LoaderConfig::default()
            };
            let loader = Loader::new(dataset.clone(), cfg)?;
            let mut it = (0..).flat_map(|e| loader.epoch(e));
            let first = it.next().ok_or("empty epoch")??;
            assert_eq!(first.images.len(), 32 * 3 * 640 * 640);
            let (start, cpu0) = (Instant::now(), cpu_seconds());
            for _ in 0..batches {
                let b = it.next().ok_or("empty epoch")??;
                std::hint::black_box(&b.images);
            }
            let dt = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
            let ips = (batches * 32) as f64 / dt;
            let per_cpu = cpu.map_or_else(
                || "n/a".into(),
                |c| format!("{:.1}", (batches * 32) as f64 / c),
            );
            println!(
                "visage threads={t}: {ips:.1} images/s ({:.1} per core), {dt:.2} s for {batches} batches, \
                 {per_cpu} images per CPU-second",
                ips / t as f64
            );
        }
    }
    Ok(())
}
