//! The MATLAB v5 writer: one zlib-compressed `miMATRIX` element per variable, like MATLAB's
//! `save -v7` and the real WIDER FACE ground-truth files.
//!
//! Storage types follow the real files: integer classes are stored in their own type (int32
//! boxes, uint8 labels), char as miUINT16, and class `double`/`single` arrays whose values are
//! all integers are stored in the smallest of uint8, int8, uint16, int16, uint32, int32 that
//! holds them (so `gt_list`, class double, is stored as uint8/uint16 as in the real files).

use std::io::Write;
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::mat_value::*;
use crate::EvalError;

/// Writes `vars` to `path` as a MATLAB v5 file with compressed elements.
///
/// Errors (naming the variable) when a name is not a valid MATLAB identifier, when `dims` do not
/// match the data length, or when a value does not fit its class (e.g. 300 as uint8, 1.5 as
/// int32).
pub fn write_mat(path: &Path, vars: &[(&str, MatValue)]) -> Result<(), EvalError> {
    let mut out = Vec::with_capacity(1 << 16);
    let mut header = format!(
        "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: visage-eval {}",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    header.resize(116, b' ');
    out.extend_from_slice(&header);
    out.extend_from_slice(&[0u8; 8]); // subsystem data offset: none
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    for (name, value) in vars {
        let fail = |detail: String| EvalError::MatWrite {
            path: path.to_path_buf(),
            variable: name.to_string(),
            detail,
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(fail("not a valid MATLAB variable name".into()));
        }
        let mut matrix = Vec::new();
        encode_matrix(&mut matrix, name, value).map_err(fail)?;
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&matrix).map_err(|e| EvalError::io(path, e))?;
        let packed = z.finish().map_err(|e| EvalError::io(path, e))?;
        let len =
            u32::try_from(packed.len()).map_err(|_| fail("variable larger than 4 GiB".into()))?;
        out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&packed);
    }
    std::fs::write(path, out).map_err(|e| EvalError::io(path, e))
}

/// Appends a tagged element (long tag form) with 8-byte padding.
fn element(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(8), 0);
}

/// Appends the miMATRIX element of `value` named `name` (empty inside cells).
fn encode_matrix(out: &mut Vec<u8>, name: &str, value: &MatValue) -> Result<(), String> {
    let dims = value.dims();
    if dims.len() < 2 {
        return Err(format!("dims {dims:?} has fewer than two entries"));
    }
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    let mut body = Vec::new();
    let (class, flag_bits) = match value {
        MatValue::Cell { .. } => (1u8, 0u8),
        MatValue::Char { .. } => (4, 0),
        MatValue::Numeric { class, .. } => (
            class.code(),
            if *class == NumericClass::Logical {
                2
            } else {
                0
            },
        ),
    };
    element(&mut body, MI_UINT32, &[class, flag_bits, 0, 0, 0, 0, 0, 0]);
    let mut dim_bytes = Vec::with_capacity(4 * dims.len());
    for &d in dims {
        let d = i32::try_from(d).map_err(|_| format!("dimension {d} too large"))?;
        dim_bytes.extend_from_slice(&d.to_le_bytes());
    }
    element(&mut body, MI_INT32, &dim_bytes);
    element(&mut body, MI_INT8, name.as_bytes());
    match value {
        MatValue::Cell { items, .. } => {
            if items.len() != count {
                return Err(format!("cell has {} items for dims {dims:?}", items.len()));
            }
            for item in items {
                encode_matrix(&mut body, "", item)?;
            }
        }
        MatValue::Char { text, .. } => {
            let units: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
            if units.len() / 2 != count {
                return Err(format!(
                    "{} UTF-16 code units for dims {dims:?}",
                    units.len() / 2
                ));
            }
            element(&mut body, MI_UINT16, &units);
        }
        MatValue::Numeric { class, data, .. } => {
            if data.len() != count {
                return Err(format!("{} values for dims {dims:?}", data.len()));
            }
            let ty = storage_type(*class, data)?;
            element(&mut body, ty, &encode_numbers(ty, data));
        }
    }
    element(out, MI_MATRIX, &body);
    Ok(())
}

/// The range of integers storage type `ty` holds exactly.
fn int_range(ty: u32) -> (f64, f64) {
    match ty {
        MI_UINT8 => (0.0, u8::MAX as f64),
        MI_INT8 => (i8::MIN as f64, i8::MAX as f64),
        MI_UINT16 => (0.0, u16::MAX as f64),
        MI_INT16 => (i16::MIN as f64, i16::MAX as f64),
        MI_UINT32 => (0.0, u32::MAX as f64),
        MI_INT32 => (i32::MIN as f64, i32::MAX as f64),
        // 64-bit integers: every f64 integer in range converts exactly.
        MI_UINT64 => (0.0, 18_446_744_073_709_549_568.0),
        _ => (-9_223_372_036_854_775_808.0, 9_223_372_036_854_774_784.0),
    }
}

fn is_int(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0 && !(v == 0.0 && v.is_sign_negative())
}

/// Chooses the storage type of a numeric array, validating the values against the class.
fn storage_type(class: NumericClass, data: &[f64]) -> Result<u32, String> {
    let own = match class {
        NumericClass::Double | NumericClass::Single => {
            if !data.is_empty() && data.iter().all(|&v| is_int(v)) {
                let (lo, hi) = data
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let compact = [MI_UINT8, MI_INT8, MI_UINT16, MI_INT16, MI_UINT32, MI_INT32]
                    .into_iter()
                    .find(|&ty| int_range(ty).0 <= lo && hi <= int_range(ty).1);
                if let Some(ty) = compact {
                    return Ok(ty);
                }
            }
            if class == NumericClass::Double {
                return Ok(MI_DOUBLE);
            }
            if let Some(v) = data
                .iter()
                .find(|&&v| v.is_finite() && (v as f32) as f64 != v)
            {
                return Err(format!("value {v} is not exactly representable as single"));
            }
            return Ok(MI_SINGLE);
        }
        NumericClass::Int8 => MI_INT8,
        NumericClass::UInt8 => MI_UINT8,
        NumericClass::Logical => MI_UINT8,
        NumericClass::Int16 => MI_INT16,
        NumericClass::UInt16 => MI_UINT16,
        NumericClass::Int32 => MI_INT32,
        NumericClass::UInt32 => MI_UINT32,
        NumericClass::Int64 => MI_INT64,
        NumericClass::UInt64 => MI_UINT64,
    };
    let (lo, hi) = int_range(own);
    let hi = if class == NumericClass::Logical {
        1.0
    } else {
        hi
    };
    if let Some((i, v)) = data
        .iter()
        .enumerate()
        .find(|(_, &v)| !(is_int(v) || v == 0.0) || v < lo || v > hi)
    {
        return Err(format!(
            "value {v} at index {i} does not fit class {class:?}"
        ));
    }
    Ok(own)
}

/// Encodes values (already validated for `ty`) as little-endian bytes.
fn encode_numbers(ty: u32, data: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 8);
    for &v in data {
        match ty {
            MI_UINT8 => out.push(v as u8),
            MI_INT8 => out.push(v as i8 as u8),
            MI_UINT16 => out.extend_from_slice(&(v as u16).to_le_bytes()),
            MI_INT16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            MI_UINT32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
            MI_INT32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            MI_UINT64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
            MI_INT64 => out.extend_from_slice(&(v as i64).to_le_bytes()),
            MI_SINGLE => out.extend_from_slice(&(v as f32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_mat;

    fn num(class: NumericClass, dims: &[usize], data: &[f64]) -> MatValue {
        MatValue::Numeric {
            class,
            dims: dims.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn round_trip_every_class() {
        use NumericClass::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.mat");
        let vars: Vec<(&str, MatValue)> = vec![
            ("d_frac", num(Double, &[1, 3], &[0.5, -1.25, 1e300])),
            ("d_int", num(Double, &[3, 1], &[1.0, 200.0, 255.0])),
            ("d_neg", num(Double, &[2, 1], &[-5.0, 70000.0])),
            ("d_negzero", num(Double, &[1, 1], &[-0.0])),
            ("s_frac", num(Single, &[1, 2], &[0.5, 3.25])),
            ("i8", num(Int8, &[1, 2], &[-128.0, 127.0])),
            ("u8", num(UInt8, &[2, 1], &[0.0, 255.0])),
            ("i16", num(Int16, &[1, 2], &[-32768.0, 5.0])),
            ("u16", num(UInt16, &[1, 1], &[65535.0])),
            (
                "i32",
                num(Int32, &[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -8.0]),
            ),
            ("u32", num(UInt32, &[1, 1], &[4e9])),
            ("i64", num(Int64, &[1, 1], &[-9e15])),
            ("u64", num(UInt64, &[1, 1], &[9e15])),
            ("b", num(Logical, &[1, 3], &[1.0, 0.0, 1.0])),
            ("e00", num(Double, &[0, 0], &[])),
            ("e01", num(UInt8, &[0, 1], &[])),
            ("nd", num(Double, &[1, 2, 2], &[1.5, 2.0, 3.0, 4.0])),
            ("txt", MatValue::string("0--Parade ünï 😀")),
            ("empty_txt", MatValue::string("")),
            (
                "cell",
                MatValue::Cell {
                    dims: vec![2, 1],
                    items: vec![
                        MatValue::cell_column(vec![
                            MatValue::string("a"),
                            num(Int32, &[1, 4], &[0.0; 4]),
                        ]),
                        MatValue::Cell {
                            dims: vec![0, 0],
                            items: vec![],
                        },
                    ],
                },
            ),
        ];
        write_mat(&path, &vars).unwrap();
        let back = read_mat(&path).unwrap();
        assert_eq!(back.len(), vars.len());
        for ((n0, v0), (n1, v1)) in vars.iter().zip(&back) {
            assert_eq!(*n0, n1.as_str());
            // -0.0 == 0.0 compares equal; check the sign bit separately below.
            assert_eq!(v0, v1, "{n0}");
        }
        let MatValue::Numeric { data, .. } = &back[3].1 else {
            panic!()
        };
        assert!(data[0].is_sign_negative(), "-0.0 must be stored as double");
    }

    #[test]
    fn storage_types_follow_the_real_files() {
        use NumericClass::*;
        assert_eq!(storage_type(Double, &[1.0, 2.0, 255.0]), Ok(MI_UINT8));
        assert_eq!(storage_type(Double, &[1.0, 256.0]), Ok(MI_UINT16));
        assert_eq!(storage_type(Double, &[-1.0, 100.0]), Ok(MI_INT8));
        assert_eq!(storage_type(Double, &[0.5]), Ok(MI_DOUBLE));
        assert_eq!(storage_type(Double, &[]), Ok(MI_DOUBLE));
        assert_eq!(storage_type(Int32, &[3.0]), Ok(MI_INT32));
        assert_eq!(storage_type(UInt8, &[3.0]), Ok(MI_UINT8));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mat");
        let cases: Vec<(&str, MatValue, &str)> = vec![
            (
                "u",
                num(NumericClass::UInt8, &[1, 1], &[256.0]),
                "does not fit",
            ),
            (
                "i",
                num(NumericClass::Int32, &[1, 1], &[1.5]),
                "does not fit",
            ),
            (
                "l",
                num(NumericClass::Logical, &[1, 1], &[2.0]),
                "does not fit",
            ),
            (
                "d",
                num(NumericClass::Double, &[2, 2], &[1.0]),
                "1 values for dims",
            ),
            (
                "c",
                MatValue::Cell {
                    dims: vec![2, 1],
                    items: vec![],
                },
                "0 items",
            ),
            (
                "t",
                MatValue::Char {
                    dims: vec![1, 5],
                    text: "abc".into(),
                },
                "3 UTF-16",
            ),
            (
                "1x",
                num(NumericClass::Double, &[1, 1], &[1.0]),
                "variable name",
            ),
        ];
        for (name, v, want) in cases {
            let e = write_mat(&path, &[(name, v)]).unwrap_err().to_string();
            assert!(e.contains(&format!("`{name}`")) && e.contains(want), "{e}");
        }
    }
}
