//! Precision-recall curves drawn like the WIDER FACE toolbox's `wider_plot` (`plot_pr.m`): one
//! figure per setting, every run's curve overlaid, Recall on x and Precision on y over [0, 1] with
//! a grid and a box, legend entries `"<label>-<AP to 3 decimals>"` sorted by AP descending, line
//! colours from MATLAB's `hsv(n)` colormap. The legend sits in the lower left corner (the
//! toolbox's `SouthEast` would cover the curves' tails, where precision falls at high recall).
//!
//! Each figure is written twice: `pr_<setting>.png` ([`PNG_SIZE`], rendered in memory by
//! plotters and encoded by `image`) and `pr_<setting>.svg` (text kept as `<text>`). Glyphs come
//! from the DejaVu Sans bundled by the `dejavu` crate, so no system font is needed.
//!
//! Points with precision and recall both 0 are left out: they are the thresholds at which no
//! detection passes yet (precision 0/0, NaN in the official code, which MATLAB does not draw).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, RGBColor};

use crate::{EvalReport, Setting};

/// Size of the PNG figures in pixels (the SVG ones have the same user units).
pub const PNG_SIZE: (u32, u32) = (800, 600);

/// Why the plots could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to plot.
    #[error("no runs to plot")]
    NoRuns,
    /// An operating-system error while creating `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// plotters failed to draw the figure.
    #[error("{}: drawing failed: {detail}", path.display())]
    Draw {
        /// The figure being drawn.
        path: PathBuf,
        /// The backend's message.
        detail: String,
    },
    /// The PNG could not be encoded or written.
    #[error("{}: {source}", path.display())]
    Png {
        /// The PNG file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
}

const FONT: &str = "sans-serif";

/// Registers the bundled DejaVu Sans with plotters (once per process).
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType file shipped by the crate: failure would be a bug.
        // (Bold text must be built as `(FONT, size, FontStyle::Bold)`: plotters'
        // `FontDesc::style` keeps the regular glyphs.)
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The legend text of a run: `"<label>-<AP to 3 decimals>"`, as `wider_plot`.
pub fn legend_entry(label: &str, ap: f64) -> String {
    format!("{label}-{ap:.3}")
}

/// Colour `i` of MATLAB's `hsv(n)` (hue `i/n`, full saturation), value lowered to 0.85 so that
/// yellow and cyan stay readable on white.
fn hsv_color(i: usize, n: usize) -> RGBColor {
    let h = 6.0 * i as f64 / n.max(1) as f64;
    let v = 0.85;
    let f = h - h.floor();
    let (q, t) = (v * (1.0 - f), v * f);
    let (r, g, b) = match h.floor() as u32 % 6 {
        0 => (v, t, 0.0),
        1 => (q, v, 0.0),
        2 => (0.0, v, t),
        3 => (0.0, q, v),
        4 => (t, 0.0, v),
        _ => (v, 0.0, q),
    };
    let byte = |c: f64| (c * 255.0).round() as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// One curve of one figure.
struct Curve {
    legend: String,
    points: Vec<(f64, f64)>,
}

/// The curves of one setting, sorted by AP descending (ties keep the run order).
fn curves(runs: &[(&str, &EvalReport)], setting: Setting) -> Vec<Curve> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (runs[a].1.get(setting).ap, runs[b].1.get(setting).ap);
        b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal)
    });
    order
        .into_iter()
        .map(|i| {
            let (label, report) = runs[i];
            let r = report.get(setting);
            let points = r
                .recall
                .iter()
                .zip(&r.precision)
                .filter(|&(&rec, &prec)| rec.is_finite() && prec.is_finite())
                .filter(|&(&rec, &prec)| !(rec == 0.0 && prec == 0.0))
                .map(|(&rec, &prec)| (rec, prec))
                .collect();
            Curve {
                legend: legend_entry(label, r.ap),
                points,
            }
        })
        .collect()
}

fn title(setting: Setting) -> &'static str {
    match setting {
        Setting::Easy => "Easy",
        Setting::Medium => "Medium",
        Setting::Hard => "Hard",
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[Curve],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 30, FontStyle::Bold))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_desc("Recall")
        .y_desc("Precision")
        .axis_desc_style((FONT, 22, FontStyle::Bold))
        .label_style((FONT, 17))
        .bold_line_style(RGBColor(210, 210, 210).stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.stroke_width(2))
        .draw()?;
    let n = curves.len();
    for (i, curve) in curves.iter().enumerate() {
        let style = hsv_color(i, n).stroke_width(3);
        chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), style))?
            .label(curve.legend.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], style));
    }
    // `box on`: close the axes on the top and right.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 1.0), (1.0, 1.0), (1.0, 0.0)],
        BLACK.stroke_width(2),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .margin(12)
        .label_font((FONT, 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

/// Writes `pr_easy`, `pr_medium` and `pr_hard` as `.png` and `.svg` into `out_dir` (created if
/// missing), one curve per `(label, report)` run; returns the six paths.
pub fn plot_pr_curves(
    runs: &[(&str, &EvalReport)],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    if runs.is_empty() {
        return Err(PlotError::NoRuns);
    }
    register_fonts();
    std::fs::create_dir_all(out_dir).map_err(|source| PlotError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let (w, h) = PNG_SIZE;
    let mut written = Vec::with_capacity(6);
    for setting in Setting::ALL {
        let curves = curves(runs, setting);
        let title = title(setting);

        let png = out_dir.join(format!("pr_{}.png", setting.name()));
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            draw(&root, title, &curves).map_err(|e| PlotError::Draw {
                path: png.clone(),
                detail: e.to_string(),
            })?;
        }
        let image = image::RgbImage::from_raw(w, h, pixels).expect("buffer of w * h * 3 bytes");
        image
            .save_with_format(&png, image::ImageFormat::Png)
            .map_err(|source| PlotError::Png {
                path: png.clone(),
                source,
            })?;
        written.push(png);

        let svg_path = out_dir.join(format!("pr_{}.svg", setting.name()));
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            draw(&root, title, &curves).map_err(|e| PlotError::Draw {
                path: svg_path.clone(),
                detail: e.to_string(),
            })?;
        }
        std::fs::write(&svg_path, svg).map_err(|source| PlotError::Io {
            path: svg_path.clone(),
            source,
        })?;
        written.push(svg_path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SettingResult;

    /// A synthetic report: precision falls from `top` as recall rises to `reach`.
    fn report(top: f64, reach: f64) -> EvalReport {
        let setting = |scale: f64| {
            let recall: Vec<f64> = (0..1000)
                .map(|t| reach * scale * t as f64 / 999.0)
                .collect();
            let precision: Vec<f64> = recall.iter().map(|r| top * (1.0 - 0.5 * r)).collect();
            SettingResult {
                ap: crate::voc_ap(&recall, &precision),
                precision,
                recall,
                num_faces: 10,
            }
        };
        EvalReport {
            easy: setting(1.0),
            medium: setting(0.9),
            hard: setting(0.6),
        }
    }

    #[test]
    fn legend_entries_are_sorted_by_ap() {
        let (a, b) = (report(0.8, 0.7), report(0.95, 0.9));
        let c = curves(&[("weak", &a), ("strong", &b)], Setting::Hard);
        assert_eq!(c.len(), 2);
        assert!(c[0].legend.starts_with("strong-0."), "{}", c[0].legend);
        assert!(c[1].legend.starts_with("weak-0."), "{}", c[1].legend);
        assert_eq!(legend_entry("visage-r50", 0.91249), "visage-r50-0.912");
    }

    #[test]
    fn origin_points_are_not_drawn() {
        let mut r = report(1.0, 1.0);
        r.easy.precision[0] = 0.0;
        let c = curves(&[("x", &r)], Setting::Easy);
        assert_eq!(c[0].points.len(), 999);
    }

    #[test]
    fn hsv_matches_matlab_hues() {
        assert_eq!(hsv_color(0, 3), RGBColor(217, 0, 0));
        assert_eq!(hsv_color(1, 3), RGBColor(0, 217, 0));
        assert_eq!(hsv_color(2, 3), RGBColor(0, 0, 217));
    }

    #[test]
    fn writes_png_and_svg_per_setting() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (report(0.8, 0.7), report(0.95, 0.9));
        let files = plot_pr_curves(&[("run-a", &a), ("run-b", &b)], dir.path()).unwrap();
        assert_eq!(files.len(), 6);
        for setting in ["easy", "medium", "hard"] {
            let png = dir.path().join(format!("pr_{setting}.png"));
            let img = image::open(&png).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), PNG_SIZE);
            let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
            colours.sort_unstable();
            colours.dedup();
            assert!(colours.len() > 10, "{setting}: {} colours", colours.len());
            let svg =
                std::fs::read_to_string(dir.path().join(format!("pr_{setting}.svg"))).unwrap();
            assert!(svg.contains("<svg"));
            for text in ["Recall", "Precision", "run-a-0.", "run-b-0."] {
                assert!(svg.contains(text), "{setting}: no {text} in the SVG");
            }
        }
        let svg = std::fs::read_to_string(dir.path().join("pr_medium.svg")).unwrap();
        assert!(
            svg.contains(">Medium<") || svg.contains("Medium\n"),
            "title"
        );
        assert!(matches!(
            plot_pr_curves(&[], dir.path()),
            Err(PlotError::NoRuns)
        ));
    }
}
