#!/usr/bin/env bash
# CPU forward passes side by side, interleaved in one run (benches/RESULTS.md, issue 12):
# RetinaFace-MobileNet-0.25 at 480×640 (visage / PyTorch eager / ONNX Runtime) and ResNet-50
# C2..C5 at 640×640 (visage / PyTorch), at 1 thread and at every core.
#
#   python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch torchvision onnx onnxruntime
#   tools/bench/cpu_side_by_side.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/tmp/ref/bin/python}
ROUNDS=${1:-2}
CORES=$(nproc)
# The feature set of `make test` / `make quickstart`, so the build reuses theirs (another feature
# set would compile Burn again beside it).
cargo build -q --workspace --examples --features visage/wgpu
BIN=${CARGO_TARGET_DIR:-target}/debug/examples
lscpu | grep -E "^Model name|^CPU\(s\)|^Flags"
for round in $(seq "$ROUNDS"); do
  echo "--- round $round"
  for threads in 1 "$CORES"; do
    RAYON_NUM_THREADS=$threads "$BIN/retinaface_bench" 480 640 10
    "$PY" tools/bench/retinaface_torch.py 480 640 10 --threads "$threads"
    "$PY" tools/bench/retinaface_ort.py 480 640 10 --threads "$threads"
  done
  for threads in 1 "$CORES"; do
    RAYON_NUM_THREADS=$threads "$BIN/backbone_forward" resnet50 640 640 4
    "$PY" tools/bench/backbone_forward_torch.py resnet50 640 640 4 --threads "$threads"
  done
done
