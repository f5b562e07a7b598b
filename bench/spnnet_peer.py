#!/usr/bin/python3
"""PyTorch peer of bench/bench_spnnet.c: the SPNv2 network of scripts/ref_spnnet.py (SPNv2 class:
EfficientNet-B(phi) + BiFPN + heatmap head, batch norm). One training step = forward (training
BN), loss 0.5 * mean(y^2) on the heatmaps, backward, AdamW (lr 1e-3, wd 1e-4); or an inference
forward (eval mode, no grad). torch.set_num_threads(2).

usage: spnnet_peer.py PHI WIDTH HEIGHT STEPS train|infer
prints: peer_ms <median> <min> <steps>"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from ref_spnnet import SPNv2  # noqa: E402

torch.set_num_threads(2)


def main():
    phi, w, h, steps, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(0)
    net = SPNv2(phi)
    x = torch.randn(1, 3, h, w)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    times = []
    if mode == "infer":
        net.eval()
    for s in range(steps + 1):  # one warm-up step
        t0 = time.perf_counter()
        if mode == "train":
            opt.zero_grad()
            y = net(x)
            (0.5 * (y ** 2).mean()).backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)
        if s:
            times.append(time.perf_counter() - t0)
    print("peer_ms %.1f %.1f %d" % (1e3 * statistics.median(times), 1e3 * min(times), steps))


if __name__ == "__main__":
    main()
