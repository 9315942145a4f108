//! Anchors generated inside the graph from the feature maps' sizes, so an exported model
//! takes any input size: the same boxes, in the same order and the same f32 arithmetic, as
//! [`AnchorGenerator::generate`] (centre `((x + 0.5)·s, (y + 0.5)·s)` ± each shape's half
//! size).

use visage_anchors::AnchorGenerator;

use crate::graph::{Graph, Value};
use crate::proto::tensor_proto::DataType;

/// `[A, 4]` xyxy anchors of every level, finest first; `levels` holds one value per level
/// whose dims 2 and 3 are the level's feature-map height and width (e.g. the level's
/// feature map `[N, C, H_l, W_l]`).
///
/// # Panics
/// If `levels.len()` differs from the generator's level count (a wiring bug).
pub fn anchors_in_graph(g: &mut Graph, generator: &AnchorGenerator, levels: &[Value]) -> Value {
    assert_eq!(levels.len(), generator.levels().len(), "anchor levels");
    let per_level: Vec<Value> = levels
        .iter()
        .enumerate()
        .map(|(l, feature)| level_anchors(g, generator, l, feature))
        .collect();
    if per_level.len() == 1 {
        per_level.into_iter().next().expect("one level")
    } else {
        g.concat(&per_level, 0)
    }
}

/// `[H·W·A, 4]` anchors of level `l` (y, then x, then anchor shape).
fn level_anchors(g: &mut Graph, generator: &AnchorGenerator, l: usize, feature: &Value) -> Value {
    let stride = generator.levels()[l].stride as f32;
    let shape = g.shape(feature);
    let cy = cell_centres(g, &shape, 2, stride); // [H]
    let cx = cell_centres(g, &shape, 3, stride); // [W]
    let cy = g.reshape(&cy, &[-1, 1, 1, 1]); // [H, 1, 1, 1]
    let cx = g.reshape(&cx, &[1, -1, 1, 1]); // [1, W, 1, 1]
                                             // Broadcast each to [H, W, 1, 1] by adding the other's zeros.
    let zero = g.scalar(0.0);
    let zero_x = g.mul(&cx, &zero);
    let zero_y = g.mul(&cy, &zero);
    let x = g.add(&cx, &zero_y);
    let y = g.add(&cy, &zero_x);
    let centres = g.concat(&[x.clone(), y.clone(), x, y], 3); // [H, W, 1, 4]
    let offsets: Vec<f32> = generator
        .anchor_half_sizes(l)
        .iter()
        .flat_map(|&(hw, hh)| [-hw, -hh, hw, hh])
        .collect();
    let shapes = offsets.len() / 4;
    let offsets = g.const_f32("anchor_offsets", &[1, 1, shapes, 4], offsets);
    let boxes = g.add(&centres, &offsets); // [H, W, A, 4]
    g.reshape(&boxes, &[-1, 4])
}

/// `(i + 0.5) · stride` for `i` in `0..shape[axis]`, float32 `[shape[axis]]`.
fn cell_centres(g: &mut Graph, shape: &Value, axis: i64, stride: f32) -> Value {
    let index = g.scalar_i64(axis);
    let count = g.gather(shape, &index, 0);
    let (start, step) = (g.scalar_i64(0), g.scalar_i64(1));
    let cells = g.node("Range", &[&start, &count, &step], vec![]);
    let cells = g.cast(&cells, DataType::Float);
    let half = g.scalar(0.5);
    let stride = g.scalar(stride);
    let shifted = g.add(&cells, &half);
    g.mul(&shifted, &stride)
}
