#!/usr/bin/python3
"""PyTorch twin of the network built in tests/test_torch_parity.c.

Writes, for a fixed seed, float32 on one thread: the input image and sampling points, every
state_dict entry, the outputs, the loss and every parameter gradient (and the points' gradient)
of the first step, the losses of 5 AdamW steps (lr 1e-3, weight decay 1e-4 on conv weights only)
and the parameters and BN running statistics after them.

Output: <dir>/index.json (name, shape, offset, count per tensor; the losses) and <dir>/tensors.bin
(little-endian float32, tensors back to back). Usage: /usr/bin/python3 scripts/ref_torch_parity.py [dir]
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1234)

N, K = 2, 5


class CBL(nn.Module):
    """conv (no bias) + batch norm + leaky ReLU(0.1)"""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = CBL(3, 8, 3)
        self.b1 = CBL(8, 16, 3)
        self.b2 = CBL(16, 16, 1)
        self.dw = nn.Module()
        self.dw.conv = nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=True)
        self.neck = nn.Module()
        self.neck.conv = nn.Conv2d(32, 16, 3, 1, 1, bias=False)
        self.neck.gn = nn.GroupNorm(4, 16)
        self.se = nn.Module()
        self.se.reduce = nn.Conv2d(16, 4, 1)
        self.se.expand = nn.Conv2d(4, 16, 1)
        self.head = nn.Module()
        self.head.conv = nn.Conv2d(16, 3, 1)
        self.head.scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, x, pts):
        s = self.stem(x)                                   # 8x32x32
        b1 = self.b1(F.max_pool2d(s, 2, 2))                # 16x16x16
        b2 = self.b2(F.max_pool2d(b1, 3, 2, 1))            # 16x8x8
        r = b2 + F.silu(self.dw.conv(b2))                  # 16x8x8
        u = F.interpolate(r, scale_factor=2, mode="nearest")
        c = torch.cat([u, b1], 1)                          # 32x16x16
        f = F.relu(self.neck.gn(self.neck.conv(c)))        # 16x16x16
        g = torch.sigmoid(self.se.expand(F.silu(self.se.reduce(f.mean((2, 3), keepdim=True)))))
        f = f * g
        heat = torch.sigmoid(self.head.scale * self.head.conv(f))  # 3x16x16
        H, W = f.shape[2], f.shape[3]
        grid = torch.stack([(2 * pts[..., 0] + 1) / W - 1, (2 * pts[..., 1] + 1) / H - 1], -1)
        samp = F.grid_sample(f, grid.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False)
        return heat, samp.squeeze(2)  # (N,3,16,16), (N,16,K)


def loss_fn(heat, samp):
    return ((heat - 0.5) ** 2).mean() + 0.1 * (samp ** 2).mean()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                                  "torch_parity")
    os.makedirs(out_dir, exist_ok=True)
    net = Net()
    x = torch.randn(N, 3, 32, 32)
    pts = (torch.rand(N, K, 2) * 18 - 1.5).requires_grad_(True)  # some outside the 16x16 map
    tensors = []

    def add(name, t):
        tensors.append((name, t.detach().float().contiguous().numpy().copy()))

    add("input.x", x)
    add("input.pts", pts)
    for k, v in net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            add("param." + k, v)
    decay = [p for p in net.parameters() if p.dim() == 4]
    no_decay = [p for p in net.parameters() if p.dim() != 4]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3)
    losses = []
    for step in range(5):
        opt.zero_grad()
        if pts.grad is not None:
            pts.grad = None
        heat, samp = net(x, pts)
        loss = loss_fn(heat, samp)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            add("out.heat", heat)
            add("out.samp", samp)
            for k, p in net.named_parameters():
                add("grad." + k, p.grad)
            add("grad.pts", pts.grad)
        opt.step()
    for k, v in net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            add("final." + k, v)
    index, blob, off = [], [], 0
    for name, a in tensors:
        index.append({"name": name, "shape": list(a.shape), "offset": off, "count": int(a.size)})
        blob.append(a.astype("<f4").tobytes())
        off += int(a.size)
    with open(os.path.join(out_dir, "tensors.bin"), "wb") as f:
        f.write(b"".join(blob))
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump({"torch": torch.__version__, "losses": losses, "tensors": index}, f, indent=1)
    print("wrote %d tensors (%d floats), losses %s to %s" % (len(index), off, losses, out_dir))


if __name__ == "__main__":
    main()
