#!/usr/bin/python3
"""PyTorch twins of the SPNv2 pieces built in tests/test_spnnet.c (uakd/spnnet.h).

Cases (one safetensors file each under tests/data/spnnet/):
  mbconv  two MBConv blocks with squeeze-and-excitation: (expand 1, k 3, stride 1, 8 -> 8, with
          the residual) then (expand 6, k 5, stride 2, 8 -> 16); batch norm eps 1e-3 momentum 0.01
          (torchvision's B5+ setting, so the non-default path is exercised); input 2x8x16x16.
  bifpn   the first BiFPN layer (1x1 down-channels, P6/P7 by conv + max-pools, both paths) on
          backbone-like P2..P5 (4/8/12/16 channels at 32/16/8/4 px), then a second layer; width
          8, batch norm eps 1e-4 momentum 0.01; fusion weights random, one negative (ReLU at 0).
  head_bn the heatmap head (depth 2, 16 -> 32 channels, 5 maps) with batch norm eps 1e-4 m 0.003
  head_gn the same with group norm (groups of 16 channels, eps 1e-4); input 2x16x12x10.
Each file holds, float32: in:<input> (network inputs), param:<state_dict key> (every parameter and
BN buffer before the step), out:<output> (training-mode forward), written in the order: inputs,
params, then per output "out:"; the projection r_i = sin(0.7 i + 0.3 s) of output o uses s = the
number of tensors written before out:o (so the C side recomputes it from the file's order),
grad:<param> (d sum_o sum(out_o * r_o) / d param) and after:<buffer> (BN running stats after the
forward). Single thread, seed 2024.
full.safetensors: the whole network at a reduced size in eval mode (see full_model).
counts.json: parameter counts (backbone, BiFPN, head) and P1..P5 channels of the full-size
phi 0, 3, 6 models built from these modules.

Run: /usr/bin/python3 scripts/ref_spnnet.py
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_safetensors import dump  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "spnnet")


def bn(c, eps, mom):
    return nn.BatchNorm2d(c, eps=eps, momentum=mom)


class SE(nn.Module):
    def __init__(self, c, c_sq):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c_sq, 1)
        self.fc2 = nn.Conv2d(c_sq, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(s))))


class MBConv(nn.Module):
    """torchvision layout: block = [expand conv-bn-silu], dw conv-bn-silu, SE, project conv-bn"""

    def __init__(self, cin, expand, k, stride, cout, eps, mom):
        super().__init__()
        mid = cin * expand
        layers = []
        if expand != 1:
            layers.append(nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), bn(mid, eps, mom), nn.SiLU()))
        layers.append(nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), bn(mid, eps, mom),
                                    nn.SiLU()))
        layers.append(SE(mid, max(1, cin // 4)))
        layers.append(nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), bn(cout, eps, mom)))
        self.block = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.res else y


def norm(c, gs, eps, mom):
    return nn.GroupNorm(c // gs, c, eps=eps) if gs else bn(c, eps, mom)


class SepConv(nn.Module):
    """depthwise 3x3 (no bias) + pointwise 1x1 (bias) + optional norm"""

    def __init__(self, cin, cout, bias, nrm=None):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=bias)
        if nrm is not None:
            self.bn = nrm

    def forward(self, x):
        x = self.conv_pw(self.conv_dw(x))
        return self.bn(x) if hasattr(self, "bn") else x


class SepBlock(nn.Module):
    def __init__(self, c, eps, mom):
        super().__init__()
        self.conv = SepConv(c, c, True, bn(c, eps, mom))

    def forward(self, x):
        return self.conv(x)


class ConvNorm(nn.Module):
    def __init__(self, cin, cout, eps, mom):
        super().__init__()
        self.conv = nn.Sequential()
        self.conv.add_module("conv", nn.Conv2d(cin, cout, 1))
        self.conv.add_module("bn", bn(cout, eps, mom))

    def forward(self, x):
        return self.conv(x)


def fuse(w, xs):
    a = F.relu(w)
    a = a / (a.sum() + 1e-4)
    return sum(a[i] * x for i, x in enumerate(xs))


class BiFPNLayer(nn.Module):
    """EfficientDet BiFPN layer over P2..P7 (SPNv2's P2 extension)."""

    def __init__(self, chans, width, first, eps, mom):
        super().__init__()
        self.first = first
        for n in ["conv6_up", "conv5_up", "conv4_up", "conv3_up", "conv2_up", "conv3_down", "conv4_down",
                  "conv5_down", "conv6_down", "conv7_down"]:
            setattr(self, n, SepBlock(width, eps, mom))
        if first:
            self.p5_to_p6 = nn.Sequential(ConvNorm(chans[3], width, eps, mom), nn.MaxPool2d(3, 2, 1))
            self.p2_down_channel = ConvNorm(chans[0], width, eps, mom)
            self.p3_down_channel = ConvNorm(chans[1], width, eps, mom)
            self.p4_down_channel = ConvNorm(chans[2], width, eps, mom)
            self.p5_down_channel = ConvNorm(chans[3], width, eps, mom)
            self.p3_down_channel_2 = ConvNorm(chans[1], width, eps, mom)
            self.p4_down_channel_2 = ConvNorm(chans[2], width, eps, mom)
            self.p5_down_channel_2 = ConvNorm(chans[3], width, eps, mom)
        for n, k in [("p6_w1", 2), ("p5_w1", 2), ("p4_w1", 2), ("p3_w1", 2), ("p2_w1", 2), ("p3_w2", 3), ("p4_w2", 3),
                     ("p5_w2", 3), ("p6_w2", 3), ("p7_w2", 2)]:
            setattr(self, n, nn.Parameter(torch.ones(k)))

    def forward(self, xs):
        up = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")  # noqa: E731
        down = lambda x: F.max_pool2d(x, 3, 2, 1)  # noqa: E731
        if self.first:
            p2, p3, p4, p5 = xs
            p6_in = self.p5_to_p6(p5)
            p7_in = down(p6_in)
            p2_in, p3_in = self.p2_down_channel(p2), self.p3_down_channel(p3)
            p4_in, p5_in = self.p4_down_channel(p4), self.p5_down_channel(p5)
        else:
            p2_in, p3_in, p4_in, p5_in, p6_in, p7_in = xs
        node = lambda conv, w, ins: conv(F.silu(fuse(w, ins)))  # noqa: E731
        p6_up = node(self.conv6_up, self.p6_w1, [p6_in, up(p7_in)])
        p5_up = node(self.conv5_up, self.p5_w1, [p5_in, up(p6_up)])
        p4_up = node(self.conv4_up, self.p4_w1, [p4_in, up(p5_up)])
        p3_up = node(self.conv3_up, self.p3_w1, [p3_in, up(p4_up)])
        p2_out = node(self.conv2_up, self.p2_w1, [p2_in, up(p3_up)])
        if self.first:
            p3_in, p4_in, p5_in = self.p3_down_channel_2(p3), self.p4_down_channel_2(p4), self.p5_down_channel_2(p5)
        p3_out = node(self.conv3_down, self.p3_w2, [p3_in, p3_up, down(p2_out)])
        p4_out = node(self.conv4_down, self.p4_w2, [p4_in, p4_up, down(p3_out)])
        p5_out = node(self.conv5_down, self.p5_w2, [p5_in, p5_up, down(p4_out)])
        p6_out = node(self.conv6_down, self.p6_w2, [p6_in, p6_up, down(p5_out)])
        p7_out = node(self.conv7_down, self.p7_w2, [p7_in, down(p6_out)])
        return [p2_out, p3_out, p4_out, p5_out, p6_out, p7_out]


class Head(nn.Module):
    def __init__(self, c, depth, k, gs, eps, mom):
        super().__init__()
        mid = min(2 * c, 256)
        self.convs = nn.ModuleList([SepConv(c if i == 0 else mid, mid, False) for i in range(depth)])
        self.bns = nn.ModuleList([norm(mid, gs, eps, mom) for _ in range(depth)])
        self.head = SepConv(mid, k, True)

    def forward(self, x):
        for conv, b in zip(self.convs, self.bns):
            x = F.silu(b(conv(x)))
        return self.head(x)


class Wrap(nn.Module):
    def __init__(self, prefix, mod):
        super().__init__()
        self.add_module(prefix, mod)


def randomise(model, g):
    """Non-trivial parameters: norm affines around 1/0, positive running variances, fusion
    weights in [0.2, 1.5] with one negative entry per fusion vector of 3."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_w1") or name.endswith("_w2"):
                p.copy_(torch.rand(p.shape, generator=g) * 1.3 + 0.2)
                if p.numel() == 3 and name.endswith("p4_w2"):
                    p[1] = -0.3
            elif ".bn" in name or "bns." in name or (name.split(".")[-2] == "1" and "block" in name):
                p.copy_((1.0 + 0.3 * torch.randn(p.shape, generator=g)) if name.endswith("weight")
                        else 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(p * (1.0 + 0.2 * torch.randn(p.shape, generator=g)))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def projection(n, salt):
    """r_i = sin(0.7 i + 0.3 salt), float32 (the C test computes the same; salt = its index)."""
    return torch.sin(0.7 * torch.arange(n, dtype=torch.float64) + 0.3 * salt).float()


def run_case(fname, model, inputs, g):
    """inputs: list of (name, tensor); model(*tensors) returns a list of (name, output)."""
    randomise(model, g)
    tensors = [("in:" + n, t) for n, t in inputs]
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    tensors += [("param:" + k, v) for k, v in state.items()]
    model.train()
    outs = model(*[t for _, t in inputs])
    loss = 0
    for name, o in outs:
        r = projection(o.numel(), len(tensors)).reshape(o.shape)
        tensors.append(("out:" + name, o.detach().clone()))
        loss = loss + (o * r).sum()
    loss.backward()
    tensors += [("grad:" + k, p.grad.clone()) for k, p in model.named_parameters()]
    tensors += [("after:" + k, v.clone()) for k, v in model.state_dict().items()
                if k.endswith("running_mean") or k.endswith("running_var")]
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(dump(tensors, {"generator": "scripts/ref_spnnet.py"}))
    print(fname, len(tensors), "tensors")


def make_divisible(v):
    r = max(8, int(v + 4) // 8 * 8)
    return r + 8 if r < 0.9 * v else r


PHI = {0: (1.0, 1.0, 64, 3, 3), 3: (1.2, 1.4, 160, 6, 4), 6: (1.8, 2.6, 384, 8, 5)}
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
          (6, 3, 1, 320, 1)]


class SPNv2(nn.Module):
    """Backbone + BiFPN + heatmap head of phi (batch norm throughout; group norm has the same
    parameter count). forward(image) -> raw heatmaps (N, 11, H/4, W/4)."""

    def __init__(self, phi, reduced=None):
        """reduced: (width_mult, depth_mult, bifpn_width, bifpn_layers, head_depth) instead of phi's."""
        super().__init__()
        wm, dm, width, layers, depth = reduced if reduced else PHI[phi]
        c = make_divisible(32 * wm)
        mods = [nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.SiLU())]
        self.chans = []
        for e, k, s, co, n in STAGES:
            co = make_divisible(co * wm)
            blocks = []
            for i in range(int(math.ceil(n * dm))):
                blocks.append(MBConv(c, e, k, s if i == 0 else 1, co, 1e-5, 0.1))
                c = co
            mods.append(nn.Sequential(*blocks))
            self.chans.append(co)
        self.efficientnet = nn.Sequential(*mods)
        taps = [self.chans[1], self.chans[2], self.chans[4], self.chans[6]]
        self.bifpn = nn.Sequential(*[BiFPNLayer(taps, width, i == 0, 1e-4, 0.01) for i in range(layers)])
        self.heatmap = Head(width, depth, 11, 0, 1e-4, 0.003)

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.efficientnet):
            x = m(x)
            if i in (2, 3, 5, 7):
                feats.append(x)
        return self.heatmap(self.bifpn(feats)[0])


def counts():
    """Trainable parameter counts of the full-size models from these PyTorch modules: backbone
    (stem + 7 stages; torchvision's efficientnet_b0/b3/b6 totals 5,288,548 / 12,233,232 /
    43,040,704 minus classifier and 1x1 head conv + norm), BiFPN, head; the P1..P5 channels."""
    res = {}
    nparam = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    for phi in PHI:
        m = SPNv2(phi)
        ch = m.chans
        res["phi%d" % phi] = {"backbone": nparam(m.efficientnet), "bifpn": nparam(m.bifpn), "head": nparam(m.heatmap),
                              "channels": [ch[0], ch[1], ch[2], ch[4], ch[6]]}
    with open(os.path.join(OUT, "counts.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(res)


REDUCED = (0.25, 0.34, 16, 2, 2)  # width, depth multipliers, BiFPN 16 x 2, head depth 2


def formula_value(name, i, ndim, fan_in):
    """Deterministic parameter values shared with tests/test_spnnet.c: v = sin(0.37 i + 0.01 s),
    s = the sum of the name's bytes; conv weights v sqrt(2 / fan_in), biases 0.1 v, norm weights
    1 + 0.2 v, running means 0.1 v, running variances 1 + 0.25 v, fusion weights 1 + 0.5 v."""
    v = math.sin(0.37 * i + 0.01 * sum(name.encode()))
    if ndim == 4:
        return v * math.sqrt(2.0 / fan_in)
    if name.endswith("running_var"):
        return 1 + 0.25 * v
    if name.endswith("running_mean") or name.endswith("bias"):
        return 0.1 * v
    if name.endswith("weight"):
        return 1 + 0.2 * v
    return 1 + 0.5 * v


def full_model():
    """The whole network at a reduced size (REDUCED, 11 maps, 128x128, batch 2) in eval mode with
    formula parameters and input x_i = sin(0.37 i): the heatmaps, the L2 norm of every parameter
    gradient of sum(heatmap * r) (r_i = sin(0.7 i)) and the full gradients of the stem conv and of
    every fusion weight vector."""
    m = SPNv2(0, REDUCED)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            fan_in = t[0].numel() if t.dim() == 4 else 1
            flat = [formula_value(name, i, t.dim(), fan_in) for i in range(t.numel())]
            t.copy_(torch.tensor(flat, dtype=torch.float64).reshape(t.shape).float())
    m.eval()
    n = 2 * 3 * 128 * 128
    x = torch.sin(0.37 * torch.arange(n, dtype=torch.float64)).float().reshape(2, 3, 128, 128)
    y = m(x)
    r = torch.sin(0.7 * torch.arange(y.numel(), dtype=torch.float64)).float().reshape(y.shape)
    (y * r).sum().backward()
    tensors = [("out:heatmap", y.detach().clone())]
    for name, p in m.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)  # the last layer's P3..P7 nodes feed nothing
        tensors.append(("gradnorm:" + name, g.double().norm().float().reshape(1)))
        if name == "efficientnet.0.0.weight" or name.endswith("_w1") or name.endswith("_w2"):
            tensors.append(("grad:" + name, g.clone()))
    with open(os.path.join(OUT, "full.safetensors"), "wb") as f:
        f.write(dump(tensors, {"generator": "scripts/ref_spnnet.py"}))
    print("full.safetensors", len(tensors), "tensors,", sum(p.numel() for p in m.parameters()), "parameters")


def main():
    torch.set_num_threads(1)
    torch.manual_seed(2024)
    g = torch.Generator().manual_seed(2024)
    os.makedirs(OUT, exist_ok=True)

    class MB(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = MBConv(8, 1, 3, 1, 8, 1e-3, 0.01)
            self.b = MBConv(8, 6, 5, 2, 16, 1e-3, 0.01)

        def forward(self, x):
            return [("y", self.b(self.a(x)))]

    run_case("mbconv.safetensors", MB(), [("x", torch.randn(2, 8, 16, 16, generator=g))], g)

    chans = [4, 8, 12, 16]

    class FPN(nn.Module):
        def __init__(self):
            super().__init__()
            self.bifpn = nn.ModuleList([BiFPNLayer(chans, 8, True, 1e-4, 0.01), BiFPNLayer(chans, 8, False, 1e-4, 0.01)])

        def forward(self, p2, p3, p4, p5):
            f = self.bifpn[1](self.bifpn[0]([p2, p3, p4, p5]))
            return [("p%d" % (i + 2), t) for i, t in enumerate(f)]

    ins = [("p%d" % (i + 2), torch.randn(2, c, 32 >> i, 32 >> i, generator=g)) for i, c in enumerate(chans)]
    run_case("bifpn.safetensors", FPN(), ins, g)

    for tag, gs, mom in [("bn", 0, 0.003), ("gn", 16, 0.1)]:
        class H(nn.Module):
            def __init__(self):
                super().__init__()
                self.heatmap = Head(16, 2, 5, gs, 1e-4, mom)

            def forward(self, x):
                return [("heatmap", self.heatmap(x))]

        run_case("head_%s.safetensors" % tag, H(), [("x", torch.randn(2, 16, 12, 10, generator=g))], g)
    counts()
    full_model()


if __name__ == "__main__":
    main()
