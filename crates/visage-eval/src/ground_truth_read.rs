//! [`GroundTruth::read_dir`]: the four official `.mat` files into the typed ground truth,
//! validating every cell (errors name the file and the `variable{i}{j}` cell).

use std::collections::HashMap;
use std::path::Path;

use crate::ground_truth::{attr_set, setting_file, LABELS};
use crate::mat_value::MatValue;
use crate::read_mat;
use crate::{EvalError, EventGt, FaceAttributes, GroundTruth, ImageGt, Setting};

impl GroundTruth {
    /// Reads the four official files from `dir`.
    pub fn read_dir(dir: &Path) -> Result<Self, EvalError> {
        let main_path = dir.join("wider_face_val.mat");
        let main = Vars::read(&main_path)?;
        let events = main.cells("event_list")?;
        let files = main.cells("file_list")?;
        let bbx = main.cells("face_bbx_list")?;
        let labels: Vec<&[MatValue]> = LABELS
            .iter()
            .map(|l| main.cells(&format!("{l}_label_list")))
            .collect::<Result<_, _>>()?;
        let mut gt = GroundTruth::default();
        for (i, ev) in events.iter().enumerate() {
            let name = main.text(ev, &format!("event_list{{{}}}", i + 1))?;
            let names = main.sub_cells(files, i, "file_list")?;
            let boxes = main.sub_cells(bbx, i, "face_bbx_list")?;
            let mut images = Vec::with_capacity(names.len());
            for (j, n) in names.iter().enumerate() {
                let at = format!("{{{}}}{{{}}}", i + 1, j + 1);
                let name = main.text(n, &format!("file_list{at}"))?;
                let b = main.matrix(
                    boxes.get(j),
                    &format!("face_bbx_list{at}"),
                    4,
                    i32::MIN as f64,
                    i32::MAX as f64,
                )?;
                let k = b.len() / 4;
                let mut image = ImageGt {
                    name,
                    ..Default::default()
                };
                image.boxes = (0..k)
                    .map(|r| [0, 1, 2, 3].map(|c| b[c * k + r] as i32))
                    .collect();
                image.attributes = vec![FaceAttributes::default(); k];
                for (li, l) in labels.iter().enumerate() {
                    let var = format!("{}_label_list{at}", LABELS[li]);
                    let cells = main.sub_cells(l, i, &var)?;
                    let v = main.matrix(cells.get(j), &var, 1, 0.0, 255.0)?;
                    if v.len() != k {
                        return Err(main.bad(&var, format!("{} labels for {k} boxes", v.len())));
                    }
                    for (a, &x) in image.attributes.iter_mut().zip(&v) {
                        attr_set(a, li, x as u8);
                    }
                }
                images.push(image);
            }
            if boxes.len() != images.len() {
                return Err(main.bad(
                    &format!("face_bbx_list{{{}}}", i + 1),
                    format!("{} entries for {} files", boxes.len(), images.len()),
                ));
            }
            gt.events.push(EventGt { name, images });
        }
        for s in Setting::ALL {
            let path = dir.join(setting_file(s));
            let vars = Vars::read(&path)?;
            let lists = vars.cells("gt_list")?;
            if lists.len() != gt.events.len() {
                return Err(vars.bad(
                    "gt_list",
                    format!("{} events, expected {}", lists.len(), gt.events.len()),
                ));
            }
            for (i, ev) in gt.events.iter_mut().enumerate() {
                let cells = vars.sub_cells(lists, i, "gt_list")?;
                if cells.len() != ev.images.len() {
                    return Err(vars.bad(
                        &format!("gt_list{{{}}}", i + 1),
                        format!("{} images, expected {}", cells.len(), ev.images.len()),
                    ));
                }
                for (j, img) in ev.images.iter_mut().enumerate() {
                    let var = format!("gt_list{{{}}}{{{}}}", i + 1, j + 1);
                    let k = img.boxes.len() as f64;
                    let v = vars.matrix(cells.get(j), &var, 1, 1.0, k)?;
                    let kept = v.iter().map(|&x| x as u32).collect();
                    match s {
                        Setting::Easy => img.easy = kept,
                        Setting::Medium => img.medium = kept,
                        Setting::Hard => img.hard = kept,
                    }
                }
            }
        }
        for img in gt.events.iter_mut().flat_map(|e| e.images.iter_mut()) {
            let zero_row = img.boxes == [[0; 4]] && img.attributes == [FaceAttributes::default()];
            if zero_row && img.easy.is_empty() && img.medium.is_empty() && img.hard.is_empty() {
                img.boxes.clear();
                img.attributes.clear();
            }
        }
        Ok(gt)
    }
}

/// The variables of one `.mat` file, with typed accessors that name the file and variable.
struct Vars {
    path: std::path::PathBuf,
    map: HashMap<String, MatValue>,
}

impl Vars {
    fn read(path: &Path) -> Result<Self, EvalError> {
        Ok(Vars {
            path: path.to_path_buf(),
            map: read_mat(path)?.into_iter().collect(),
        })
    }

    fn bad(&self, variable: &str, detail: String) -> EvalError {
        EvalError::MatVariable {
            path: self.path.clone(),
            variable: variable.to_string(),
            detail,
        }
    }

    fn cells(&self, name: &str) -> Result<&[MatValue], EvalError> {
        match self.map.get(name) {
            Some(MatValue::Cell { items, .. }) => Ok(items),
            Some(_) => Err(self.bad(name, "is not a cell array".into())),
            None => Err(self.bad(name, "is missing".into())),
        }
    }

    fn sub_cells<'a>(
        &self,
        outer: &'a [MatValue],
        i: usize,
        var: &str,
    ) -> Result<&'a [MatValue], EvalError> {
        match outer.get(i) {
            Some(MatValue::Cell { items, .. }) => Ok(items),
            Some(_) => Err(self.bad(&format!("{var}{{{}}}", i + 1), "is not a cell array".into())),
            None => Err(self.bad(var, format!("has no entry {}", i + 1))),
        }
    }

    fn text(&self, v: &MatValue, var: &str) -> Result<String, EvalError> {
        match v {
            MatValue::Char { text, .. } => Ok(text.clone()),
            _ => Err(self.bad(var, "is not a char array".into())),
        }
    }

    /// A numeric k×`cols` matrix (empty allowed) with integer values in `[lo, hi]`.
    fn matrix(
        &self,
        v: Option<&MatValue>,
        var: &str,
        cols: usize,
        lo: f64,
        hi: f64,
    ) -> Result<Vec<f64>, EvalError> {
        let Some(MatValue::Numeric { dims, data, .. }) = v else {
            return Err(self.bad(var, "is missing or not numeric".into()));
        };
        let vector_ok = cols == 1 && dims.iter().filter(|&&d| d != 1).count() <= 1;
        if !data.is_empty() && !vector_ok && (dims.len() != 2 || dims[1] != cols) {
            return Err(self.bad(var, format!("has dims {dims:?}, expected k×{cols}")));
        }
        if let Some(x) = data.iter().find(|&&x| x.fract() != 0.0 || x < lo || x > hi) {
            return Err(self.bad(var, format!("value {x} is not an integer in [{lo}, {hi}]")));
        }
        Ok(data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground_truth::tests::{sample, shared_dir};

    #[test]
    fn real_ground_truth_counts() {
        let Some(shared) = shared_dir() else { return };
        let gt = GroundTruth::read_dir(&shared.join("wider/ground_truth")).unwrap();
        let zero = gt
            .events
            .iter()
            .flat_map(|e| &e.images)
            .filter(|i| i.boxes.is_empty())
            .count();
        assert_eq!(zero, 4);
        assert_eq!(gt.num_faces(), 39704);
        assert_eq!(gt.events.len(), 61);
        assert_eq!(gt.num_images(), 3226);
        assert_eq!(gt.num_boxes(), 39708);
        assert_eq!(gt.num_in(Setting::Easy), 7211);
        assert_eq!(gt.num_in(Setting::Medium), 13319);
        assert_eq!(gt.num_in(Setting::Hard), 31958);
    }

    #[test]
    fn bad_gt_list_index_names_the_cell() {
        let dir = tempfile::tempdir().unwrap();
        let mut gt = sample();
        gt.events[1].images[0].hard = vec![2];
        gt.write_dir(dir.path()).unwrap();
        let e = GroundTruth::read_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("wider_easy_val.mat") || e.contains("wider_hard_val.mat"),
            "{e}"
        );
        assert!(e.contains("gt_list{2}{1}") && e.contains("value 2"), "{e}");
        let e = GroundTruth::read_dir(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wider_face_val.mat"), "{e}");
    }
}
