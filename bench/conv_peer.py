#!/usr/bin/python3
"""PyTorch peer of bench/bench_conv.c: times one convolution shape per request.

Protocol (used by bench_conv, which starts this script with two pipes): each stdin line is
  n c_in h w c_out kh kw stride_h stride_w pad_h pad_w groups warmup reps
and for each line one JSON object is printed on stdout, e.g.
  {"fwd_ms": 1.2, "bwd_data_ms": 1.5, "bwd_weights_ms": 1.7}
with the median over `reps` timed runs after `warmup` untimed ones. Backward passes call
aten.convolution_backward, the op autograd uses for conv2d. torch.set_num_threads(2) unless
the environment variable UAKD_PEER_THREADS says otherwise; UAKD_PEER_CLOCK=cpu times process
CPU time instead of wall time (for a machine shared with other jobs). Stand-alone use:
  echo "8 64 64 64 64 3 3 1 1 1 1 1 2 10" | /usr/bin/python3 bench/conv_peer.py
"""
import json
import os
import sys
import time

import torch


CLOCK = time.process_time if os.environ.get("UAKD_PEER_CLOCK") == "cpu" else time.perf_counter


def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = CLOCK()
        fn()
        times.append((CLOCK() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def time_shape(n, ci, h, w, co, kh, kw, sh, sw, ph, pw, g, warmup, reps):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, ci, h, w, generator=gen)
    wt = torch.randn(co, ci // g, kh, kw, generator=gen)
    b = torch.randn(co, generator=gen)
    y = torch.nn.functional.conv2d(x, wt, b, (sh, sw), (ph, pw), 1, g)
    dy = torch.randn(y.shape, generator=gen)
    args = (dy, x, wt, [co], [sh, sw], [ph, pw], [1, 1], False, [0, 0], g)
    bwd = torch.ops.aten.convolution_backward
    with torch.no_grad():
        return {
            "fwd_ms": median_ms(lambda: torch.nn.functional.conv2d(x, wt, b, (sh, sw), (ph, pw), 1, g), warmup, reps),
            "bwd_data_ms": median_ms(lambda: bwd(*args, [True, False, False]), warmup, reps),
            "bwd_weights_ms": median_ms(lambda: bwd(*args, [False, True, True]), warmup, reps),
        }


def main():
    torch.set_num_threads(int(os.environ.get("UAKD_PEER_THREADS", "2")))
    for line in sys.stdin:
        f = [int(v) for v in line.split()]
        if len(f) != 14:
            print(json.dumps({"error": "expected 14 integers"}), flush=True)
            continue
        print(json.dumps(time_shape(*f)), flush=True)


if __name__ == "__main__":
    main()
