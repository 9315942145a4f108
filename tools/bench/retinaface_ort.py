#!/usr/bin/env python3
"""ONNX Runtime side of the RetinaFace-MobileNet-0.25 CPU benchmark (see benches/RESULTS.md).

    /tmp/ref/bin/python tools/bench/retinaface_ort.py 480 640 10 --threads 1

The same module (Pytorch_Retinaface layout), weights formula and input as retinaface_torch.py
and crates/visage-model/examples/retinaface_bench.rs, exported with torch.onnx.export (opset
17, fixed input size) and run by ONNX Runtime on the CPU with all graph optimisations
(conv + batch-norm fusion included). Prints the forward time (median after 2 warm-ups) and the
largest difference from PyTorch's outputs, so a wrong export cannot pass for a fast one.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
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
    model = rf.RetinaFace("mobilenet0.25").eval()
    bf.fill_(model)
    img = bf.input_tensor((1, 3, args.h, args.w)) * 50.0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "retinaface.onnx")
        torch.onnx.export(model, (img,), path, opset_version=17, input_names=["input"],
                          dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"input": img.numpy()}
    times = []
    for i in range(args.iterations + 2):
        t = time.perf_counter()
        outputs = session.run(None, feed)
        if i >= 2:
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    with torch.inference_mode():
        reference = [o.numpy() for o in model(img)]
    worst = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
                for a, b in zip(outputs, reference))
    print(f"onnxruntime {ort.__version__} RetinaFace-mnet {args.h}x{args.w} "
          f"threads={args.threads}: forward {times[len(times) // 2]:.1f} ms "
          f"(median of {args.iterations}); max |ort - torch| / max |torch| = {worst:.1e}")


if __name__ == "__main__":
    main()
