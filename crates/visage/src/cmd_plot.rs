//! `visage plot`: overlay the precision-recall curves of saved reports (`visage eval --json`)
//! as the WIDER FACE toolbox's `wider_plot` does, one PNG and one SVG per setting.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use visage_eval::{plot_pr_curves, ReportFile};

/// Arguments of `visage plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Reports written by `visage eval --json`: one curve each.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Folder for pr_{easy,medium,hard}.{png,svg} (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Comma-separated legend labels, one per report in order (default: the label saved in
    /// each report, else its file stem).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
}

/// Runs `visage plot`.
pub fn run(args: PlotArgs) -> Result<()> {
    if !args.labels.is_empty() && args.labels.len() != args.reports.len() {
        bail!(
            "--labels has {} names for {} reports",
            args.labels.len(),
            args.reports.len()
        );
    }
    let mut runs = Vec::with_capacity(args.reports.len());
    for (i, path) in args.reports.iter().enumerate() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = ReportFile::parse(&text).with_context(|| format!("{}", path.display()))?;
        let label = match args.labels.get(i) {
            Some(label) => label.clone(),
            None => file.label.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("run{}", i + 1))
            }),
        };
        runs.push((label, file.report));
    }
    println!("{:<24} {:>8} {:>8} {:>8}", "Run", "Easy", "Medium", "Hard");
    for (label, r) in &runs {
        println!(
            "{label:<24} {:>8.4} {:>8.4} {:>8.4}",
            r.easy.ap, r.medium.ap, r.hard.ap
        );
    }
    let borrowed: Vec<(&str, &visage_eval::EvalReport)> =
        runs.iter().map(|(l, r)| (l.as_str(), r)).collect();
    let written = plot_pr_curves(&borrowed, &args.out)
        .with_context(|| format!("drawing the PR curves into {}", args.out.display()))?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
