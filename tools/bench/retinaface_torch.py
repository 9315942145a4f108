#!/usr/bin/env python3
"""PyTorch side of the RetinaFace-MobileNet-0.25 CPU benchmark (see benches/RESULTS.md).

    /tmp/ref/bin/python tools/bench/retinaface_torch.py 480 640 --threads 1

Same module layout (Pytorch_Retinaface), weights formula and input as
crates/visage-model/examples/retinaface_bench.rs; forward under torch.inference_mode(), then
detect.py's post-processing (priors, decode, threshold 0.02, top 5000, py_cpu_nms 0.4, keep 750).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import backbone_fixtures as bf  # noqa: E402
import retinaface_fixtures as rf  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("h", type=int)
    ap.add_argument("w", type=int)
    ap.add_argument("iterations", type=int, nargs="?", default=10)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = rf.RetinaFace("mobilenet0.25").eval()
    bf.fill_(model)
    img = bf.input_tensor((1, 3, args.h, args.w)) * 50.0
    forward, total = [], []
    for i in range(args.iterations + 2):
        t = time.perf_counter()
        with torch.inference_mode():
            model(img)
        f = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        dets, _ = rf.detect_py(model, img)  # runs forward again inside; subtract it below
        d = (time.perf_counter() - t) * 1e3
        if i >= 2:
            forward.append(f)
            total.append(d)
    forward.sort()
    total.sort()
    f = forward[len(forward) // 2]
    p = max(total[len(total) // 2] - f, 0.0)
    print(f"torch {torch.__version__} RetinaFace-mnet {args.h}x{args.w} threads={args.threads}: "
          f"forward {f:.1f} ms + post-processing {p:.1f} ms = {f + p:.1f} ms/image; "
          f"post-processing {100 * p / (f + p):.1f} %; {len(dets)} kept")


if __name__ == "__main__":
    main()
