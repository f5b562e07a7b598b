#!/usr/bin/python3
"""POT peer of bench/bench_uot.c: times ot.unbalanced.sinkhorn_stabilized_unbalanced on the
problem sets the C benchmark wrote, with the same eps and rho and the same iteration count per
problem as our solver (stopThr < 0 so POT runs exactly numItermax iterations; one POT iteration
updates u and v once, like one of our steps updates f and g once). POT regularises with the
entropy of pi, so it gets the shifted cost C - eps (log a + log b) (method.md section 5); building
that cost matrix is timed too.

usage: uot_peer.py BLUR REACH REPEATS FILE...
prints {"FILE": {"median_ms": wall, "median_cpu_ms": process CPU time, ...}, ...} as JSON.
File: int32 count, then per problem int32 n, m, iters and float32 x[2n], a[n], y[2m], b[m].
"""
import json
import sys
import time
import warnings

import numpy as np
import ot


def read_problems(path):
    raw = open(path, "rb").read()
    pos = 0

    def take(dtype, count):
        nonlocal pos
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=pos)
        pos += arr.nbytes
        return arr

    probs = []
    for _ in range(int(take(np.int32, 1)[0])):
        n, m, iters = (int(v) for v in take(np.int32, 3))
        x = take(np.float32, 2 * n).astype(np.float64).reshape(n, 2)
        a = take(np.float32, n).astype(np.float64)
        y = take(np.float32, 2 * m).astype(np.float64).reshape(m, 2)
        b = take(np.float32, m).astype(np.float64)
        probs.append((x, a, y, b, iters))
    return probs


def solve_all(probs, eps, rho):
    for x, a, y, b, iters in probs:
        C = 0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        M = C - eps * (np.log(a)[:, None] + np.log(b)[None, :])
        ot.unbalanced.sinkhorn_stabilized_unbalanced(a, b, M, eps, rho, numItermax=iters,
                                                     stopThr=-1.0)


def main():
    blur, reach, repeats = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    eps, rho = blur * blur, reach * reach
    out = {}
    for path in sys.argv[4:]:
        probs = read_problems(path)
        times, cpu = [], []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            solve_all(probs, eps, rho)  # warm-up
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                solve_all(probs, eps, rho)
                times.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
        bad = [str(w.message) for w in caught if "did not converge" not in str(w.message)]
        out[path] = {"median_ms": float(np.median(times)), "median_cpu_ms": float(np.median(cpu)),
                     "numerical_warnings": len(bad)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
