//! The NMS benchmark of `benches/nms.rs`, runnable on the dev profile (no release build of Burn):
//! `cargo run -p visage-boxes --example nms_bench`.
include!("../benches/nms.rs");
