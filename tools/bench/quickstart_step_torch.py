#!/usr/bin/env python3
"""PyTorch side of the quickstart training-step benchmark (see benches/RESULTS.md).

Mirrors `cargo run -p visage-model --example step_timing -- configs/quickstart.toml 8 192 4`
(crates/visage-model/examples/step_timing.rs): the `[model]` of configs/quickstart.toml in plain
PyTorch, and one step = forward, loss (anchors + assignment + targets included), backward, SGD:
- ResNet-18 ×0.25 (stem 16, stages 16/32/64/128), BatchNorm in training mode (`frozen_bn` false);
- FPN 32 ch: P3..P5 from laterals + nearest top-down + 3×3, P6 = 3×3/2 conv of C5
  (`ExtraSource::C5`), P7 = 3×3/2 conv of relu(P6);
- class and box subnets (weights shared across levels): 1 × (3×3 conv 32 + GroupNorm 8 + ReLU),
  then a 3×3 predictor to 3·1 / 3·4 channels;
- 3 anchors per location (2·stride × 1, 1.2599, 1.5874; h/w 1.25), order level, y, x, anchor;
- max-IoU assignment 0.5 / 0.4, force_best (min IoU 0.2); SSD coding, variances 0.1 / 0.2;
  focal loss (α 0.25, γ 2) on positives + negatives and smooth-L1 (β 0.11) on positives, each
  divided by max(1, positives of the batch); total = cls + 1·box, read back to the host;
- SGD without momentum or weight decay, lr 0.001 (`SgdConfig::new()`).
Times are cumulative from the start of the step, as step_timing prints them.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch torchvision
    /tmp/ref/bin/python tools/bench/quickstart_step_torch.py 8 192 4 --threads 2
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import box_iou

STRIDES = [8, 16, 32, 64, 128]  # P3..P7
SIZES = [[2.0 * s * k for k in (1.0, 1.2599, 1.5874)] for s in STRIDES]  # base_factor 2
RATIOS = [1.25]  # height / width
A = len(SIZES[0]) * len(RATIOS)  # anchors per location
POS_IOU, NEG_IOU, FORCE_MIN_IOU = 0.5, 0.4, 0.2
VARIANCES = (0.1, 0.2)
ALPHA, GAMMA, BETA, BOX_WEIGHT = 0.25, 2.0, 0.11, 1.0


def conv(c_in, c_out, k, stride=1, bias=True):
    return nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=bias)


class BasicBlock(nn.Module):
    """torchvision's ResNet-18 block: conv3×3-BN-ReLU-conv3×3-BN + (projected) shortcut."""

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(c_in, planes, 3, stride, False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3, 1, False), nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(conv(c_in, planes, 1, stride, False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 at width 0.25, returning C3, C4, C5 (C2 is computed but unused, as in visage)."""

    def __init__(self, width=0.25):
        super().__init__()
        scaled = lambda c: max(1, round(c * width))  # noqa: E731
        stem, planes = scaled(64), [scaled(c) for c in (64, 128, 256, 512)]
        self.conv1, self.bn1 = conv(3, stem, 7, 2, False), nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        layers, c_in = [], stem
        for i, p in enumerate(planes):
            layers.append(nn.Sequential(BasicBlock(c_in, p, 1 if i == 0 else 2), BasicBlock(p, p, 1)))
            c_in = p
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.channels = planes
        for m in self.modules():  # visage: Kaiming normal, fan_out, gain √2
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


class FPN(nn.Module):
    """RetinaNet's FPN: P3..P5 from laterals, P6 = conv(C5), P7 = conv(relu(P6))."""

    def __init__(self, in_channels, out):
        super().__init__()
        self.lateral = nn.ModuleList(conv(c, out, 1) for c in in_channels)
        self.output = nn.ModuleList(conv(out, out, 3) for _ in in_channels)
        self.extra = nn.ModuleList([conv(in_channels[-1], out, 3, 2), conv(out, out, 3, 2)])
        for m in self.modules():  # visage: Kaiming uniform gain 1, zero bias
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, cs):
        laterals = [l(c) for l, c in zip(self.lateral, cs)]
        outs, top_down = [], None
        for lat, out_conv in zip(reversed(laterals), reversed(self.output)):
            merged = lat if top_down is None else lat + F.interpolate(top_down, size=lat.shape[-2:], mode="nearest")
            outs.append(out_conv(merged))
            top_down = merged
        outs.reverse()
        p6 = self.extra[0](cs[-1])
        return outs + [p6, self.extra[1](F.relu(p6))]


class Subnet(nn.Module):
    """convs × (3×3 conv + GroupNorm + ReLU), then a 3×3 predictor; weights N(0, 0.01)."""

    def __init__(self, c_in, channels, convs, out, groups, bias=0.0):
        super().__init__()
        layers = []
        for i in range(convs):
            layers += [conv(c_in if i == 0 else channels, channels, 3), nn.GroupNorm(groups, channels), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.predictor = conv(channels if convs else c_in, out, 3)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.predictor.bias, bias)

    def forward(self, x):
        return self.predictor(self.convs(x))


def flatten_levels(outputs, per_anchor):
    """[B, A·k, H, W] per level → [B, N, k] in the order level, y, x, anchor."""
    b = outputs[0].shape[0]
    return torch.cat([o.permute(0, 2, 3, 1).reshape(b, -1) for o in outputs], 1).reshape(b, -1, per_anchor)


class RetinaNet(nn.Module):
    def __init__(self, fpn_channels=32, head_channels=32, head_convs=1, groups=8, prior=0.01):
        super().__init__()
        self.backbone = ResNet18(0.25)
        self.neck = FPN(self.backbone.channels[1:], fpn_channels)
        cls_bias = -math.log((1 - prior) / prior)
        self.cls_subnet = Subnet(fpn_channels, head_channels, head_convs, A, groups, cls_bias)
        self.box_subnet = Subnet(fpn_channels, head_channels, head_convs, A * 4, groups)

    def forward(self, images):
        pyramid = self.neck(self.backbone(images))
        cls = flatten_levels([self.cls_subnet(p) for p in pyramid], 1)
        boxes = flatten_levels([self.box_subnet(p) for p in pyramid], 4)
        return cls, boxes, [tuple(p.shape[-2:]) for p in pyramid]


def anchors_for(feature_sizes):
    """xyxy anchors, order level, y, x, (size, ratio); w = s/√r, h = s·√r."""
    out = []
    for stride, sizes, (h, w) in zip(STRIDES, SIZES, feature_sizes):
        half = torch.tensor([[0.5 * s / math.sqrt(r), 0.5 * s * math.sqrt(r)] for s in sizes for r in RATIOS])
        cy, cx = torch.meshgrid((torch.arange(h) + 0.5) * stride, (torch.arange(w) + 0.5) * stride, indexing="ij")
        c = torch.stack([cx, cy], -1).reshape(-1, 1, 2)
        out.append(torch.cat([c - half, c + half], -1).reshape(-1, 4))
    return torch.cat(out)


def encode(anchors, gt):
    """SSD coding with variances (0.1, 0.2), as visage's BoxCoder::encode."""
    (v0, v1), aw, ah = VARIANCES, anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    gw, gh = (gt[:, 2] - gt[:, 0]).clamp(min=1e-3), (gt[:, 3] - gt[:, 1]).clamp(min=1e-3)
    dx = ((gt[:, 0] + gt[:, 2]) - (anchors[:, 0] + anchors[:, 2])) * 0.5 / (v0 * aw)
    dy = ((gt[:, 1] + gt[:, 3]) - (anchors[:, 1] + anchors[:, 3])) * 0.5 / (v0 * ah)
    return torch.stack([dx, dy, torch.log(gw / aw) / v1, torch.log(gh / ah) / v1], 1)


@torch.no_grad()
def assign(anchors, faces):
    """Max-IoU assignment with an ignore band and forced best matches (visage's MaxIouAssigner).

    Returns labels (1 positive, 0 otherwise), weights (0 for ignored) and the matched face per anchor."""
    n = anchors.shape[0]
    if faces.numel() == 0:
        return torch.zeros(n), torch.ones(n), torch.zeros(n, dtype=torch.long)
    iou = box_iou(anchors, faces)  # [N, F]
    best, face = iou.max(1)
    positive = best >= POS_IOU
    weights = (positive | (best < NEG_IOU)).float()
    face_best = iou.max(0).values
    for f in range(faces.shape[0]):  # force_best: every anchor attaining a face's best IoU; last face wins
        if face_best[f] > 0 and face_best[f] >= FORCE_MIN_IOU:
            tied = iou[:, f] == face_best[f]
            positive |= tied
            weights[tied] = 1.0
            face[tied] = f
    return positive.float(), weights, face


def loss_fn(cls_logits, box_deltas, feature_sizes, faces):
    """visage's RetinaNet::loss_parts: targets on the host, focal + smooth-L1 over max(1, positives)."""
    b, n, _ = cls_logits.shape
    anchors = anchors_for(feature_sizes)
    labels, weights, pos_index, box_targets = [], [], [], []
    for i, f in enumerate(faces):
        lab, w, face = assign(anchors, f)
        pos = lab.nonzero().squeeze(1)
        labels.append(lab), weights.append(w), pos_index.append(pos + i * n)
        box_targets.append(encode(anchors[pos], f[face[pos]]))
    labels, weights = torch.cat(labels).unsqueeze(1), torch.cat(weights)
    pos_index, box_targets = torch.cat(pos_index), torch.cat(box_targets)
    normalizer = max(1, pos_index.numel())
    # Sigmoid focal loss written as visage's (log-sigmoid form), weighted per anchor.
    logits = cls_logits.reshape(b * n, 1)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    log_pt = labels * log_p + (1 - labels) * log_not_p
    log_one_minus_pt = labels * log_not_p + (1 - labels) * log_p
    alpha_t = labels * ALPHA + (1 - labels) * (1 - ALPHA)
    focal = -(alpha_t * torch.exp(GAMMA * log_one_minus_pt) * log_pt)
    cls = (focal * weights.unsqueeze(1)).sum() / normalizer
    if pos_index.numel() == 0:
        box = box_deltas.sum() * 0.0
    else:
        pred = box_deltas.reshape(b * n, 4).index_select(0, pos_index)
        box = F.smooth_l1_loss(pred, box_targets, beta=BETA, reduction="sum") / normalizer
    return cls + BOX_WEIGHT * box, cls, box, pos_index.numel()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("batch", type=int, nargs="?", default=8)
    ap.add_argument("size", type=int, nargs="?", default=192)
    ap.add_argument("steps", type=int, nargs="?", default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=2, help="unprinted warm-up training steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = RetinaNet()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    running = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, {args.size}x{args.size}")
    print(f"trainable parameters: {trainable} (+ {running} BN running statistics = {trainable + running}, Burn's num_params)")
    images = torch.randn(args.batch, 3, args.size, args.size)
    faces = [torch.tensor([[10.0 + i, 20.0, 60.0, 80.0], [100.0, 100.0, 200.0, 230.0]]) for i in range(args.batch)]

    # As step_timing: two inference forwards first (eval mode: BN on running statistics).
    model.eval()
    with torch.inference_mode():
        for _ in range(2):
            t = time.perf_counter()
            model(torch.randn(args.batch, 3, args.size, args.size))
            print(f"inference forward: {(time.perf_counter() - t) * 1e3:.0f} ms")
    model.train()

    optim = torch.optim.SGD(model.parameters(), lr=0.001)  # no momentum, no weight decay
    for step in range(args.warmup + args.steps):
        t = time.perf_counter()
        cls_logits, box_deltas, sizes = model(images)
        t_fwd = time.perf_counter() - t
        total, cls, box, num_pos = loss_fn(cls_logits, box_deltas, sizes, faces)
        value = total.item()  # visage reads the parts back (LossValues::read)
        cls.item(), box.item()
        t_loss = time.perf_counter() - t
        total.backward()
        t_bwd = time.perf_counter() - t
        optim.step()
        optim.zero_grad(set_to_none=True)  # Burn's grads are fresh every step
        t_all = time.perf_counter() - t
        label = "warm-up step" if step < args.warmup else "train step"
        print(f"{label}: forward {t_fwd * 1e3:.0f} ms, +loss {t_loss * 1e3:.0f} ms, "
              f"+backward {t_bwd * 1e3:.0f} ms, +sgd {t_all * 1e3:.0f} ms (loss {value:.3f}, "
              f"{num_pos} positives) => {args.batch / t_all:.1f} img/s")


if __name__ == "__main__":
    main()
