#!/usr/bin/python3
"""OpenCV side of bench_pnp: makes the benchmark cases, times OpenCV on them, prints JSON on stdout.

Cases (seeded): LINEMOD camera, 15 cm object (points uniform in a 150 mm cube) at 0.6-1.2 m,
1 px Gaussian noise; groups "8" (8 points), "11+out" (11 points, 2 replaced by uniform pixels
>= 30 px away), "80", "200". OpenCV's SOLVEPNP_EPNP and SOLVEPNP_ITERATIVE are timed on the
outlier-free groups, solvePnPRansac (ITERATIVE, 8 px, 100 iterations, confidence 0.99) on "11+out" (median over all
calls of each group, each case repeated `reps` times). A result is a failure when the solver
reports failure, and a silent failure when it reports success with a rotation error above 10
degrees, a relative translation error above 10%, or a point behind the camera.
Usage: /usr/bin/python3 bench/pnp_peer.py [cases_per_group] [reps]
"""
import json
import sys
import time

import cv2
import numpy as np

K = np.array([[572.4114, 0, 325.2611], [0, 573.57043, 242.04899], [0, 0, 1]])
GROUPS = [("8", 8, 0), ("11+out", 11, 2), ("80", 80, 0), ("200", 200, 0)]


def make_cases(rng, count):
    cases = []
    for name, n, outliers in GROUPS:
        for _ in range(count):
            while True:
                rv = rng.normal(size=3)
                R, _ = cv2.Rodrigues(rv)
                X = rng.uniform(-75, 75, (n, 3))
                z = rng.uniform(600, 1200)
                t = np.array([rng.uniform(-0.15, 0.15) * z, rng.uniform(-0.1, 0.1) * z, z])
                x = (K @ (X @ R.T + t).T).T
                uv = x[:, :2] / x[:, 2:]
                if np.all((uv[:, 0] > 0) & (uv[:, 0] < 640) & (uv[:, 1] > 0) & (uv[:, 1] < 480)):
                    break
            uv = uv + rng.normal(0, 1, uv.shape)
            for i in rng.choice(n, outliers, replace=False):
                while True:
                    p = rng.uniform([0, 0], [640, 480])
                    if np.linalg.norm(p - uv[i]) > 30:
                        uv[i] = p
                        break
            cases.append({"group": name, "R": R.ravel().tolist(), "t": t.tolist(), "points3d": X.ravel().tolist(),
                          "points2d": uv.ravel().tolist()})
    return cases


def judge(R_true, t_true, X, ok, rv, t):
    if not ok or rv is None:
        return "fail", 0.0
    R, _ = cv2.Rodrigues(rv)
    t = np.asarray(t).ravel()
    ang = np.degrees(np.arccos(np.clip((np.trace(R.T @ R_true) - 1) / 2, -1, 1)))
    bad = ang > 10 or np.linalg.norm(t - t_true) > 0.1 * np.linalg.norm(t_true) or np.any((X @ R.T + t)[:, 2] <= 0)
    return ("silent" if bad else "ok"), ang


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = np.random.default_rng(2026)
    cases = make_cases(rng, count)
    solvers = {
        "epnp": lambda X, uv: cv2.solvePnP(X, uv, K, None, flags=cv2.SOLVEPNP_EPNP),
        "iterative": lambda X, uv: cv2.solvePnP(X, uv, K, None, flags=cv2.SOLVEPNP_ITERATIVE),
        "ransac": lambda X, uv: cv2.solvePnPRansac(X, uv, K, None, iterationsCount=100, reprojectionError=8.0,
                                                   confidence=0.99, flags=cv2.SOLVEPNP_ITERATIVE),
    }
    results = {}
    for name, _, _ in GROUPS:
        group = [c for c in cases if c["group"] == name]
        results[name] = {}
        for sname, fn in solvers.items():
            if (sname == "ransac") != (name == "11+out"):  # RANSAC for the outlier group only
                continue
            times, fails, silent, errs = [], 0, 0, []
            for c in group:
                X = np.array(c["points3d"]).reshape(-1, 3)
                uv = np.array(c["points2d"]).reshape(-1, 2)
                for _ in range(reps):
                    t0 = time.perf_counter()
                    try:
                        out = fn(X, uv)
                    except cv2.error:
                        out = (False, None, None)
                    times.append(time.perf_counter() - t0)
                verdict, ang = judge(np.array(c["R"]).reshape(3, 3), np.array(c["t"]), X, out[0], out[1], out[2])
                fails += verdict == "fail"
                silent += verdict == "silent"
                if verdict == "ok":
                    errs.append(ang)
            results[name][sname] = {"median_us": float(np.median(times) * 1e6), "fail": fails, "silent": silent,
                                    "cases": len(group), "mean_rot_err_deg": float(np.mean(errs)) if errs else None}
    json.dump({"cases": cases, "opencv": results, "opencv_version": cv2.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
