#!/usr/bin/env python3
"""Writes the end-to-end fixture of `visage detect` with a Pytorch_Retinaface checkpoint
(crates/visage/tests/fixtures/): an 8-bit RGB PNG and what Pytorch_Retinaface's detect.py
gives for it with the MobileNet-0.25 RetinaFace filled by the shared weight formula.

    /tmp/ref/bin/python tools/parity/retinaface_cli_fixture.py

detect.py reads the image with OpenCV (BGR), subtracts (104, 117, 123), runs the network on
the original size and keeps score > 0.02, top 5000, NMS 0.4, keep 750 (`detect_py` of
retinaface_fixtures.py, with equal scores ordered by prior index: see
`detect_py_ties_by_index`). Files: retinaface_image.png (117 x 163, seeded noise) and
retinaface_image_detect.safetensors with `dets` [K, 5] (x1, y1, x2, y2, score) and
`landms` [K, 10], in pixels of the image.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import backbone_fixtures as bf  # noqa: E402
import retinaface_fixtures as rf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "visage", "tests", "fixtures")


def detect_py_ties_by_index(model, img, conf_thresh=0.02, top_k=5000, nms_thresh=0.4, keep_top_k=750):
    """`detect_py` (detect.py) with equal scores ordered by prior index.

    detect.py sorts with `scores.argsort()[::-1]`, whose order among equal scores is
    unspecified (numpy's introsort). The formula weights leave regions of the feature maps
    inactive, where many priors get exactly the same score, and NMS keeps whichever tied box
    comes first. Any image shows such ties, so the fixture fixes the one order a stable sort
    gives (the order visage uses); everything else is detect.py's."""
    import torch.nn.functional as F
    _, _, h, w = img.shape
    with torch.no_grad():
        loc, conf, landms = model(img)
    conf = F.softmax(conf, dim=-1)
    priors = rf.priorbox(h, w)
    boxes = (rf.decode(loc.squeeze(0), priors, [0.1, 0.2]) * torch.Tensor([w, h, w, h])).numpy()
    scores = conf.squeeze(0).numpy()[:, 1]
    landms = (rf.decode_landm(landms.squeeze(0), priors, [0.1, 0.2]) * torch.Tensor([w, h] * 5)).numpy()
    inds = np.where(scores > conf_thresh)[0]
    boxes, landms, scores = boxes[inds], landms[inds], scores[inds]
    order = np.argsort(-scores, kind="stable")[:top_k]
    boxes, landms, scores = boxes[order], landms[order], scores[order]
    dets = np.hstack((boxes, scores[:, np.newaxis])).astype(np.float32, copy=False)
    keep = rf.py_cpu_nms(dets, nms_thresh)
    return dets[keep, :][:keep_top_k], landms[keep][:keep_top_k]


def main():
    os.makedirs(OUT, exist_ok=True)
    # Odd sizes: the priors' ceil(H / step) and the network's padding must agree.
    rgb = np.random.RandomState(0).randint(0, 256, size=(117, 163, 3)).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "retinaface_image.png"))
    bgr = rgb[:, :, ::-1].astype(np.float32) - np.array([104, 117, 123], dtype=np.float32)
    img = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]
    model = rf.RetinaFace("mobilenet0.25").eval()
    bf.fill_(model)
    dets, landms = detect_py_ties_by_index(model.float(), img)
    ties = len(dets[:, 4]) - len(set(dets[:, 4].tolist()))
    print(f"detect.py: {len(dets)} detections, scores {dets[:, 4].min():.3f}..{dets[:, 4].max():.3f}, {ties} tied")
    save_file({"dets": torch.from_numpy(dets).contiguous(),
               "landms": torch.from_numpy(landms.astype("float32")).contiguous()},
              os.path.join(OUT, "retinaface_image_detect.safetensors"),
              metadata={"generator": "tools/parity/retinaface_cli_fixture.py"})


if __name__ == "__main__":
    main()
