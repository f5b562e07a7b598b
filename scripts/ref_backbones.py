#!/usr/bin/python3
"""PyTorch twins of the shipped backbones and of WDRNet, for tests/test_backbone_parity.c.

Weights and inputs come from a formula both sides compute exactly (integer hashing, no weights
are stored): for element i of tensor `name`, with h = FNV-1a 32-bit of the name,
  x = ((i + h) * 2654435761) mod 2^32;  x ^= x >> 15;  x = (x * 2246822519) mod 2^32;  x ^= x >> 13
  v_i = 2 x / 2^32 - 1  (uniform in [-1, 1))
  conv weight  1.5 v_i / sqrt(fan_in)      conv bias, norm bias, running_mean  0.1 v_i
  norm weight  1 + 0.2 v_i                 running_var  0.75 + 0.5 v_i^2       scale  1 + 0.1 v_i
  input        v_i of the name "input" (flattened NCHW)
The loss is L = sum over the listed outputs o (in order k = 0, 1, ...) of sum_i o_i cos(0.013 i + k).
All in float64, rounded to float32.

Writes tests/data/backbones/<case>.safetensors (standard library writer of ref_safetensors.py):
"out.<name>" the outputs; for training cases "gradstat.<param>": the gradient's L2 norm and its
projections p_j = sum_i g_i cos(0.7 i + j) / sqrt(n / 2), j = 0..3 (summaries that a single
activation sitting on the leaky-ReLU kink, which float rounding may put on either side, barely
moves; element-wise comparisons would flag it). Cases:
  wdrnet_tiny_h  WDRNet on DarkNet-Tiny-H, F = 64, 2 tower convs, C = 2, batch 2, 96x96, training
                 mode; metadata "state_dict" lists the PyTorch state_dict keys and shapes
  tiny           DarkNet-Tiny backbone, batch 2, 64x64, training mode, outputs s8 and s16
  darknet53      DarkNet-53 backbone, 1x3x64x64, eval mode (running statistics), outputs s8, s16, s32
Usage: /usr/bin/python3 scripts/ref_backbones.py [out_dir]
       /usr/bin/python3 scripts/ref_backbones.py --check FILE.safetensors
The second form loads a WDRNet weights file written by uakd (uakd_wdrnet_save) into the PyTorch
twin built from the file's metadata, with load_state_dict(strict=True).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_safetensors import dump, load  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def parse_cfg(path):
    """Sections of a cfg as (type, dict); only the keys the shipped backbones use."""
    secs = []
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            secs.append((line[1:-1], {}))
        else:
            k, v = line.split("=", 1)
            secs[-1][1][k.strip()] = v.strip()
    return secs[1:]


def submodule(root, dotted):
    m = root
    for part in dotted.split("."):
        if not hasattr(m, part):
            setattr(m, part, nn.Module())
        m = getattr(m, part)
    return m


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers, c, self.taps = [], 3, []
        chans = []
        for i, (kind, kv) in enumerate(parse_cfg(cfg)):
            if kind == "convolutional":
                k, f = int(kv["size"]), int(kv["filters"])
                pad = k // 2 if kv.get("pad") == "1" else int(kv.get("padding", 0))
                m = submodule(self, kv["name"])
                bn = kv.get("batch_normalize") == "1"
                m.conv = nn.Conv2d(c, f, k, int(kv.get("stride", 1)), pad, bias=not bn)
                if bn:
                    m.bn = nn.BatchNorm2d(f)
                self.layers.append(("conv", m, kv.get("activation", "linear")))
                c = f
            elif kind == "maxpool":
                self.layers.append(("maxpool", int(kv["size"]), int(kv.get("stride", kv["size"]))))
            elif kind == "shortcut":
                frm = int(kv["from"])
                self.layers.append(("shortcut", i + frm if frm < 0 else frm, kv.get("activation", "linear")))
            elif kind == "output":
                self.layers.append(("output", kv["name"]))
                self.taps.append(kv["name"])
            else:
                raise ValueError(kind)
            chans.append(c)
        self.tap_channels = [chans[i] for i, l in enumerate(self.layers) if l[0] == "output"]

    def forward(self, x):
        outs, taps = [], {}
        for l in self.layers:
            if l[0] == "conv":
                m = l[1]
                x = m.conv(x)
                if hasattr(m, "bn"):
                    x = m.bn(x)
                if l[2] == "leaky":
                    x = F.leaky_relu(x, 0.1)
            elif l[0] == "maxpool":
                x = F.max_pool2d(x, l[1], l[2])
            elif l[0] == "shortcut":
                x = x + outs[l[1]]
            elif l[0] == "output":
                taps[l[1]] = x
            outs.append(x)
        return taps, x


class WDRNet(nn.Module):
    def __init__(self, cfg, classes, width, tower):
        super().__init__()
        self.backbone = Backbone(cfg)
        ch = self.backbone.tap_channels
        neck = nn.Module()
        neck.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in ch])
        neck.output = nn.ModuleList([nn.Conv2d(width, width, 3, 1, 1) for _ in ch])
        neck.extra = nn.ModuleList([nn.Conv2d(ch[-1], width, 3, 2, 1), nn.Conv2d(width, width, 3, 2, 1)])
        self.neck = neck
        g = min(32, width)

        def towerseq():
            mods = []
            for _ in range(tower):
                mods += [nn.Conv2d(width, width, 3, 1, 1), nn.GroupNorm(g, width), nn.ReLU()]
            return nn.Sequential(*mods)

        head = nn.Module()
        head.cls_tower, head.pose_tower = towerseq(), towerseq()
        head.cls_logits = nn.Conv2d(width, classes, 3, 1, 1)
        head.pose_pred = nn.Conv2d(width, 16 * classes, 3, 1, 1)
        self.levels = len(ch) + 2
        head.scales = nn.ModuleList()
        for _ in range(self.levels):
            s = nn.Module()
            s.scale = nn.Parameter(torch.tensor([1.0]))  # shape [1], as FCOS's Scale
            head.scales.append(s)
        self.head = head

    def forward(self, x):
        taps, last = self.backbone(x)
        c = [taps[n] for n in self.backbone.taps]
        lat = [m(t) for m, t in zip(self.neck.lateral, c)]
        inner = [None] * len(c)
        inner[-1] = lat[-1]
        for i in range(len(c) - 2, -1, -1):
            inner[i] = lat[i] + F.interpolate(inner[i + 1], scale_factor=2, mode="nearest")
        P = [m(t) for m, t in zip(self.neck.output, inner)]
        e0 = self.neck.extra[0](last)
        P += [e0, self.neck.extra[1](F.relu(e0))]
        outs = {}
        for l, p in enumerate(P):
            outs["logits%d" % l] = self.head.cls_logits(self.head.cls_tower(p))
            outs["offsets%d" % l] = self.head.scales[l].scale * self.head.pose_pred(self.head.pose_tower(p))
        return outs, P


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_uniform(name, n):
    i = np.arange(n, dtype=np.uint64)
    m = np.uint64(0xFFFFFFFF)
    x = ((i + np.uint64(fnv1a(name))) * np.uint64(2654435761)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & m
    x ^= x >> np.uint64(13)
    return x.astype(np.float64) * (2.0 / 4294967296.0) - 1.0


def formula_value(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    v = hash_uniform(name, n)
    last = name.rsplit(".", 1)[-1]
    if len(shape) == 4:
        v = 1.5 * v / math.sqrt(shape[1] * shape[2] * shape[3])
    elif last in ("bias", "running_mean"):
        v = 0.1 * v
    elif last == "weight":
        v = 1 + 0.2 * v
    elif last == "running_var":
        v = 0.75 + 0.5 * v * v
    elif last == "scale":
        v = 1 + 0.1 * v
    else:
        raise ValueError(name)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def set_formula(net):
    sd = net.state_dict()
    with torch.no_grad():
        for k, t in sd.items():
            if not k.endswith("num_batches_tracked"):
                t.copy_(formula_value(k, tuple(t.shape)))


def formula_input(shape):
    return torch.from_numpy(hash_uniform("input", int(np.prod(shape))).astype(np.float32).reshape(shape))


def loss_of(outs):
    total = 0
    for k, o in enumerate(outs):
        c = np.cos(0.013 * np.arange(o.numel()) + k).astype(np.float32)
        total = total + (o.reshape(-1) * torch.from_numpy(c)).sum()
    return total


def record(net, names, outs, train, tensors):
    for n, o in zip(names, outs):
        tensors.append(("out." + n, o.detach().contiguous()))
    if not train:
        return
    loss_of(outs).backward()
    for k, p in net.named_parameters():
        g = p.grad.detach().reshape(-1).double()
        i = torch.arange(g.numel(), dtype=torch.float64)
        proj = [(g * torch.cos(0.7 * i + j)).sum().item() / math.sqrt(max(g.numel() / 2, 1)) for j in range(4)]
        tensors.append(("gradstat." + k, torch.tensor([g.norm().item()] + proj, dtype=torch.float32)))


def write(out_dir, case, tensors, meta):
    path = os.path.join(out_dir, case + ".safetensors")
    with open(path, "wb") as f:
        f.write(dump(tensors, meta))
    print("wrote", path, os.path.getsize(path), "bytes")


VARIANT_CFG = {"darknet53": "darknet53.cfg", "darknet-tiny": "darknet-tiny.cfg", "darknet-tiny-h": "darknet-tiny-h.cfg"}


def check(path):
    tensors, meta = load(path)
    assert meta.get("format") == "uakd-weights" and meta.get("model") == "wdrnet", meta.get("format")
    cfg_file = None
    for v, f in VARIANT_CFG.items():
        # the shipped backbone whose names and shapes these are
        probe = WDRNet(os.path.join(ROOT, "cfg", f), int(meta["wdrnet_classes"]), int(meta["wdrnet_width"]),
                       int(meta["wdrnet_tower_convs"]))
        shapes = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        if shapes == {k: tuple(v.shape) for k, v in tensors.items()}:
            cfg_file = f
            break
    assert cfg_file, "no shipped backbone has these keys"
    net = WDRNet(os.path.join(ROOT, "cfg", cfg_file), int(meta["wdrnet_classes"]), int(meta["wdrnet_width"]),
                 int(meta["wdrnet_tower_convs"]))
    net.load_state_dict(tensors, strict=True)
    print("%s: %d tensors loaded strictly into the PyTorch WDRNet twin (%s)" % (path, len(tensors), cfg_file))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "backbones")
    os.makedirs(out_dir, exist_ok=True)
    cfg = lambda n: os.path.join(ROOT, "cfg", n)  # noqa: E731

    net = WDRNet(cfg("darknet-tiny-h.cfg"), classes=2, width=64, tower=2)
    set_formula(net)
    net.train()
    outs, P = net(formula_input((2, 3, 96, 96)))
    names = ["logits%d" % l for l in range(4)] + ["offsets%d" % l for l in range(4)]
    tensors = [("out.feature%d" % l, p.detach().contiguous()) for l, p in enumerate(P)]
    record(net, names, [outs[n] for n in names], True, tensors)
    keys = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    write(out_dir, "wdrnet_tiny_h", tensors, {"state_dict": json.dumps(keys, separators=(",", ":")),
                                             "torch": torch.__version__})

    bb = Backbone(cfg("darknet-tiny.cfg"))
    set_formula(bb)
    bb.train()
    taps, _ = bb(formula_input((2, 3, 64, 64)))
    tensors = []
    record(bb, ["s8", "s16"], [taps["s8"], taps["s16"]], True, tensors)
    write(out_dir, "tiny", tensors, {"torch": torch.__version__})

    bb = Backbone(cfg("darknet53.cfg"))
    set_formula(bb)
    bb.eval()
    with torch.no_grad():
        taps, _ = bb(formula_input((1, 3, 64, 64)))
    tensors = []
    record(bb, ["s8", "s16", "s32"], [taps["s8"], taps["s16"], taps["s32"]], False, tensors)
    write(out_dir, "darknet53", tensors, {"torch": torch.__version__})


if __name__ == "__main__":
    main()
