#!/usr/bin/env python3
"""Writes the backbone parity fixtures of visage-backbone from the reference PyTorch code.

Run it in a virtual environment outside the repository:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch torchvision safetensors numpy
    /tmp/ref/bin/python tools/parity/backbone_fixtures.py
    # optional: a full-size torchvision ResNet-50 .pth with the same formula weights, for the
    # env-gated test (VISAGE_RESNET50_PTH) and the import round trip
    /tmp/ref/bin/python tools/parity/backbone_fixtures.py --full-resnet50 /tmp/resnet50_formula.pth

Weights are not stored: both sides fill every tensor from one deterministic formula (see
`crates/visage-backbone/src/weights/formula.rs`, which this must match), so the committed
fixtures hold only inputs and reference outputs. References are computed in float64 and stored
as float32.

Fixtures (crates/visage-backbone/tests/fixtures/):
  resnet50.safetensors, resnet152.safetensors  torchvision resnet50 / resnet152:
      input [1, 3, 28, 36]; c2..c5 (layer1..layer4 outputs)
  mobilenet025.safetensors  MobileNetV1 x0.25 with Pytorch_Retinaface's exact module layout:
      input [1, 3, 64, 80]; stage1..stage3
  resnet50_w1-32_half.pth  a real torch.save(state_dict) zip file: ResNet-50 at 1/32 width with
      torchvision's key names and shapes scaled, float16, a `module.` prefix, an fc head and
      num_batches_tracked, filled by the formula (tests the file path, half precision, the
      prefix and the ignored keys)
  resnet50_w1-64_checkpoint.tar  a training checkpoint in torch's legacy (non-zip) format:
      {"epoch", "arch", "state_dict": {module.* float32}, "best_prec1"}; ResNet-50 at 1/64
      width without fc
  with_optimizer_state.pth  {"state_dict": {1 tensor}, "optimizer": {"state": {0: ...}}}: a
      dict with integer keys, which burn-store 0.21's pickle reader rejects (tests the error)
"""
import argparse
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "visage-backbone", "tests", "fixtures")


def key_seed(key: str) -> int:
    acc = 0
    for j, b in enumerate(key.encode("utf-8")):
        acc = (acc + (j + 1) * b) % 9973
    return acc


def formula_values(key: str, shape) -> np.ndarray:
    """float64 values of the formula (see formula.rs), row-major."""
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.float64)
    u = np.sin(1.618034 * i + 0.137 * key_seed(key))
    rank = len(shape)
    if rank >= 2:
        fan_in = int(np.prod(shape[1:]))
        v = 2.0 * u / math.sqrt(max(fan_in, 1))
    elif key.endswith("running_mean"):
        v = 0.2 * u
    elif key.endswith("running_var"):
        v = 0.8 + 0.4 * u
    elif key.endswith("weight"):
        v = 0.3 + 0.1 * u
    elif key.endswith("bias"):
        v = 0.1 * u
    else:
        v = u
    return v.reshape(shape)


def fill_(model: nn.Module):
    """Overwrites every float tensor of the state dict with the formula's values (rounded to
    float32 once, as the Rust side does), keeping the module's dtype."""
    sd = model.state_dict()
    for key, t in sd.items():
        if not t.is_floating_point():
            continue
        v = formula_values(key, tuple(t.shape)).astype(np.float32)
        t.copy_(torch.from_numpy(v).to(t.dtype))


def input_tensor(shape):
    return torch.from_numpy(formula_values("input", shape).astype(np.float32))


# --- Pytorch_Retinaface models/net.py, MobileNetV1 (module layout and key names) ---
def conv_bn(inp, oup, stride=1, leaky=0):
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_dw(inp, oup, stride, leaky=0.1):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            conv_dw(64, 128, 2),
            conv_dw(128, 128, 1),
            conv_dw(128, 128, 1),
            conv_dw(128, 128, 1),
            conv_dw(128, 128, 1),
            conv_dw(128, 128, 1),
        )
        self.stage3 = nn.Sequential(
            conv_dw(128, 256, 2),
            conv_dw(256, 256, 1),
        )
        self.avg = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(256, 1000)

    def levels(self, x):
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        return [s1, s2, s3]


def resnet_levels(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    out = []
    for layer in [model.layer1, model.layer2, model.layer3, model.layer4]:
        x = layer(x)
        out.append(x)
    return out


def reference(model, levels_fn, x, names):
    """float64 reference levels, and how far torch's own float32 run is from them."""
    model = model.eval()
    fill_(model)
    with torch.no_grad():
        ref = levels_fn(model.double(), x.double())
        f32 = levels_fn(model.float(), x.float())
    for name, r, f in zip(names, ref, f32):
        rel = (f.double() - r).abs().max().item() / r.abs().max().item()
        print(f"  {name} {tuple(r.shape)} max|ref| {r.abs().max().item():.4g}  torch f32 rel err {rel:.2e}")
    tensors = {"input": x.float().contiguous()}
    tensors.update({n: r.float().contiguous() for n, r in zip(names, ref)})
    return tensors


def scaled_resnet50_state_dict(width: float, dtype=torch.float16) -> "OrderedDict[str, torch.Tensor]":
    """torchvision ResNet-50's keys with every channel count scaled like visage's
    width_multiplier (max(1, round(c * width))); the 3 input channels and 1000 classes kept."""
    def s(c):
        return max(1, int(round(c * width)))

    full = torchvision.models.resnet50().state_dict()
    out = OrderedDict()
    for key, t in full.items():
        shape = list(t.shape)
        if key == "fc.weight":
            shape = [shape[0], s(shape[1])]
        elif key == "fc.bias":
            pass
        elif len(shape) == 4:
            shape = [s(shape[0]), 3 if shape[1] == 3 else s(shape[1])] + shape[2:]
        elif len(shape) == 1:
            shape = [s(shape[0])]
        if not t.is_floating_point():
            out[key] = torch.zeros(shape, dtype=t.dtype)
            continue
        v = formula_values(key, tuple(shape)).astype(np.float32)
        out[key] = torch.from_numpy(v).to(dtype)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--full-resnet50", help="also write a full-size torchvision ResNet-50 .pth with formula weights here")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    names = ["c2", "c3", "c4", "c5"]
    for arch in ["resnet50", "resnet152"]:
        print(arch)
        model = getattr(torchvision.models, arch)()
        t = reference(model, resnet_levels, input_tensor((1, 3, 28, 36)), names)
        save_file(t, os.path.join(args.out, f"{arch}.safetensors"), metadata={"generator": "tools/parity/backbone_fixtures.py", "torch": torch.__version__, "torchvision": torchvision.__version__})
    print("mobilenet025")
    t = reference(MobileNetV1(), MobileNetV1.levels, input_tensor((1, 3, 64, 80)), ["stage1", "stage2", "stage3"])
    save_file(t, os.path.join(args.out, "mobilenet025.safetensors"), metadata={"generator": "tools/parity/backbone_fixtures.py", "torch": torch.__version__})

    small = OrderedDict(("module." + k, v) for k, v in scaled_resnet50_state_dict(1 / 32).items())
    path = os.path.join(args.out, "resnet50_w1-32_half.pth")
    torch.save(small, path)
    print(f"{path}: {len(small)} tensors, {os.path.getsize(path)} bytes")

    sd = scaled_resnet50_state_dict(1 / 64, torch.float32)
    sd = OrderedDict(("module." + k, v) for k, v in sd.items() if not k.startswith("fc."))
    checkpoint = {
        "epoch": 3,
        "arch": "resnet50",
        "state_dict": sd,
        "best_prec1": 71.2,
    }
    path = os.path.join(args.out, "resnet50_w1-64_checkpoint.tar")
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    print(f"{path}: {len(sd)} tensors, {os.path.getsize(path)} bytes")
    with_optimizer = {
        "state_dict": {"conv1.weight": torch.ones(1, 3, 7, 7)},
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(1, 3, 7, 7)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
    }
    path = os.path.join(args.out, "with_optimizer_state.pth")
    torch.save(with_optimizer, path)
    print(f"{path}: {os.path.getsize(path)} bytes")

    if args.full_resnet50:
        model = torchvision.models.resnet50()
        fill_(model)
        torch.save(model.state_dict(), args.full_resnet50)
        print(f"{args.full_resnet50}: {os.path.getsize(args.full_resnet50)} bytes")


if __name__ == "__main__":
    main()
