//! Regenerates `crates/visage-export/src/proto/onnx.rs` from the vendored official
//! `crates/visage-export/proto/onnx.proto3` (ONNX 1.23.2): protox compiles the schema in pure
//! Rust and prost-build writes the message types, so building visage needs no `protoc`.
//!
//! ```text
//! cargo run --manifest-path tools/onnx-proto/Cargo.toml --release   # from the repository root
//! ```

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_dir = root.join("crates/visage-export/proto");
    let out_dir = root.join("crates/visage-export/src/proto");
    let descriptors = protox::compile([proto_dir.join("onnx.proto3")], [&proto_dir])?;
    prost_build::Config::new()
        .out_dir(&out_dir)
        // The schema's comments hold indented text that rustdoc would run as doctests.
        .disable_comments(["."])
        .compile_fds(descriptors)?;
    // prost-build names the file after the package.
    println!("wrote {}", out_dir.join("onnx.rs").display());
    Ok(())
}
