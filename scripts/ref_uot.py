#!/usr/bin/python3
"""Reference plans for the unbalanced Sinkhorn solver (src/uot.c) from POT 0.8.

Our problem:  min_pi <pi, C> + eps KL(pi | a x b) + rho KL(pi 1 | a) + rho KL(pi^T 1 | b),
C_ij = |x_i - y_j|^2 / 2. POT's sinkhorn_stabilized_unbalanced regularises with the entropy of pi
(sum pi log pi - pi), so it is given the shifted cost C_ij - eps (log a_i + log b_j), reg = eps,
reg_m = rho; the two objectives then differ by a constant and have the same minimiser.

POT's output is checked before it is written: from its plan P we recover the potentials
f = -rho log(P 1 / a), g = -rho log(P^T 1 / b) that the optimality conditions of the KL-relaxed
problem give, rebuild a_i b_j exp((f_i + g_j - C_ij) / eps) and require it to match P (relative
residual below 1e-8), which only holds at the optimum.

Writes tests/data/uot/pot_cases.json (inputs rounded to float32 first, so both sides see the
same numbers). Run from the repository root: /usr/bin/python3 scripts/ref_uot.py
"""
import json
import os
import warnings

import numpy as np
import ot

OUT = os.path.join("tests", "data", "uot", "pot_cases.json")


def f32(v):
    return np.asarray(v, dtype=np.float32).astype(np.float64)


def solve_pot(x, a, y, b, eps, rho):
    C = 0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    M = C - eps * (np.log(a)[:, None] + np.log(b)[None, :])
    # POT absorbs potentials with one scalar per side, which diverges at small eps with its
    # default tau = 1e5, and its stopping test is relative to max(u), which stops small rows
    # early. So: a fixed 20000 iterations (stopThr < 0; POT then always warns that it did not
    # "converge", which is ignored), absorption thresholds tried in turn, and the first result
    # without numerical-error warnings that passes the optimality check is kept. The check's own
    # floor is about rho/eps * 1e-12 (f is recovered through a log of row sums).
    for tau in (1e10, 1e5):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            P = ot.unbalanced.sinkhorn_stabilized_unbalanced(
                a, b, M, eps, rho, tau=tau, numItermax=20000, stopThr=-1.0)
        if any("did not converge" not in str(w.message) for w in caught):
            continue
        f = -rho * np.log(P.sum(1) / a)
        g = -rho * np.log(P.sum(0) / b)
        rebuilt = a[:, None] * b[None, :] * np.exp((f[:, None] + g[None, :] - C) / eps)
        resid = np.abs(rebuilt - P).max() / P.max()
        if resid < 1e-8:
            return P, resid, tau
    raise RuntimeError("POT did not produce an optimal plan for this case")


def case(name, rng, n, m, blur, reach, box=1.0, same=False, dup=False):
    x = f32(rng.uniform(0, box, (n, 2)))
    y = f32(x.copy() if same else rng.uniform(0, box, (m, 2)))
    if dup and n > 1:
        x[1] = x[0]
    a = f32(rng.uniform(0.05, 1.0, n))
    b = f32(rng.uniform(0.05, 1.0, m))
    eps, rho = blur * blur, reach * reach
    P, resid, tau = solve_pot(x, a, y, b, eps, rho)
    print(f"{name:16s} n={n:2d} m={m:2d} eps={eps:.1e} rho={rho:.2f} mass(P)={P.sum():.6f} "
          f"a={a.sum():.4f} b={b.sum():.4f} tau={tau:.0e} kkt={resid:.1e}")
    return {"name": name, "blur": blur, "reach": reach, "n": n, "m": m,
            "x": x.ravel().tolist(), "a": a.tolist(), "y": y.ravel().tolist(), "b": b.tolist(),
            "plan": P.ravel().tolist()}


def main():
    rng = np.random.default_rng(7)
    cases = [
        case("eps1e-1", rng, 5, 7, np.sqrt(1e-1), 0.5),
        case("eps3e-2", rng, 9, 6, np.sqrt(3e-2), 0.5),
        case("eps1e-2", rng, 10, 10, 1e-1, 0.5),
        case("eps3e-3", rng, 8, 12, np.sqrt(3e-3), 0.5, box=0.6),
        case("eps1e-3", rng, 10, 10, np.sqrt(1e-3), 0.5, box=0.4),
        case("reach1", rng, 6, 9, np.sqrt(2e-2), 1.0),
        case("n1", rng, 1, 6, 1e-1, 0.5),
        case("m1", rng, 7, 1, 1e-1, 0.5),
        case("n1m1", rng, 1, 1, np.sqrt(3e-2), 0.5),
        case("identical", rng, 6, 6, 1e-1, 0.5, same=True),
        case("duplicates", rng, 6, 6, np.sqrt(3e-3), 0.5, box=0.5, same=True, dup=True),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump({"generator": "scripts/ref_uot.py", "pot": ot.__version__, "cases": cases}, fh)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
