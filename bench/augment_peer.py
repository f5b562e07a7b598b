#!/usr/bin/python3
"""Peer of bench_augment.c: the same training sample with OpenCV + NumPy (PNG decode, one affine
warp with bilinear interpolation to 256x256, brightness, contrast, Gaussian blur, noise, ImageNet
normalisation to CHW float32). Prints the median seconds per sample."""
import glob
import sys
import time

import cv2
import numpy as np

cv2.setNumThreads(1)
root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lmo"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
paths = sorted(glob.glob(root + "/test/000002/rgb/*.png"))
rng = np.random.default_rng(0)
mean = np.array([0.485, 0.456, 0.406], np.float32)
std = np.array([0.229, 0.224, 0.225], np.float32)
times = []
for i in range(reps):
    t0 = time.perf_counter()
    img = cv2.cvtColor(cv2.imread(paths[i % len(paths)], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    s = 256 / 150.0 * rng.uniform(0.95, 1.05)
    a = rng.uniform(-10, 10)
    A = cv2.getRotationMatrix2D((320.0, 240.0), a, s)
    A[:, 2] += (127.5 - 320.0, 127.5 - 240.0)
    x = cv2.warpAffine(img, A, (256, 256), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    x += rng.uniform(-0.2, 0.2)
    m = x.mean()
    x = m + (x - m) * rng.uniform(0.8, 1.2)
    x = cv2.GaussianBlur(x, (0, 0), 0.8)
    x += rng.normal(0, 0.02, x.shape).astype(np.float32)
    x = np.clip(x, 0, 1)
    out = np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1))
    times.append(time.perf_counter() - t0)
print("%.9f" % float(np.median(times)))
