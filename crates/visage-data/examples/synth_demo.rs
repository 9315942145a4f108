//! Generates a synthetic WIDER FACE, or draws val images of one with their boxes.
//!
//! ```text
//! cargo run -p visage-data --example synth_demo -- generate <root> <train> <val>
//! cargo run -p visage-data --example synth_demo -- draw <root> <out.png> <first> [<count>]
//! cargo run -p visage-data --example synth_demo -- load <root> <batch> <size> <threads>
//! ```
//! `load` times one epoch of the training loader over `train/label.txt`.
//! `draw` tiles `count` val images (from index `first`, default 1) in a grid of three columns;
//! green boxes are valid faces, red ones invalid.

use std::path::PathBuf;
use std::time::Instant;

use image::{imageops, Rgb, RgbImage};
use visage_data::{
    generate, load_rgb, read_wider_txt, Dataset, Loader, LoaderConfig, SelectionPolicy, SynthConfig,
};

fn draw_rect(img: &mut RgbImage, b: [f32; 4], c: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let [x, y, bw, bh] = b.map(|v| v as i64);
    let mut put = |px: i64, py: i64| {
        if px >= 0 && py >= 0 && px < w && py < h {
            img.put_pixel(px as u32, py as u32, c);
        }
    };
    for px in x..=x + bw {
        put(px, y);
        put(px, y + bh);
    }
    for py in y..=y + bh {
        put(x, py);
        put(x + bw, py);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| format!("missing argument {i}; see the example's docs"))
    };
    let root = PathBuf::from(arg(1)?);
    match arg(0)?.as_str() {
        "generate" => {
            let cfg = SynthConfig {
                train_images: arg(2)?.parse()?,
                val_images: arg(3)?.parse()?,
                ..SynthConfig::default()
            };
            let t = Instant::now();
            let summary = generate(&root, &cfg)?;
            println!(
                "generated in {:.2} s: {summary:?}",
                t.elapsed().as_secs_f64()
            );
        }
        "draw" => {
            let first: usize = arg(3)?.parse()?;
            let count: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1);
            let anns = read_wider_txt(&root.join("wider_face_split/wider_face_val_bbx_gt.txt"))?;
            let tiles: Vec<RgbImage> = anns
                .iter()
                .skip(first)
                .take(count)
                .map(|ann| {
                    let mut img = load_rgb(&root.join("WIDER_val/images").join(&ann.path))?;
                    for f in &ann.faces {
                        let c = if f.attributes.invalid != 0 {
                            Rgb([255, 0, 0])
                        } else {
                            Rgb([0, 255, 0])
                        };
                        draw_rect(&mut img, f.bbox, c);
                        println!("{} {:?} {:?}", ann.path, f.bbox, f.attributes);
                    }
                    Ok(img)
                })
                .collect::<Result<_, visage_data::DataError>>()?;
            let cols = tiles.len().clamp(1, 3) as u32;
            let rows = (tiles.len() as u32).div_ceil(cols);
            let (tw, th) = (
                tiles.iter().map(|t| t.width()).max().unwrap_or(1),
                tiles.iter().map(|t| t.height()).max().unwrap_or(1),
            );
            let mut canvas = RgbImage::from_pixel(cols * tw, rows * th, Rgb([255, 255, 255]));
            for (k, t) in tiles.iter().enumerate() {
                let k = k as u32;
                imageops::replace(
                    &mut canvas,
                    t,
                    ((k % cols) * tw) as i64,
                    ((k / cols) * th) as i64,
                );
            }
            canvas.save(arg(2)?)?;
        }
        "load" => {
            let t = Instant::now();
            let (ds, report) = Dataset::open_label(
                &root.join("train/label.txt"),
                &root.join("WIDER_train/images"),
                &SelectionPolicy::default(),
            )?;
            println!("opened in {:.2} s: {report:?}", t.elapsed().as_secs_f64());
            let cfg = LoaderConfig {
                batch_size: arg(2)?.parse()?,
                input_size: arg(3)?.parse()?,
                threads: arg(4)?.parse()?,
                ..LoaderConfig::default()
            };
            let loader = Loader::new(ds, cfg)?;
            let t = Instant::now();
            let mut faces = 0;
            for batch in loader.epoch(0) {
                faces += batch?.targets.iter().map(|t| t.boxes.len()).sum::<usize>();
            }
            let secs = t.elapsed().as_secs_f64();
            let n = loader.batches_per_epoch();
            println!(
                "{n} batches in {secs:.2} s ({:.1} ms/batch), {faces} faces",
                1000.0 * secs / n.max(1) as f64
            );
        }
        other => return Err(format!("unknown command `{other}` (generate | draw)").into()),
    }
    Ok(())
}
