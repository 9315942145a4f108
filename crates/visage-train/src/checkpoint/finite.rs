//! The finiteness check of a checkpoint's bytes before they are written: the model's
//! safetensors and the optimiser state's MessagePack (Burn's named record, whose tensors are
//! maps `{bytes, shape, dtype}`). Both are also rewritten canonically, with every map's keys
//! in order: Burn keeps the optimiser state and the safetensors metadata in hash maps whose
//! order changes from process to process, and canonical files make equal states equal bytes
//! (and equal checksums).

use std::collections::BTreeMap;

use half::{bf16, f16};
use rmpv::Value;
use safetensors::{Dtype, SafeTensors};

/// Non-finite values found in a checkpoint's tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFinite {
    /// How many values are NaN or infinite.
    pub count: usize,
    /// The first tensor holding one (its key or record path).
    pub first: String,
}

/// Counts the non-finite values of every float tensor of a safetensors file, and rewrites its
/// JSON header with the keys in order (the tensor data is unchanged).
///
/// # Errors
/// A message if `bytes` is not a safetensors file.
pub fn canonical_safetensors(bytes: &[u8]) -> Result<(Vec<u8>, Option<NonFinite>), String> {
    let found = safetensors_non_finite(bytes)?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes, checked")) as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len]).map_err(|e| e.to_string())?;
    let header: BTreeMap<String, serde_json::Value> = header
        .into_iter()
        .map(|(key, value)| (key, sorted_json(value)))
        .collect();
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // The format pads the header with spaces to 8 bytes, so the data stays aligned.
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + header_len..]);
    Ok((out, found))
}

/// `value` with the keys of every object in order, whichever order serde_json keeps.
fn sorted_json(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted_json(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        other => other,
    }
}

/// Counts the non-finite values of every float tensor of a safetensors file.
///
/// # Errors
/// A message if `bytes` is not a safetensors file.
fn safetensors_non_finite(bytes: &[u8]) -> Result<Option<NonFinite>, String> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut found: Option<NonFinite> = None;
    let mut names = tensors.names();
    names.sort();
    for name in names {
        let view = tensors.tensor(name).map_err(|e| e.to_string())?;
        let count = count_non_finite(dtype_name(view.dtype()), view.data());
        note(&mut found, count, name);
    }
    Ok(found)
}

/// Decodes Burn's named MessagePack record `bytes`, renames the keys of its `item` map (an
/// optimiser's state per parameter) with `rekey`, counts the non-finite values of its float
/// tensors, and encodes it again with every map's string keys sorted.
///
/// # Errors
/// A message if `bytes` is not MessagePack, or the error of `rekey`.
pub fn canonical_record(
    bytes: &[u8],
    rekey: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(Vec<u8>, Option<NonFinite>), String> {
    let mut value = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| e.to_string())?;
    rekey_items(&mut value, rekey)?;
    let mut found = None;
    let mut path = Vec::new();
    walk(&mut value, &mut path, &mut found);
    let mut out = Vec::with_capacity(bytes.len());
    rmpv::encode::write_value(&mut out, &value).map_err(|e| e.to_string())?;
    Ok((out, found))
}

/// `bytes` (a named MessagePack record) with the keys of its `item` map renamed by `rekey`.
///
/// # Errors
/// A message if `bytes` is not MessagePack, or the error of `rekey`.
pub fn rekey_record(
    bytes: &[u8],
    rekey: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<u8>, String> {
    let mut value = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| e.to_string())?;
    rekey_items(&mut value, rekey)?;
    let mut out = Vec::with_capacity(bytes.len());
    rmpv::encode::write_value(&mut out, &value).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Renames the string keys of the top-level `item` map, if there is one.
fn rekey_items(
    value: &mut Value,
    rekey: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    let Value::Map(entries) = value else {
        return Err("not a record (no top-level map)".into());
    };
    let Some((_, Value::Map(items))) = entries.iter_mut().find(|(k, _)| k.as_str() == Some("item"))
    else {
        return Err("not a record (no `item` map)".into());
    };
    for (key, _) in items.iter_mut() {
        let Some(name) = key.as_str() else {
            return Err(format!("a state key that is not a string: {key}"));
        };
        *key = Value::from(rekey(name)?);
    }
    Ok(())
}

/// Sorts the string-keyed maps under `value` and records non-finite tensors.
fn walk(value: &mut Value, path: &mut Vec<String>, found: &mut Option<NonFinite>) {
    match value {
        Value::Map(entries) => {
            if let Some(count) = tensor_non_finite(entries) {
                note(found, count, &path.join("."));
                return;
            }
            if entries.iter().all(|(k, _)| k.is_str()) {
                entries.sort_by(|(a, _), (b, _)| a.as_str().cmp(&b.as_str()));
            }
            for (key, child) in entries.iter_mut() {
                path.push(key.as_str().map_or_else(|| key.to_string(), str::to_string));
                walk(child, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(child, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The non-finite count of a serialised `TensorData` map (`bytes`, `shape`, `dtype`), or
/// `None` if the map is not one.
fn tensor_non_finite(entries: &[(Value, Value)]) -> Option<usize> {
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    let dtype = field("dtype")?.as_str()?;
    let bytes = match field("bytes")? {
        Value::Binary(bytes) => bytes.as_slice(),
        _ => return None,
    };
    field("shape")?;
    Some(count_non_finite(dtype, bytes))
}

fn dtype_name(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::F64 => "F64",
        Dtype::F32 => "F32",
        Dtype::F16 => "F16",
        Dtype::BF16 => "BF16",
        _ => "other",
    }
}

/// Non-finite values among little-endian floats of `dtype` (`F64`, `F32`, `F16`, `BF16`;
/// other types have none).
fn count_non_finite(dtype: &str, bytes: &[u8]) -> usize {
    match dtype {
        "F64" => bytes
            .chunks_exact(8)
            .filter(|c| !f64::from_le_bytes((*c).try_into().expect("8 bytes")).is_finite())
            .count(),
        "F32" => bytes
            .chunks_exact(4)
            .filter(|c| !f32::from_le_bytes((*c).try_into().expect("4 bytes")).is_finite())
            .count(),
        "F16" => bytes
            .chunks_exact(2)
            .filter(|c| !f16::from_le_bytes([c[0], c[1]]).is_finite())
            .count(),
        "BF16" => bytes
            .chunks_exact(2)
            .filter(|c| !bf16::from_le_bytes([c[0], c[1]]).is_finite())
            .count(),
        _ => 0,
    }
}

fn note(found: &mut Option<NonFinite>, count: usize, name: &str) {
    if count == 0 {
        return;
    }
    match found {
        Some(f) => f.count += count,
        None => {
            *found = Some(NonFinite {
                count,
                first: name.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn tensor(values: &[f32]) -> Value {
        Value::Map(vec![
            (Value::from("bytes"), Value::Binary(floats(values))),
            (
                Value::from("shape"),
                Value::Array(vec![Value::from(values.len())]),
            ),
            (Value::from("dtype"), Value::from("F32")),
        ])
    }

    /// A record `{metadata, item: {entries}}`.
    fn record(entries: Vec<(&str, Value)>) -> Vec<u8> {
        let items = Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        let map = Value::Map(vec![
            (Value::from("metadata"), Value::from("m")),
            (Value::from("item"), items),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &map).unwrap();
        bytes
    }

    fn same(key: &str) -> Result<String, String> {
        Ok(key.to_string())
    }

    #[test]
    fn msgpack_records_are_sorted_and_their_non_finite_values_counted() {
        let a = record(vec![
            ("zeta", tensor(&[1.0, 2.0])),
            ("alpha", tensor(&[3.0])),
        ]);
        let b = record(vec![
            ("alpha", tensor(&[3.0])),
            ("zeta", tensor(&[1.0, 2.0])),
        ]);
        assert_ne!(a, b);
        let (ca, fa) = canonical_record(&a, &same).unwrap();
        let (cb, fb) = canonical_record(&b, &same).unwrap();
        assert_eq!(
            ca, cb,
            "the same record in another key order: the same bytes"
        );
        assert_eq!((fa, fb), (None, None));
        let bad = record(vec![
            ("ok", tensor(&[1.0])),
            ("w", tensor(&[f32::NAN, 1.0, f32::INFINITY])),
        ]);
        let (_, found) = canonical_record(&bad, &same).unwrap();
        assert_eq!(
            found,
            Some(NonFinite {
                count: 2,
                first: "item.w".into()
            })
        );
        assert!(
            canonical_record(&[0x92, 0x01], &same).is_err(),
            "an array of 2 cut after 1"
        );
    }

    #[test]
    fn the_state_keys_are_renamed_both_ways() {
        let ids = record(vec![("id1", tensor(&[1.0])), ("id2", tensor(&[2.0]))]);
        let to_path = |k: &str| match k {
            "id1" => Ok("head.weight".to_string()),
            "id2" => Ok("backbone.weight".to_string()),
            other => Err(format!("unknown {other}")),
        };
        let (by_path, _) = canonical_record(&ids, &to_path).unwrap();
        let value = rmpv::decode::read_value(&mut &by_path[..]).unwrap();
        let keys: Vec<&str> = value["item"]
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["backbone.weight", "head.weight"]);
        let to_id = |k: &str| Ok(k.replace(".weight", "-new"));
        let back = rekey_record(&by_path, &to_id).unwrap();
        let value = rmpv::decode::read_value(&mut &back[..]).unwrap();
        assert_eq!(
            value["item"].as_map().unwrap()[0].0.as_str(),
            Some("backbone-new")
        );
        let unknown = record(vec![("id3", tensor(&[1.0]))]);
        let err = canonical_record(&unknown, &to_path).unwrap_err();
        assert_eq!(err, "unknown id3");
    }

    #[test]
    fn safetensors_non_finite_values_are_counted() {
        let ok = floats(&[1.0, -2.0]);
        let bad = floats(&[1.0, f32::NEG_INFINITY, f32::NAN]);
        let views = [
            (
                "a",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &ok).unwrap(),
            ),
            (
                "b",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![3], &bad).unwrap(),
            ),
        ];
        let meta = |order: &[(&str, &str)]| {
            Some(
                order
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<std::collections::HashMap<_, _>>(),
            )
        };
        let bytes = safetensors::serialize(
            views.clone(),
            meta(&[("producer", "burn"), ("format", "pt")]),
        )
        .unwrap();
        let (canonical, found) = canonical_safetensors(&bytes).unwrap();
        assert_eq!(
            found,
            Some(NonFinite {
                count: 2,
                first: "b".into()
            })
        );
        let header_len = u64::from_le_bytes(canonical[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let header = std::str::from_utf8(&canonical[8..8 + header_len]).unwrap();
        assert!(
            header.starts_with(r#"{"__metadata__":{"format":"pt","producer":"burn"},"a":"#),
            "{header}"
        );
        let again = SafeTensors::deserialize(&canonical).unwrap();
        assert_eq!(again.tensor("b").unwrap().data(), &bad[..]);
        assert!(canonical_safetensors(b"nope").is_err());
    }
}
