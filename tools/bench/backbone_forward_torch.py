#!/usr/bin/env python3
"""PyTorch side of the backbone forward benchmark (see benches/RESULTS.md).

    /tmp/ref/bin/python tools/bench/backbone_forward_torch.py resnet50 640 640 --threads 2
    /tmp/ref/bin/python tools/bench/backbone_forward_torch.py resnet50 640 640 --threads 1

Same weights formula and input as crates/visage-backbone/examples/backbone_forward.rs;
eval mode, torch.inference_mode(), batch 1, float32; median and min of N runs after two warm-ups.
"""
import argparse
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import backbone_fixtures as bf  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=["resnet50", "resnet152", "mobilenet"])
    ap.add_argument("h", type=int)
    ap.add_argument("w", type=int)
    ap.add_argument("iterations", type=int, nargs="?", default=10)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.arch == "mobilenet":
        model = bf.MobileNetV1()
        run = model.levels
    else:
        model = getattr(torchvision.models, args.arch)()
        run = lambda x: bf.resnet_levels(model, x)  # noqa: E731
    model.eval()
    bf.fill_(model)
    x = bf.input_tensor((1, 3, args.h, args.w))
    times = []
    with torch.inference_mode():
        for i in range(args.iterations + 2):
            t = time.perf_counter()
            run(x)
            ms = (time.perf_counter() - t) * 1e3
            if i >= 2:
                times.append(ms)
    times.sort()
    print(f"torch {torch.__version__} {args.arch} {args.h}x{args.w} threads={args.threads}: "
          f"median {times[len(times) // 2]:.1f} ms, min {times[0]:.1f} ms over {len(times)} runs")


if __name__ == "__main__":
    main()
