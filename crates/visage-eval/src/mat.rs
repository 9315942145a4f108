//! The MATLAB v5 reader (types in `mat_value.rs`, writer in `mat_write.rs`).

use std::io::Read;
use std::path::Path;

use flate2::read::ZlibDecoder;

use crate::mat_value::*;
use crate::EvalError;

/// Reads every variable of a MATLAB v5 file, in file order.
pub fn read_mat(path: &Path) -> Result<Vec<(String, MatValue)>, EvalError> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    parse_mat(path, &bytes)
}

/// Parses the bytes of a MATLAB v5 file; `path` is only used in errors.
pub fn parse_mat(path: &Path, bytes: &[u8]) -> Result<Vec<(String, MatValue)>, EvalError> {
    let err = |offset: usize, detail: String| EvalError::Mat {
        path: path.to_path_buf(),
        offset: offset as u64,
        detail,
    };
    if bytes.starts_with(b"\x89HDF") || bytes.starts_with(b"MATLAB 7.3") {
        return Err(err(
            0,
            "MATLAB v7.3 (HDF5) files are not supported; save with -v7 or -v6".into(),
        ));
    }
    if bytes.len() < 128 {
        return Err(err(
            bytes.len(),
            "file shorter than the 128-byte MAT v5 header".into(),
        ));
    }
    if !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned();
        return Err(err(
            0,
            format!("not a MATLAB 5.0 MAT-file (header starts {text:?})"),
        ));
    }
    match &bytes[126..128] {
        b"IM" => {}
        b"MI" => return Err(err(126, "big-endian MAT files are not supported".into())),
        other => return Err(err(126, format!("bad endian indicator {other:?}"))),
    }
    let mut vars = Vec::new();
    let mut pos = 128;
    while pos < bytes.len() {
        let start = pos;
        let mut cur = Cursor {
            data: bytes,
            pos,
            at: Location::File,
        };
        let (ty, data) = cur.element().map_err(|(o, d)| err(o, d))?;
        pos = cur.pos;
        let located = |(o, d): (usize, String)| {
            err(
                start,
                format!("in the element at byte {start}, decompressed byte {o}: {d}"),
            )
        };
        match ty {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                ZlibDecoder::new(data)
                    .read_to_end(&mut inflated)
                    .map_err(|e| err(start, format!("zlib: {e}")))?;
                let mut inner = Cursor {
                    data: &inflated,
                    pos: 0,
                    at: Location::Inflated,
                };
                while inner.pos < inflated.len() {
                    let (ty, data) = inner.element().map_err(located)?;
                    if ty != MI_MATRIX {
                        return Err(located((
                            inner.pos,
                            format!("expected miMATRIX, found type {ty}"),
                        )));
                    }
                    vars.push(parse_matrix(data).map_err(located)?);
                }
            }
            MI_MATRIX => vars.push(parse_matrix(data).map_err(|(o, d)| err(start + 8 + o, d))?),
            other => {
                return Err(err(
                    start,
                    format!("unexpected top-level element type {other}"),
                ))
            }
        }
    }
    Ok(vars)
}

type PErr = (usize, String);

#[derive(Clone, Copy)]
enum Location {
    File,
    Inflated,
}

/// A reader of data elements in a byte buffer.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    at: Location,
}

fn u32_at(data: &[u8], pos: usize) -> Option<u32> {
    data.get(pos..pos + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> Cursor<'a> {
    /// Reads one tagged element (either tag form), skipping its padding; returns type and data.
    fn element(&mut self) -> Result<(u32, &'a [u8]), PErr> {
        let start = self.pos;
        let first = u32_at(self.data, start).ok_or((start, "truncated element tag".to_string()))?;
        if first >> 16 != 0 {
            // Small data element: type and byte count share the first word, data in the second.
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 || start + 8 > self.data.len() {
                return Err((
                    start,
                    format!("bad small data element (type {ty}, {n} bytes)"),
                ));
            }
            self.pos = start + 8;
            return Ok((ty, &self.data[start + 4..start + 4 + n]));
        }
        let n = u32_at(self.data, start + 4).ok_or((start, "truncated element tag".to_string()))?;
        let n = n as usize;
        let end = start + 8 + n;
        if end > self.data.len() {
            return Err((
                start,
                format!(
                    "element of {n} bytes runs past the end ({} bytes)",
                    self.data.len()
                ),
            ));
        }
        // Compressed top-level elements are not padded; everything else is padded to 8 bytes.
        let padded = if first == MI_COMPRESSED && matches!(self.at, Location::File) {
            end
        } else {
            (start + 8 + n.div_ceil(8) * 8).min(self.data.len())
        };
        self.pos = padded;
        Ok((first, &self.data[start + 8..end]))
    }
}

/// Decodes numeric storage of type `ty` into f64.
fn numeric_data(ty: u32, d: &[u8]) -> Option<Vec<f64>> {
    fn chunks<const N: usize>(d: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        d.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    let width = match ty {
        MI_INT8 | MI_UINT8 | MI_UTF8 => 1,
        MI_INT16 | MI_UINT16 | MI_UTF16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        _ => return None,
    };
    if !d.len().is_multiple_of(width) {
        return None;
    }
    Some(match ty {
        MI_INT8 => d.iter().map(|&b| b as i8 as f64).collect(),
        MI_UINT8 | MI_UTF8 => d.iter().map(|&b| b as f64).collect(),
        MI_INT16 => chunks::<2>(d)
            .map(|b| i16::from_le_bytes(b) as f64)
            .collect(),
        MI_UINT16 | MI_UTF16 => chunks::<2>(d)
            .map(|b| u16::from_le_bytes(b) as f64)
            .collect(),
        MI_INT32 => chunks::<4>(d)
            .map(|b| i32::from_le_bytes(b) as f64)
            .collect(),
        MI_UINT32 => chunks::<4>(d)
            .map(|b| u32::from_le_bytes(b) as f64)
            .collect(),
        MI_SINGLE => chunks::<4>(d)
            .map(|b| f32::from_le_bytes(b) as f64)
            .collect(),
        MI_DOUBLE => chunks::<8>(d).map(f64::from_le_bytes).collect(),
        MI_INT64 => chunks::<8>(d)
            .map(|b| i64::from_le_bytes(b) as f64)
            .collect(),
        _ => chunks::<8>(d)
            .map(|b| u64::from_le_bytes(b) as f64)
            .collect(),
    })
}

/// Parses the contents of an miMATRIX element (offsets in errors are relative to `data`).
fn parse_matrix(data: &[u8]) -> Result<(String, MatValue), PErr> {
    if data.is_empty() {
        // An empty miMATRIX element stands for a 0×0 double.
        let v = MatValue::Numeric {
            class: NumericClass::Double,
            dims: vec![0, 0],
            data: vec![],
        };
        return Ok((String::new(), v));
    }
    let mut cur = Cursor {
        data,
        pos: 0,
        at: Location::Inflated,
    };
    let (ty, flags) = cur.element()?;
    if ty != MI_UINT32 || flags.len() != 8 {
        return Err((
            0,
            format!("bad array flags (type {ty}, {} bytes)", flags.len()),
        ));
    }
    let (class, flag_bits) = (flags[0], flags[1]);
    let dims_at = cur.pos;
    let (ty, dims) = cur.element()?;
    if ty != MI_INT32 || dims.len() < 8 || dims.len() % 4 != 0 {
        return Err((
            dims_at,
            format!("bad dimensions (type {ty}, {} bytes)", dims.len()),
        ));
    }
    let dims: Vec<usize> = dims
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let count = count.ok_or((dims_at, format!("dimensions {dims:?} overflow")))?;
    let name_at = cur.pos;
    let (ty, name) = cur.element()?;
    if ty != MI_INT8 && ty != MI_UINT8 {
        return Err((name_at, format!("bad array name (type {ty})")));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let ctx = |o: usize, what: &str| (o, format!("variable `{name}`: {what}"));
    let value = match class {
        1 => {
            let mut items = Vec::with_capacity(count.min(1 << 20));
            for _ in 0..count {
                let at = cur.pos;
                let (ty, d) = cur.element()?;
                if ty != MI_MATRIX {
                    return Err(ctx(at, &format!("cell item has type {ty}, not miMATRIX")));
                }
                items.push(parse_matrix(d).map_err(|(o, d)| (at + 8 + o, d))?.1);
            }
            MatValue::Cell { dims, items }
        }
        4 => {
            let at = cur.pos;
            let (ty, d) = if count == 0 && cur.pos >= data.len() {
                (MI_UINT16, &[][..])
            } else {
                cur.element()?
            };
            let text = match ty {
                MI_UTF8 | MI_UINT8 | MI_INT8 => String::from_utf8(d.to_vec())
                    .map_err(|_| ctx(at, "char data is not valid UTF-8"))?,
                MI_UINT16 | MI_UTF16 => {
                    let units: Vec<u16> = d
                        .chunks_exact(2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    String::from_utf16(&units)
                        .map_err(|_| ctx(at, "char data is not valid UTF-16"))?
                }
                _ => return Err(ctx(at, &format!("char data has storage type {ty}"))),
            };
            MatValue::Char { dims, text }
        }
        2 | 3 => return Err(ctx(0, "struct and object arrays are not supported")),
        5 => return Err(ctx(0, "sparse arrays are not supported")),
        code => {
            let class = NumericClass::from_code(code, flag_bits & 0x02 != 0)
                .ok_or_else(|| ctx(0, &format!("unknown array class {code}")))?;
            if flag_bits & 0x08 != 0 {
                return Err(ctx(0, "complex arrays are not supported"));
            }
            let at = cur.pos;
            let values = if count == 0 && cur.pos >= data.len() {
                Vec::new()
            } else {
                let (ty, d) = cur.element()?;
                numeric_data(ty, d).ok_or_else(|| {
                    ctx(
                        at,
                        &format!("bad numeric data (type {ty}, {} bytes)", d.len()),
                    )
                })?
            };
            if values.len() != count {
                return Err(ctx(
                    at,
                    &format!("{} values for dimensions {dims:?}", values.len()),
                ));
            }
            MatValue::Numeric {
                class,
                dims,
                data: values,
            }
        }
    };
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &[u8], endian: &[u8; 2]) -> Vec<u8> {
        let mut h = text.to_vec();
        h.resize(116, b' ');
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(endian);
        h
    }

    fn tag(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v.resize(v.len().next_multiple_of(8), 0);
        v
    }

    /// A small-data-element (4-byte tag form) with up to 4 bytes.
    fn small(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = (ty | (data.len() as u32) << 16).to_le_bytes().to_vec();
        v.extend_from_slice(data);
        v.resize(8, 0);
        v
    }

    /// An uncompressed file with `x` = class double 2×2 stored as miUINT8 (column-major 1 2 3 4)
    /// using small elements for the name and data, and `s` = 'hé' stored as miUTF8.
    fn hand_built(header_text: &[u8]) -> Vec<u8> {
        let mut body = tag(MI_UINT32, &[6, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(tag(MI_INT32, &[2, 0, 0, 0, 2, 0, 0, 0]));
        body.extend(small(MI_INT8, b"x"));
        body.extend(small(MI_UINT8, &[1, 2, 3, 4]));
        let mut file = header(header_text, b"IM");
        file.extend(tag(MI_MATRIX, &body));
        let mut body = tag(MI_UINT32, &[4, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(tag(MI_INT32, &[1, 0, 0, 0, 2, 0, 0, 0]));
        body.extend(small(MI_INT8, b"s"));
        body.extend(tag(MI_UTF8, "hé".as_bytes()));
        file.extend(tag(MI_MATRIX, &body));
        file
    }

    #[test]
    fn reads_hand_built_small_elements_and_storage_types() {
        for text in [
            &b"MATLAB 5.0 MAT-file, Platform: GLNXA64"[..],
            b"MATLAB 5.0 MAT-file Platform: posix",
        ] {
            let vars = parse_mat(Path::new("t.mat"), &hand_built(text)).unwrap();
            assert_eq!(vars.len(), 2);
            assert_eq!(vars[0].0, "x");
            let want = MatValue::Numeric {
                class: NumericClass::Double,
                dims: vec![2, 2],
                data: vec![1.0, 2.0, 3.0, 4.0],
            };
            assert_eq!(vars[0].1, want);
            assert_eq!(
                vars[1],
                (
                    "s".to_string(),
                    MatValue::Char {
                        dims: vec![1, 2],
                        text: "hé".into()
                    }
                )
            );
        }
    }

    #[test]
    fn empty_matrix_element_in_a_cell_is_an_empty_double() {
        let mut body = tag(MI_UINT32, &[1, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(tag(MI_INT32, &[1, 0, 0, 0, 1, 0, 0, 0]));
        body.extend(small(MI_INT8, b"c"));
        body.extend(tag(MI_MATRIX, &[]));
        let mut file = header(b"MATLAB 5.0 MAT-file", b"IM");
        file.extend(tag(MI_MATRIX, &body));
        let vars = parse_mat(Path::new("t.mat"), &file).unwrap();
        let empty = MatValue::Numeric {
            class: NumericClass::Double,
            dims: vec![0, 0],
            data: vec![],
        };
        assert_eq!(
            vars[0].1,
            MatValue::Cell {
                dims: vec![1, 1],
                items: vec![empty]
            }
        );
    }

    #[test]
    fn rejects_big_endian_hdf5_and_garbage_with_offsets() {
        let p = Path::new("bad.mat");
        let e = parse_mat(p, &header(b"MATLAB 5.0 MAT-file", b"MI"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.mat: byte 126") && e.contains("big-endian"),
            "{e}"
        );
        let e = parse_mat(p, &header(b"MATLAB 7.3 MAT-file", b"IM"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("v7.3"), "{e}");
        let e = parse_mat(p, b"\x89HDF\r\n\x1a\n").unwrap_err().to_string();
        assert!(e.contains("HDF5"), "{e}");
        let e = parse_mat(p, &header(b"hello", b"IM"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a MATLAB 5.0 MAT-file"), "{e}");
        // Truncate the second variable: the error names its element's offset.
        let mut file = hand_built(b"MATLAB 5.0 MAT-file,");
        let second = 128 + 8 + 48;
        file.truncate(second + 20);
        let e = parse_mat(p, &file).unwrap_err().to_string();
        assert!(e.starts_with(&format!("bad.mat: byte {second}:")), "{e}");
        // A compressed element holding garbage.
        let mut file = header(b"MATLAB 5.0 MAT-file,", b"IM");
        file.extend(tag(MI_COMPRESSED, b"not zlib"));
        let e = parse_mat(p, &file).unwrap_err().to_string();
        assert!(e.contains("byte 128") && e.contains("zlib"), "{e}");
    }
}
