#!/usr/bin/env python3
"""`visage export --postprocess` checked in ONNX Runtime against `visage detect`.

    /tmp/ref/bin/python tools/export/compare_ort.py --visage target/release/visage \
        --weights W [--config C] --work /tmp/export-check IMAGE_OR_DIR...

(venv outside the repository: `python3 -m venv /tmp/ref && /tmp/ref/bin/pip install onnx
onnxruntime numpy pillow`.)

1. exports the model twice, `--postprocess --raw-input` (uint8 RGB [N, H, W, 3] in, detections
   out) and `--postprocess` (float32 normalised [N, 3, H, W] in), and runs `onnx.checker`
   (full check, with shape inference) on both;
2. runs `visage detect --json` over the images (each at its own size: the config must not
   resize, i.e. no test.max_size / short_side / tta);
3. runs both graphs in ONNX Runtime on every image and matches their detections one to one
   with visage's: same count, box IoU > 0.99, score within 1e-3, landmarks within 0.05 px;
4. times ONNX Runtime per image (1 thread and all threads, median of --repeats runs after a
   warm-up) beside visage detect's own per-image forward + post-processing time.
Exits non-zero if any image disagrees.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

EXTENSIONS = (".jpg", ".jpeg", ".png")


def images_of(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
        else:
            out.append(p)
    return sorted(out)


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def compare(ours, theirs):
    """Matches ONNX Runtime's detections (`theirs`: boxes, scores, landmarks) one to one with
    visage's; returns (problems, min IoU, max score diff, max landmark diff)."""
    boxes, scores, landmarks = theirs
    problems = []
    if len(ours) != len(scores):
        problems.append(f"{len(scores)} detections, visage has {len(ours)}")
        return problems, 0.0, float("inf"), float("inf")
    used = np.zeros(len(scores), bool)
    min_iou, max_ds, max_dl = 1.0, 0.0, 0.0
    for d in ours:
        cands = [i for i in range(len(scores)) if not used[i] and abs(scores[i] - d["score"]) < 1e-3]
        if not cands:
            problems.append(f"no detection with score {d['score']:.5f}")
            continue
        best = max(cands, key=lambda i: iou(boxes[i], d["box"]))
        used[best] = True
        v = iou(boxes[best], d["box"])
        min_iou = min(min_iou, v)
        max_ds = max(max_ds, abs(scores[best] - d["score"]))
        if v <= 0.99:
            problems.append(f"box {boxes[best].tolist()} vs {d['box']} (IoU {v:.4f})")
        if landmarks is not None and d.get("landmarks") is not None:
            dl = np.abs(landmarks[best].reshape(-1) - np.array(d["landmarks"]).reshape(-1)).max()
            max_dl = max(max_dl, float(dl))
            if dl >= 0.05:
                problems.append(f"landmarks differ by {dl:.3f} px")
    return problems, min_iou, max_ds, max_dl


def run_session(session, feed):
    outs = session.run(None, feed)
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, outs))
    return got["boxes"], got["scores"], got.get("landmarks")


def median_ms(session, feed, repeats):
    session.run(None, feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(None, feed)
        times.append(1e3 * (time.perf_counter() - t))
    return float(np.median(times))


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visage", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config")
    ap.add_argument("--work", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    files = images_of(args.images)
    base = [args.visage]
    cfg = ["--config", args.config] if args.config else []

    raw = os.path.join(args.work, "model_raw_input.onnx")
    norm = os.path.join(args.work, "model.onnx")
    subprocess.run(base + ["export", "--weights", args.weights, *cfg, "--out", raw, "--postprocess", "--raw-input"], check=True)
    subprocess.run(base + ["export", "--weights", args.weights, *cfg, "--out", norm, "--postprocess"], check=True)
    for path in (raw, norm):
        onnx.checker.check_model(path, full_check=True)
    print(f"onnx.checker (full) passes on {raw} and {norm}")
    meta = {p.key: p.value for p in onnx.load(norm).metadata_props}
    order, mean, std = re.search(r"order (\w+), mean \[(.*?)\], std \[(.*?)\]", meta["visage.input"]).groups()
    mean = np.array([float(v) for v in mean.split(",")], np.float32).reshape(1, 3, 1, 1)
    std = np.array([float(v) for v in std.split(",")], np.float32).reshape(1, 3, 1, 1)

    detect_json = os.path.join(args.work, "detect.json")
    proc = subprocess.run(base + ["detect", "--weights", args.weights, *cfg, "--json", detect_json, "--batch-size", "1", *files],
                          check=True, capture_output=True, text=True)
    timing = re.search(r"forward ([\d.]+) ms, post-processing ([\d.]+) ms", proc.stderr)
    with open(detect_json) as f:
        detected = {os.path.abspath(d["image"]): d for d in json.load(f)}

    raw_1, raw_all = session(raw, 1), session(raw, os.cpu_count())
    norm_1 = session(norm, 1)
    failures = 0
    ort_ms_1, ort_ms_all = [], []
    print(f"{'image':40} {'size':>9} {'dets':>5} {'min IoU':>8} {'max dscore':>10} {'max dlandm':>10}")
    for path in files:
        ours = detected.get(os.path.abspath(path))
        if ours is None:
            print(f"{path}: missing from visage's JSON")
            failures += 1
            continue
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w, _ = rgb.shape
        raw_feed = {"images": rgb[None]}
        x = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        if order == "Bgr":
            x = x[:, ::-1]
        norm_feed = {"images": np.ascontiguousarray((x - mean) / std)}
        for label, sess, feed in (("raw-input", raw_1, raw_feed), ("normalised", norm_1, norm_feed)):
            problems, min_iou, ds, dl = compare(ours["detections"], run_session(sess, feed))
            name = f"{os.path.basename(path)} ({label})"
            print(f"{name[:40]:40} {w:>4}x{h:<4} {len(ours['detections']):>5} {min_iou:>8.4f} {ds:>10.2e} {dl:>10.2e}")
            for p in problems[:5]:
                print(f"    {p}")
            failures += bool(problems)
        ort_ms_1.append(median_ms(raw_1, raw_feed, args.repeats))
        ort_ms_all.append(median_ms(raw_all, raw_feed, args.repeats))
    print()
    print(f"ONNX Runtime {ort.__version__}, per image (median of {args.repeats}, mean over {len(files)} images, "
          f"graph with post-processing): 1 thread {np.mean(ort_ms_1):.1f} ms, {os.cpu_count()} threads {np.mean(ort_ms_all):.1f} ms")
    if timing:
        fwd, post = float(timing.group(1)), float(timing.group(2))
        print(f"visage detect (batch 1, all threads), per image: forward {fwd:.1f} ms + post-processing {post:.1f} ms = {fwd + post:.1f} ms")
    if failures:
        print(f"{failures} comparisons failed")
        sys.exit(1)
    print("every image: the same detections")


if __name__ == "__main__":
    main()
