#!/usr/bin/python3
"""PyTorch reference for the WDRNet losses and decoding (tests/test_wdr.c compares against it).

Writes tests/data/wdr/parity.json: a batch of 2 images, 2 classes, 2 FPN levels (strides 8, 16;
anchors 32, 64) on a 64x48 input, fixed targets (labels with positive and ignored cells), random
logit and offset maps (float32), the crop K, camera-frame box corners and diameters; then, computed
in float64 with autograd:
  - focal loss (alpha 0.25, gamma 2) over non-ignored cells / max(1, npos), its gradient;
  - ray-distance Huber pose loss (delta 0.02, diameter-normalised, mean over 24 numbers per cell,
    sum over positive cells / N images), its gradient;
  - total = 0.1 cls + 1.0 pose and the gradients of total w.r.t. both maps;
  - the inference decoding (threshold 0.1, quotas from the best cell's box) for every image/class;
  - teacher cells of a 3-member ensemble (mean sigmoid map, mean corners) for image 0.
Run: /usr/bin/python3 scripts/ref_wdr.py   (from the repository root)
"""
import json
import math
import os

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20240611)

W, H = 64, 48
STRIDES = [8, 16]
ANCHORS = [32.0, 64.0]
GRIDS = [(math.ceil(W / s), math.ceil(H / s)) for s in STRIDES]  # (gw, gh)
N, C = 2, 2
ALPHA, GAMMA, DELTA, W_CLS, W_POSE, THRESH, QUOTA = 0.25, 2.0, 0.02, 0.1, 1.0, 0.1, 10


def f32(a):
    return np.asarray(a, dtype=np.float32)


def centre(level, col, row):
    s = STRIDES[level]
    return col * s + s / 2, row * s + s / 2


def box_corners(bmin, bmax):
    return np.array([[(bmax if k & 4 else bmin)[0], (bmax if k & 2 else bmin)[1], (bmax if k & 1 else bmin)[2]]
                     for k in range(8)])


def random_rotation():
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def quotas(size):
    g = [math.exp(-math.log2(size / a) ** 2) for a in ANCHORS]
    return [int(math.floor(QUOTA * gl / sum(g) + 0.5)) for gl in g]


def box_size(c):
    c = np.asarray(c).reshape(8, 2)
    return max(c[:, 0].max() - c[:, 0].min(), c[:, 1].max() - c[:, 1].min()) + 1


def decode_corners(offsets, level, image, cls, col, row):
    cx, cy = centre(level, col, row)
    o = offsets[level][image, 16 * cls:16 * cls + 16, row, col].astype(np.float64)
    return [v for k in range(8) for v in (cx + ANCHORS[level] * o[k], cy + ANCHORS[level] * o[8 + k])]


def select(conf, corners_of):
    """The inference rule on per-level confidence maps conf[l] (gh, gw)."""
    best, arg = THRESH, None
    for l, c in enumerate(conf):
        for row in range(c.shape[0]):
            for col in range(c.shape[1]):
                if c[row, col] > best:
                    best, arg = c[row, col], (l, col, row)
    if arg is None:
        return []
    q = quotas(box_size(corners_of(*arg)))
    out = []
    for l, c in enumerate(conf):
        flat = c.reshape(-1)
        order = sorted([i for i in range(flat.size) if flat[i] > THRESH], key=lambda i: (-flat[i], i))
        for i in order[:q[l]]:
            col, row = i % c.shape[1], i // c.shape[1]
            out.append({"level": l, "col": col, "row": row, "conf": float(flat[i]),
                        "corners": [float(v) for v in corners_of(l, col, row)]})
    return out


def main():
    K = np.array([[120.0, 0, 31.5], [0, 118.0, 23.0], [0, 0, 1]])
    bmin, bmax = np.array([-0.03, -0.04, -0.02]), np.array([0.03, 0.04, 0.02])
    diameter = float(np.linalg.norm(bmax - bmin))
    objects = []
    for i in range(N):
        R = random_rotation()
        t = np.array([0.004 * (i - 0.5), -0.003, 0.45 + 0.1 * i])
        X = box_corners(bmin, bmax) @ R.T + t
        p = X @ K.T
        uv = p[:, :2] / p[:, 2:]
        objects.append({"cls": i % C, "K": K.reshape(-1).tolist(), "corners_cam": X.reshape(-1).tolist(),
                        "corners2d": uv.reshape(-1).tolist(), "diameter": diameter})

    labels = [np.zeros((N, C, gh, gw), np.int8) for gw, gh in GRIDS]
    positives = []
    for i, o in enumerate(objects):
        for l, (gw, gh) in enumerate(GRIDS):
            cells = rng.permutation(gw * gh)[:[4, 2][l] + 3]
            for j, cell in enumerate(cells):
                col, row = int(cell % gw), int(cell // gw)
                if j < [4, 2][l]:
                    labels[l][i, o["cls"], row, col] = 1
                    positives.append([i, l, col, row])
                else:
                    labels[l][i, o["cls"], row, col] = -1
    positives.sort(key=lambda p: (p[0], p[1]))

    logits = [f32(rng.normal(-3.0, 1.5, size=(N, C, gh, gw))) for gw, gh in GRIDS]
    offsets = [f32(rng.normal(0, 0.3, size=(N, 16 * C, gh, gw))) for gw, gh in GRIDS]
    for i, l, col, row in positives:  # near the truth: both Huber branches occur
        o = objects[i]
        cx, cy = centre(l, col, row)
        uv = np.array(o["corners2d"]).reshape(8, 2)
        tgt = np.concatenate([(uv[:, 0] - cx) / ANCHORS[l], (uv[:, 1] - cy) / ANCHORS[l]])
        noise = rng.normal(0, [0.004, 0.1][i], size=16)
        offsets[l][i, 16 * o["cls"]:16 * o["cls"] + 16, row, col] = f32(tgt + noise)

    # losses in float64 with autograd
    xl = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in logits]
    xo = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in offsets]
    npos = len(positives)
    cls_sum = 0
    for l in range(len(GRIDS)):
        y = torch.tensor(labels[l].astype(np.float64))
        keep = (y >= 0).double()
        p = torch.sigmoid(xl[l])
        lpos = -ALPHA * (1 - p) ** GAMMA * torch.nn.functional.logsigmoid(xl[l])
        lneg = -(1 - ALPHA) * p ** GAMMA * torch.nn.functional.logsigmoid(-xl[l])
        cls_sum = cls_sum + (keep * torch.where(y == 1, lpos, lneg)).sum()
    pose_sum = 0
    for i, l, col, row in positives:
        o = objects[i]
        c = o["cls"]
        cx, cy = centre(l, col, row)
        off = xo[l][i, 16 * c:16 * c + 16, row, col]
        u, v = cx + ANCHORS[l] * off[:8], cy + ANCHORS[l] * off[8:]
        Kinv = torch.linalg.inv(torch.tensor(o["K"]).reshape(3, 3))
        d = torch.stack([u, v, torch.ones(8)], 1) @ Kinv.T
        r = d / d.norm(dim=1, keepdim=True)
        X = torch.tensor(o["corners_cam"]).reshape(8, 3)
        e = (X - (X * r).sum(1, keepdim=True) * r) / o["diameter"]
        pose_sum = pose_sum + torch.nn.functional.smooth_l1_loss(e, torch.zeros_like(e), beta=DELTA,
                                                                 reduction="mean")
    cls = cls_sum / max(1, npos)
    pose = pose_sum / N
    total = W_CLS * cls + W_POSE * pose
    total.backward()

    decoded = []
    for i in range(N):
        for c in range(C):
            conf = [1 / (1 + np.exp(-logits[l][i, c].astype(np.float64))) for l in range(len(GRIDS))]
            cells = select(conf, lambda l, col, row: decode_corners(offsets, l, i, c, col, row))
            decoded.append({"image": i, "cls": c, "cells": cells})

    # ensemble of 3 members (1 image, class 1): teacher cells
    E = 3
    members = [{"logits": [f32(logits[l][:1] + rng.normal(0, 0.5, size=logits[l][:1].shape)) for l in range(2)],
                "offsets": [f32(offsets[l][:1] + rng.normal(0, 0.02, size=offsets[l][:1].shape)) for l in range(2)]}
               for _ in range(E)]
    mconf = [np.mean([1 / (1 + np.exp(-m["logits"][l][0, 1].astype(np.float64))) for m in members], axis=0)
             for l in range(2)]

    def mean_corners(l, col, row):
        return list(np.mean([decode_corners(m["offsets"], l, 0, 1, col, row) for m in members], axis=0))

    teacher = select(mconf, mean_corners)
    for cell in teacher:
        cell["members"] = [[float(v) for v in decode_corners(m["offsets"], cell["level"], 0, 1, cell["col"],
                                                             cell["row"])] for m in members]

    def flat(a):  # float32 arrays in their shortest float32 repr (exact after the C cast to float)
        a = np.asarray(a)
        if a.dtype == np.float32:
            return [float(str(v)) for v in a.reshape(-1)]
        return [float(v) for v in a.reshape(-1)]

    out = {
        "in_w": W, "in_h": H, "levels": len(GRIDS), "grids": GRIDS, "n": N, "c": C,
        "objects": objects, "positives": positives,
        "labels": [[int(v) for v in a.reshape(-1)] for a in labels],
        "logits": [flat(a) for a in logits], "offsets": [flat(a) for a in offsets],
        "loss_cls": cls.item(), "loss_pose": pose.item(), "loss_total": total.item(),
        "loss_cls_sum": cls_sum.item(), "loss_pose_sum": pose_sum.item(),
        "grad_logits": [flat(x.grad.numpy()) for x in xl], "grad_offsets": [flat(x.grad.numpy()) for x in xo],
        "decoded": decoded,
        "ensemble": {"E": E, "image": 0, "cls": 0,  # class 1 of the batch, exported as the only class
                     "logits": [[flat(m["logits"][l][:, 1]) for l in range(2)] for m in members],
                     "offsets": [[flat(m["offsets"][l][:, 16:32]) for l in range(2)] for m in members],
                     "conf": [flat(a) for a in mconf], "cells": teacher},
    }
    os.makedirs("tests/data/wdr", exist_ok=True)
    with open("tests/data/wdr/parity.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote tests/data/wdr/parity.json: cls %.6g pose %.6g total %.6g, %d positives, decoded %s, teacher %d"
          % (cls.item(), pose.item(), total.item(), npos, [len(d["cells"]) for d in decoded], len(teacher)))


if __name__ == "__main__":
    main()
