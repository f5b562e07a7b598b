#!/usr/bin/python3
"""PyTorch reference for the SPNv2 heatmap mathematics (tests/test_spn.c compares against it).

Writes tests/data/spn/parity.json: a batch of 2 images with 3 keypoints on a 64x48 input (stride 4,
heatmaps 16x12, sigma 2, soft-argmax window radius 2), computed in float64:
  - Gaussian targets exp(-((c - x_hm)^2 + (r - y_hm)^2) / (2 sigma^2)), x_hm = (x_in + 0.5) / 4 - 0.5,
    with one keypoint outside the image and one marked invalid (all-zero maps, not visible);
  - predicted maps = targets + noise (float32), the loss sum (p - t)^2 over visible maps / nvis and its
    gradient (autograd);
  - decoded peaks per map in input pixels: plain soft-argmax, Gaussian-corrected soft-argmax (the
    centroid inverted by bisection, an algorithm independent of the C Newton iteration) and the
    log-domain quadratic fit (the three samples nearest the border when the argmax is on it);
  - the backward of the student local predictions (corrected soft-argmax, positions divided by
    (64, 48), confidence = argmax value) for random upstream gradients dpos, dconf: autograd
    through the window centroid, with the correction's derivative 1 / g'(d) taken by autograd of g.
Run: /usr/bin/python3 scripts/ref_spn.py   (from the repository root)
"""
import json
import math
import os

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20240917)

W, H, S, SIGMA, R = 64, 48, 4, 2.0, 2
HW, HH = W // S, H // S
N, K = 2, 3


def to_hm(x):
    return (x + 0.5) / S - 0.5


def to_in(x):
    return S * (x + 0.5) - 0.5


def targets(kp, valid):
    t = torch.zeros(N, K, HH, HW)
    vis = np.zeros((N, K), dtype=np.uint8)
    cols = torch.arange(HW, dtype=torch.float64)
    rows = torch.arange(HH, dtype=torch.float64)
    for n in range(N):
        for k in range(K):
            x, y = kp[n, k]
            if not (valid[n, k] and -0.5 <= x < W - 0.5 and -0.5 <= y < H - 0.5):
                continue
            vis[n, k] = 1
            cx, cy = to_hm(x), to_hm(y)
            t[n, k] = torch.exp(-((cols[None, :] - cx) ** 2 + (rows[:, None] - cy) ** 2) / (2 * SIGMA ** 2))
    return t, vis


def centroid_g(lo, hi, d):
    """Centroid of G(j - d) over j = lo..hi (torch, differentiable in d)."""
    j = torch.arange(lo, hi + 1, dtype=torch.float64)
    w = torch.exp(-(j - d) ** 2 / (2 * SIGMA ** 2))
    return (w * j).sum() / w.sum()


def invert(lo, hi, c):
    """d in [-1, 1] with g(d) = c, by bisection; clamped at the ends."""
    if lo == hi:
        return 0.0, True
    g = lambda d: float(centroid_g(lo, hi, torch.tensor(d)))
    if c <= g(-1.0):
        return -1.0, True
    if c >= g(1.0):
        return 1.0, True
    a, b = -1.0, 1.0
    for _ in range(200):
        m = 0.5 * (a + b)
        if g(m) < c:
            a = m
        else:
            b = m
    return 0.5 * (a + b), False


class Correct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c, lo, hi):
        d, clamped = invert(lo, hi, float(c))
        ctx.save_for_backward(torch.tensor(d))
        ctx.lo, ctx.hi, ctx.clamped = lo, hi, clamped
        return torch.tensor(d)

    @staticmethod
    def backward(ctx, grad):
        if ctx.clamped:
            return grad * 0, None, None
        (d,) = ctx.saved_tensors
        with torch.enable_grad():
            dd = d.clone().requires_grad_(True)
            (gp,) = torch.autograd.grad(centroid_g(ctx.lo, ctx.hi, dd), dd)
        return grad / gp, None, None


def soft_argmax(h, correct):
    """h: (HH, HW) tensor. Returns x_hm, y_hm (tensors), argmax (mx, my)."""
    flat = int(np.argmax(h.detach().numpy().astype(np.float32)))  # first maximum, row-major
    my, mx = divmod(flat, HW)
    x0, x1, y0, y1 = max(0, mx - R), min(HW - 1, mx + R), max(0, my - R), min(HH - 1, my + R)
    win = torch.clamp(h[y0:y1 + 1, x0:x1 + 1], min=0)
    ssum = win.sum()
    cols = torch.arange(x0, x1 + 1, dtype=torch.float64) - mx
    rows = torch.arange(y0, y1 + 1, dtype=torch.float64) - my
    cx = (win * cols[None, :]).sum() / ssum
    cy = (win * rows[:, None]).sum() / ssum
    if correct:
        cx = Correct.apply(cx, x0 - mx, x1 - mx)
        cy = Correct.apply(cy, y0 - my, y1 - my)
    return mx + cx, my + cy, mx, my


def quadratic(h):
    h = np.asarray(h, dtype=np.float64)
    flat = int(np.argmax(h.astype(np.float32)))
    my, mx = divmod(flat, HW)

    def vertex(a, b, c):
        if a > 0 and b > 0 and c > 0:
            a, b, c = math.log(a), math.log(b), math.log(c)
        den = a - 2 * b + c
        return None if den >= 0 else 0.5 * (a - c) / den

    def axis(v, m):  # nearest three samples at a border; offset from m clamped to [-1, 1]
        cm = min(max(m, 1), len(v) - 2)
        d = vertex(v[cm - 1], v[cm], v[cm + 1])
        return 0.0 if d is None else min(max(cm + d - m, -1.0), 1.0)

    return mx + axis(h[my, :], mx), my + axis(h[:, mx], my)


def main():
    kp = np.array([[[20.3, 17.9], [1.2, 30.6], [-3.0, 10.0]],
                   [[45.7, 3.4], [60.9, 44.1], [30.0, 20.0]]])
    valid = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.uint8)
    t, vis = targets(kp, valid)
    noise = rng.normal(0, 0.05, size=t.shape)
    pred = torch.tensor((t.numpy() + noise).astype(np.float32), dtype=torch.float64, requires_grad=True)
    v = torch.tensor(vis, dtype=torch.float64)[:, :, None, None]
    nvis = max(1, int(vis.sum()))
    loss = (((pred - t) ** 2) * v).sum() / nvis
    loss.backward()

    peaks = {"plain": [], "corrected": [], "quadratic": [], "conf": []}
    dpos = rng.normal(size=(N, K, 2))
    dconf = rng.normal(size=(N, K))
    hm = torch.tensor(pred.detach().numpy(), requires_grad=True)
    total = 0
    for n in range(N):
        for k in range(K):
            h = hm[n, k]
            x, y, mx, my = soft_argmax(h.detach(), False)
            peaks["plain"] += [to_in(float(x)), to_in(float(y))]
            x, y, mx, my = soft_argmax(h, True)
            peaks["corrected"] += [to_in(float(x)), to_in(float(y))]
            qx, qy = quadratic(h.detach().numpy())
            peaks["quadratic"] += [to_in(qx), to_in(qy)]
            peaks["conf"].append(float(h[my, mx]))
            total = total + dpos[n, k, 0] * to_in(x) / W + dpos[n, k, 1] * to_in(y) / H + dconf[n, k] * h[my, mx]
    total.backward()

    flat = lambda a: [float(f"{float(x):.9g}") for x in np.asarray(a).ravel()]
    out = {
        "in_w": W, "in_h": H, "stride": S, "sigma": SIGMA, "window": R, "n": N, "k": K,
        "kp": flat(kp), "valid": [int(x) for x in valid.ravel()], "vis": [int(x) for x in vis.ravel()],
        "targets": flat(t.numpy()), "pred": flat(pred.detach().numpy()),
        "loss": float(loss), "dpred": flat(pred.grad.numpy()),
        "plain": flat(peaks["plain"]), "corrected": flat(peaks["corrected"]),
        "quadratic": flat(peaks["quadratic"]), "conf": flat(peaks["conf"]),
        "dpos": flat(dpos), "dconf": flat(dconf), "dhm": flat(hm.grad.numpy()),
    }
    os.makedirs("tests/data/spn", exist_ok=True)
    with open("tests/data/spn/parity.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote tests/data/spn/parity.json: loss %.9g, nvis %d" % (float(loss), nvis))


if __name__ == "__main__":
    main()
