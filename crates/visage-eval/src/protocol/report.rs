//! The result of the protocol ([`SettingResult`], [`EvalReport`]) and its presentations: the
//! saved JSON report (written by [`EvalReport::to_json_labelled`], read back by
//! [`ReportFile::parse`]) and the printed table.

use std::fmt;

use crate::Setting;

/// One setting's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingResult {
    /// VOC average precision.
    pub ap: f64,
    /// Precision at thresholds `1 − (t+1)/1000`, t = 0..1000 (0 where there are no proposals).
    pub precision: Vec<f64>,
    /// Recall at the same thresholds.
    pub recall: Vec<f64>,
    /// Faces counted (the total of the setting's `gt_list`).
    pub num_faces: usize,
}

/// Easy / Medium / Hard results.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Easy setting.
    pub easy: SettingResult,
    /// Medium setting.
    pub medium: SettingResult,
    /// Hard setting.
    pub hard: SettingResult,
}

impl EvalReport {
    /// The result of one setting.
    pub fn get(&self, setting: Setting) -> &SettingResult {
        match setting {
            Setting::Easy => &self.easy,
            Setting::Medium => &self.medium,
            Setting::Hard => &self.hard,
        }
    }

    /// The report as JSON, without a run label: see [`EvalReport::to_json_labelled`].
    pub fn to_json(&self) -> String {
        self.to_json_labelled(None)
    }

    /// `{"easy": ap, "medium": ap, "hard": ap, "num_faces": {...}, "label": "..",
    /// "curves": {"easy": {"precision": [..], "recall": [..]}, ..}}`, numbers in shortest
    /// round-trip form (so [`ReportFile::parse`] reads back exactly this report). `label` is
    /// left out when `None`; the curves hold the 1000 thresholds of the protocol.
    pub fn to_json_labelled(&self, label: Option<&str>) -> String {
        let num = |v: f64| serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
        let list = |v: &[f64]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut out = format!(
            "{{\"easy\": {}, \"medium\": {}, \"hard\": {}, \"num_faces\": {{\"easy\": {}, \"medium\": {}, \"hard\": {}}}",
            num(self.easy.ap),
            num(self.medium.ap),
            num(self.hard.ap),
            self.easy.num_faces,
            self.medium.num_faces,
            self.hard.num_faces
        );
        if let Some(label) = label {
            let label = serde_json::to_string(label).unwrap_or_else(|_| "null".into());
            out.push_str(&format!(", \"label\": {label}"));
        }
        out.push_str(", \"curves\": {");
        for (i, setting) in Setting::ALL.into_iter().enumerate() {
            let r = self.get(setting);
            out.push_str(&format!(
                "{}\"{}\": {{\"precision\": {}, \"recall\": {}}}",
                if i > 0 { ", " } else { "" },
                setting.name(),
                list(&r.precision),
                list(&r.recall)
            ));
        }
        out.push_str("}}");
        out
    }

    /// Reads back the JSON of [`EvalReport::to_json`] (the label, if any, is dropped: see
    /// [`ReportFile::parse`]).
    pub fn from_json(json: &str) -> Result<EvalReport, ReportParseError> {
        ReportFile::parse(json).map(|f| f.report)
    }
}

/// Why a saved report (`visage eval --json`) could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportParseError {
    /// Not JSON, or not the report's shape.
    #[error("not an evaluation report: {0}")]
    Json(#[from] serde_json::Error),
    /// A report written before the PR curves were saved, or one whose curves are inconsistent.
    #[error("{0}")]
    Curves(String),
}

/// A report as saved by [`EvalReport::to_json_labelled`]: the run label and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFile {
    /// The run label, if one was saved.
    pub label: Option<String>,
    /// APs, face counts and PR curves.
    pub report: EvalReport,
}

#[derive(serde::Deserialize)]
struct RawCurve {
    precision: Vec<f64>,
    recall: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct RawCounts {
    easy: usize,
    medium: usize,
    hard: usize,
}

#[derive(serde::Deserialize)]
struct RawCurves {
    easy: RawCurve,
    medium: RawCurve,
    hard: RawCurve,
}

#[derive(serde::Deserialize)]
struct RawReport {
    easy: f64,
    medium: f64,
    hard: f64,
    num_faces: RawCounts,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    curves: Option<RawCurves>,
}

impl ReportFile {
    /// Parses the JSON of [`EvalReport::to_json_labelled`]. A report without `"curves"` (as
    /// written before they were saved) is an error: it cannot be plotted.
    pub fn parse(json: &str) -> Result<ReportFile, ReportParseError> {
        let raw: RawReport = serde_json::from_str(json)?;
        let curves = raw.curves.ok_or_else(|| {
            ReportParseError::Curves(
                "the report has no \"curves\" (written by an older visage: re-run `visage eval --json`)"
                    .into(),
            )
        })?;
        let setting = |name: &str, ap: f64, num_faces: usize, c: RawCurve| {
            if c.precision.len() != c.recall.len() {
                return Err(ReportParseError::Curves(format!(
                    "curves.{name}: {} precision values but {} recall values",
                    c.precision.len(),
                    c.recall.len()
                )));
            }
            Ok(SettingResult {
                ap,
                precision: c.precision,
                recall: c.recall,
                num_faces,
            })
        };
        Ok(ReportFile {
            label: raw.label,
            report: EvalReport {
                easy: setting("easy", raw.easy, raw.num_faces.easy, curves.easy)?,
                medium: setting("medium", raw.medium, raw.num_faces.medium, curves.medium)?,
                hard: setting("hard", raw.hard, raw.num_faces.hard, curves.hard)?,
            },
        })
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<8} {:>8} {:>8}", "Setting", "AP", "Faces")?;
        for (label, r) in [
            ("Easy", &self.easy),
            ("Medium", &self.medium),
            ("Hard", &self.hard),
        ] {
            writeln!(f, "{label:<8} {:>8.4} {:>8}", r.ap, r.num_faces)?;
        }
        Ok(())
    }
}
