#!/usr/bin/python3
"""Reference values for PFKD region sampling / loss and the FKD baseline loss (src/pfkd.c), from
PyTorch 1.13 with torch.nn.functional.grid_sample as the sampler.

Region of a keypoint at input pixel (u, v) on a map of stride s (C, H, W): r x r samples at
feature coordinates x = u/s - 0.5 + a - (r-1)/2, y likewise (a, b = 0..r-1, sample t = b r + a),
i.e. grid_sample(align_corners=False, padding_mode='zeros') at g = (2 (x + 0.5)/W - 1, ...).
PFKD loss: sum_ij pi_ij mean((R_T(j) - R_S(i))^2); the gradient with respect to the student map
by autograd (positions are constants). FKD: spatial/channel attention (softmax of mean |F| over
channels / cells at temperature T, times H W / C), averaged over teacher and student, detached;
L = mean(M (F_S - F_T)^2).

Writes tests/data/pfkd/cases.json. Run from the repository root: /usr/bin/python3 scripts/ref_pfkd.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join("tests", "data", "pfkd", "cases.json")
torch.set_default_dtype(torch.float64)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def regions(feat, xy, stride, r):
    """feat (C, H, W) tensor, xy (n, 2) input pixels -> (C, n * r * r)."""
    C, H, W = feat.shape
    h = 0.5 * (r - 1)
    off = torch.arange(r, dtype=torch.float64) - h
    gy, gx = torch.meshgrid(off, off, indexing="ij")  # t = b r + a: rows b (y), columns a (x)
    x = xy[:, 0:1] / stride - 0.5 + gx.reshape(1, -1)
    y = xy[:, 1:2] / stride - 0.5 + gy.reshape(1, -1)
    grid = torch.stack([2 * (x + 0.5) / W - 1, 2 * (y + 0.5) / H - 1], -1).reshape(1, 1, -1, 2)
    out = F.grid_sample(feat[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(C, -1)


def pfkd_case(rng, c, hs, ws, ss, ht, wt, st, r, n, m):
    fs = f32(rng.normal(size=(c, hs, ws)))
    ft = f32(rng.normal(size=(c, ht, wt)))
    # points: inside, near and beyond the borders (regions partly outside read zero)
    xs = f32(np.stack([rng.uniform(-0.3, 1.2, n) * ws * ss, rng.uniform(-0.3, 1.2, n) * hs * ss], 1))
    xt = f32(np.stack([rng.uniform(-0.3, 1.2, m) * wt * st, rng.uniform(-0.3, 1.2, m) * ht * st], 1))
    plan = f32(rng.uniform(0, 1, (n, m)))
    fs_t = torch.tensor(fs, requires_grad=True)
    rs = regions(fs_t, torch.tensor(xs), ss, r)
    rt = regions(torch.tensor(ft), torch.tensor(xt), st, r)
    rr = r * r
    rs3 = rs.reshape(c, n, rr).permute(1, 0, 2).reshape(n, -1)
    rt3 = rt.reshape(c, m, rr).permute(1, 0, 2).reshape(m, -1)
    mse = ((rs3[:, None, :] - rt3[None, :, :]) ** 2).mean(-1)
    loss = (torch.tensor(plan) * mse).sum()
    loss.backward()
    return {
        "c": c, "r": r, "n": n, "m": m,
        "student": {"h": hs, "w": ws, "stride": ss, "feat": fs.ravel().tolist(), "xy": xs.ravel().tolist()},
        "teacher": {"h": ht, "w": wt, "stride": st, "feat": ft.ravel().tolist(), "xy": xt.ravel().tolist()},
        "plan": plan.ravel().tolist(),
        "rs": rs.detach().numpy().ravel().tolist(),
        "rt": rt.detach().numpy().ravel().tolist(),
        "loss": float(loss),
        "grad_fs": fs_t.grad.numpy().ravel().tolist(),
    }


def attention(f, temp):
    C, H, W = f.shape
    sp = H * W * torch.softmax(f.abs().mean(0).reshape(-1) / temp, 0).reshape(H, W)
    ch = C * torch.softmax(f.abs().mean((1, 2)) / temp, 0)
    return sp, ch


def fkd_case(rng, c, h, w, temp):
    ft = f32(rng.normal(size=(c, h, w)))
    fs = f32(rng.normal(size=(c, h, w)))
    fs_t = torch.tensor(fs, requires_grad=True)
    ft_t = torch.tensor(ft)
    with torch.no_grad():
        st, ct = attention(ft_t, temp)
        ss, cs = attention(fs_t, temp)
        mask = (0.5 * (ct + cs))[:, None, None] * (0.5 * (st + ss))[None]
    loss = (mask * (fs_t - ft_t) ** 2).mean()
    loss.backward()
    return {"c": c, "h": h, "w": w, "temp": temp, "ft": ft.ravel().tolist(), "fs": fs.ravel().tolist(),
            "loss": float(loss), "grad_fs": fs_t.grad.numpy().ravel().tolist()}


def main():
    rng = np.random.default_rng(7)
    cases = {
        "pfkd": [pfkd_case(rng, 3, 6, 7, 8, 4, 5, 16, 3, 3, 2),
                 pfkd_case(rng, 2, 5, 5, 8, 5, 5, 8, 5, 2, 3),
                 pfkd_case(rng, 2, 9, 8, 16, 3, 4, 32, 11, 1, 1)],
        "fkd": [fkd_case(rng, 4, 5, 6, 0.5), fkd_case(rng, 3, 4, 4, 1.0)],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(cases, fh)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
