#!/usr/bin/env python3
"""Writes RetinaFace parity fixtures (crates/visage-model/tests/fixtures/) from modules with
Pytorch_Retinaface's exact layout (models/net.py, models/retinaface.py, reproduced below from
its public source), filled by the same deterministic formula as the backbone fixtures.

    /tmp/ref/bin/python tools/parity/retinaface_fixtures.py

Fixtures: retinaface_mnet.safetensors, retinaface_r50.safetensors with `input` [1, 3, 64, 80]
and the raw outputs of `RetinaFace(phase="train")`: `loc` [1, N, 4], `conf` [1, N, 2] (logits),
`landms` [1, N, 10], computed in float64.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models import _utils
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import backbone_fixtures as bf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "visage-model", "tests", "fixtures")


def conv_bn(inp, oup, stride=1, leaky=0):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup),
                         nn.LeakyReLU(negative_slope=leaky, inplace=True))


def conv_bn_no_relu(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn1X1(inp, oup, stride, leaky=0):
    return nn.Sequential(nn.Conv2d(inp, oup, 1, stride, padding=0, bias=False), nn.BatchNorm2d(oup),
                         nn.LeakyReLU(negative_slope=leaky, inplace=True))


class SSH(nn.Module):
    def __init__(self, in_channel, out_channel):
        super().__init__()
        assert out_channel % 4 == 0
        leaky = 0.1 if out_channel <= 64 else 0
        self.conv3X3 = conv_bn_no_relu(in_channel, out_channel // 2, stride=1)
        self.conv5X5_1 = conv_bn(in_channel, out_channel // 4, stride=1, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(out_channel // 4, out_channel // 4, stride=1)
        self.conv7X7_2 = conv_bn(out_channel // 4, out_channel // 4, stride=1, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(out_channel // 4, out_channel // 4, stride=1)

    def forward(self, input):
        conv3X3 = self.conv3X3(input)
        conv5X5_1 = self.conv5X5_1(input)
        conv5X5 = self.conv5X5_2(conv5X5_1)
        conv7X7_2 = self.conv7X7_2(conv5X5_1)
        conv7X7 = self.conv7x7_3(conv7X7_2)
        return F.relu(torch.cat([conv3X3, conv5X5, conv7X7], dim=1))


class FPN(nn.Module):
    def __init__(self, in_channels_list, out_channels):
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0
        self.output1 = conv_bn1X1(in_channels_list[0], out_channels, stride=1, leaky=leaky)
        self.output2 = conv_bn1X1(in_channels_list[1], out_channels, stride=1, leaky=leaky)
        self.output3 = conv_bn1X1(in_channels_list[2], out_channels, stride=1, leaky=leaky)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, input):
        input = list(input.values())
        output1 = self.output1(input[0])
        output2 = self.output2(input[1])
        output3 = self.output3(input[2])
        up3 = F.interpolate(output3, size=[output2.size(2), output2.size(3)], mode="nearest")
        output2 = self.merge2(output2 + up3)
        up2 = F.interpolate(output2, size=[output1.size(2), output1.size(3)], mode="nearest")
        output1 = self.merge1(output1 + up2)
        return [output1, output2, output3]


class Head(nn.Module):
    def __init__(self, inchannels, num_anchors, per_anchor):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(inchannels, num_anchors * per_anchor, kernel_size=(1, 1), stride=1, padding=0)

    def forward(self, x):
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    def __init__(self, name):
        super().__init__()
        if name == "mobilenet0.25":
            backbone, return_layers, in_channel, out_channel = bf.MobileNetV1(), {"stage1": 1, "stage2": 2, "stage3": 3}, 32, 64
        else:
            backbone, return_layers, in_channel, out_channel = torchvision.models.resnet50(), {"layer2": 1, "layer3": 2, "layer4": 3}, 256, 256
        self.body = _utils.IntermediateLayerGetter(backbone, return_layers)
        self.fpn = FPN([in_channel * 2, in_channel * 4, in_channel * 8], out_channel)
        self.ssh1 = SSH(out_channel, out_channel)
        self.ssh2 = SSH(out_channel, out_channel)
        self.ssh3 = SSH(out_channel, out_channel)
        self.ClassHead = nn.ModuleList([Head(out_channel, 2, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(out_channel, 2, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(out_channel, 2, 10) for _ in range(3)])

    def forward(self, inputs):
        fpn = self.fpn(self.body(inputs))
        features = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([self.BboxHead[i](f) for i, f in enumerate(features)], dim=1)
        conf = torch.cat([self.ClassHead[i](f) for i, f in enumerate(features)], dim=1)
        landms = torch.cat([self.LandmarkHead[i](f) for i, f in enumerate(features)], dim=1)
        return loc, conf, landms


# --- detect.py's post-processing (layers/functions/prior_box.py, utils/box_utils.py,
# utils/nms/py_cpu_nms.py), reproduced from Pytorch_Retinaface's public source ---
def priorbox(h, w, min_sizes=((16, 32), (64, 128), (256, 512)), steps=(8, 16, 32)):
    from itertools import product
    from math import ceil
    anchors = []
    for k, step in enumerate(steps):
        for i, j in product(range(ceil(h / step)), range(ceil(w / step))):
            for min_size in min_sizes[k]:
                anchors += [(j + 0.5) * step / w, (i + 0.5) * step / h, min_size / w, min_size / h]
    return torch.Tensor(anchors).view(-1, 4)


def decode(loc, priors, variances):
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def decode_landm(pre, priors, variances):
    return torch.cat([priors[:, :2] + pre[:, 2 * k:2 * k + 2] * variances[0] * priors[:, 2:] for k in range(5)], dim=1)


def py_cpu_nms(dets, thresh):
    import numpy as np
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def detect_py(model, img, conf_thresh=0.02, top_k=5000, nms_thresh=0.4, keep_top_k=750):
    """detect.py from `img` (BGR minus mean, [1, 3, H, W] float32) on: dets [K, 5], landms [K, 10]."""
    import numpy as np
    _, _, h, w = img.shape
    with torch.no_grad():
        loc, conf, landms = model(img)
    conf = F.softmax(conf, dim=-1)
    priors = priorbox(h, w)
    boxes = (decode(loc.squeeze(0), priors, [0.1, 0.2]) * torch.Tensor([w, h, w, h])).numpy()
    scores = conf.squeeze(0).numpy()[:, 1]
    landms = (decode_landm(landms.squeeze(0), priors, [0.1, 0.2]) * torch.Tensor([w, h] * 5)).numpy()
    inds = np.where(scores > conf_thresh)[0]
    boxes, landms, scores = boxes[inds], landms[inds], scores[inds]
    order = scores.argsort()[::-1][:top_k]
    boxes, landms, scores = boxes[order], landms[order], scores[order]
    dets = np.hstack((boxes, scores[:, np.newaxis])).astype(np.float32, copy=False)
    keep = py_cpu_nms(dets, nms_thresh)
    return dets[keep, :][:keep_top_k], landms[keep][:keep_top_k]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, file in [("mobilenet0.25", "retinaface_mnet"), ("resnet50", "retinaface_r50")]:
        model = RetinaFace(name).eval()
        bf.fill_(model)
        x = bf.input_tensor((1, 3, 64, 80)) * 50.0
        with torch.no_grad():
            ref = model.double()(x.double())
            f32 = model.float()(x.float())
        tensors = {"input": x.float().contiguous()}
        for key, r, f in zip(["loc", "conf", "landms"], ref, f32):
            rel = (f.double() - r).abs().max().item() / r.abs().max().item()
            print(f"{file} {key} {tuple(r.shape)} max|ref| {r.abs().max().item():.4g} torch f32 rel err {rel:.2e}")
            tensors[key] = r.float().contiguous()
        save_file(tensors, os.path.join(OUT, f"{file}.safetensors"), metadata={"generator": "tools/parity/retinaface_fixtures.py"})
        print(f"  {len(model.state_dict())} state-dict keys")
        if name == "mobilenet0.25":
            # detect.py on a 120 x 160 input, in float32 as detect.py runs.
            # A seeded random image (stored in the fixture): the formula input repeats itself
            # almost periodically, which gives tied scores whose NMS order is arbitrary.
            img = torch.randn(1, 3, 120, 160, generator=torch.Generator().manual_seed(0)) * 50.0
            dets, landms = detect_py(model.float(), img)
            ties = len(dets[:, 4]) - len(set(dets[:, 4].tolist()))
            print(f"  detect.py: {len(dets)} detections, scores {dets[:, 4].min():.3f}..{dets[:, 4].max():.3f}, {ties} tied")
            save_file({"input": img.contiguous(), "dets": torch.from_numpy(dets).contiguous(),
                       "landms": torch.from_numpy(landms.astype("float32")).contiguous()},
                      os.path.join(OUT, "retinaface_mnet_detect.safetensors"),
                      metadata={"generator": "tools/parity/retinaface_fixtures.py"})


if __name__ == "__main__":
    main()
