#!/usr/bin/python3
"""PyTorch peer of bench/bench_train.c: the same conv-BN-leaky networks (DarkNet-Tiny-like student,
DarkNet-53-like teacher), one training step = forward, loss 0.5 * mean(y^2) on the last map,
backward, AdamW (lr 1e-3, wd 1e-4); or an inference forward. torch.set_num_threads(2).

usage: train_peer.py tiny|d53 SIZE BATCH train|infer
Prints "ready", then for every line "step" on stdin runs one step and prints "ms <milliseconds>"
(the benchmark alternates its own steps with these); stops at "quit" or end of input."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)

TINY = [[16], [32], [16, 128, 16, 128], [32, 256, 32, 256], [64, 512, 64, 512, 128]]


class CBL(nn.Module):
    def __init__(self, cin, cout, k, s=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.1)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for si, stage in enumerate(TINY):
            for ui, c in enumerate(stage):
                k = 3 if len(stage) == 1 or ui % 2 == 1 else 1
                layers.append(CBL(cin, c, k))
                cin = c
            if si < 4:
                layers.append(nn.MaxPool2d(2, 2))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = CBL(c, c // 2, 1)
        self.conv2 = CBL(c // 2, c, 3)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))


class D53(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [CBL(3, 32, 3)], 32
        for c, n in zip([64, 128, 256, 512, 1024], [1, 2, 8, 8, 4]):
            layers.append(CBL(cin, c, 3, 2))
            layers += [Res(c) for _ in range(n)]
            cin = c
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def main():
    name, size, batch, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    net = Tiny() if name == "tiny" else D53()
    x = torch.randn(batch, 3, size, size)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    if mode == "infer":
        net.eval()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t0 = time.perf_counter()
        if mode == "train":
            opt.zero_grad()
            y = net(x)
            loss = 0.5 * (y ** 2).mean()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)
        print("ms %.3f" % (1e3 * (time.perf_counter() - t0)), flush=True)


if __name__ == "__main__":
    main()
