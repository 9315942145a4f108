//! Writes a Pytorch_Retinaface MobileNet-0.25 checkpoint (`mobilenet0.25_Final.pth`'s keys,
//! safetensors) filled with the parity weight formula, for checks that need a RetinaFace
//! checkpoint where the real one cannot be downloaded (`tools/export/compare_ort.py`).
//!
//! ```text
//! cargo run -p visage-model --example formula_checkpoint -- /tmp/mobilenet0.25_formula.safetensors
//! ```

use visage_model::retinaface::formula::write_formula_mnet_checkpoint;
use visage_model::RETINAFACE_MNET;

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: formula_checkpoint OUT.safetensors");
    write_formula_mnet_checkpoint(std::path::Path::new(&out), &RETINAFACE_MNET).expect("written");
    println!("wrote {out}");
}
