#!/usr/bin/python3
"""Reference cases for uakd's geometry and PnP, answered by OpenCV (Debian python3-opencv 4.6).

Run from the repository root:  /usr/bin/python3 scripts/ref_pnp.py
Writes (committed, so the C tests need no Python):
  tests/data/pnp/geom_cv.json  Rodrigues pairs (cv2.Rodrigues), projections with SPEED+ distortion
                               (cv2.projectPoints) and undistorted pixels (cv2.undistortPointsIter,
                               100 iterations, eps 1e-15).
  tests/data/pnp/cases.json    PnP cases: LINEMOD camera (mm, 15 cm object at 0.6-1.2 m) and SPEED+
                               camera with distortion (m; Tango keypoints for n = 11, points in the
                               Tango box otherwise, 5-12 m); n = 8, 11, 200; pixel noise 0, 1, 3;
                               0 or 20% outliers (image points replaced by uniform pixels). Each case
                               has the truth and OpenCV's SOLVEPNP_EPNP, SOLVEPNP_ITERATIVE and
                               solvePnPRansac (ITERATIVE, 8 px, 100 iterations, 0.99) answers.
  tests/data/pnp/small.json    small-object cases: LINEMOD camera, 10 cm object (8 points in a
                               100 mm cube) at 0.5-1.5 m, noise 1-3 px, with SOLVEPNP_ITERATIVE's
                               answer (which is often a pose behind the camera reported as success).
"""
import json
import os

import cv2
import numpy as np

OUT = "tests/data/pnp"
SHARED = os.environ.get("UAKD_SHARED", "../shared")
rng = np.random.default_rng(20261126)

LINEMOD_K = [[572.4114, 0, 325.2611], [0, 573.57043, 242.04899], [0, 0, 1]]
with open(os.path.join(SHARED, "data/speedplus/camera_speedplus.transcribed.json")) as f:
    sp = json.load(f)
SPEED_K, SPEED_D = sp["cameraMatrix"], sp["distCoeffs"]
TANGO = np.loadtxt(os.path.join(SHARED, "data/speedplus/tangoPoints.transcribed.csv"), delimiter=",", comments="#",
                   skiprows=2)[:, 1:]

CAMERAS = {
    "linemod": dict(K=LINEMOD_K, dist=[0.0] * 5, size=(640, 480)),
    "speedplus": dict(K=SPEED_K, dist=SPEED_D, size=(1920, 1200)),
}


def r10(a):
    """Rounds to 10 significant digits for compact JSON (1e-10 relative is far below any tolerance)."""
    return [float("%.10g" % v) for v in np.asarray(a, dtype=float).ravel()]


def rows(a, k):
    flat = r10(a)
    return [flat[i:i + k] for i in range(0, len(flat), k)]


def random_rotation():
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def project(cam, R, t, X):
    rv, _ = cv2.Rodrigues(R)
    uv, _ = cv2.projectPoints(X.reshape(-1, 1, 3), rv, t.reshape(3, 1), np.array(cam["K"], float), np.array(cam["dist"]))
    return uv.reshape(-1, 2)


def scene(cam_name, n, object_half, tz):
    """Random pose and model points that all project inside the image, in front of the camera."""
    cam = CAMERAS[cam_name]
    W, H = cam["size"]
    while True:
        R = random_rotation()
        if cam_name == "speedplus" and n == 11:
            X = TANGO.copy()
        else:
            X = rng.uniform(-object_half, object_half, (n, 3))
        z = rng.uniform(*tz)
        t = np.array([rng.uniform(-0.15, 0.15) * z, rng.uniform(-0.1, 0.1) * z, z])
        if np.any((X @ R.T + t)[:, 2] <= 0):
            continue
        uv = project(cam, R, t, X)
        if np.all((uv[:, 0] > 0) & (uv[:, 0] < W) & (uv[:, 1] > 0) & (uv[:, 1] < H)):
            return R, t, X, uv


def cv_answer(fn):
    try:
        out = fn()
    except cv2.error:
        return {"ok": False}
    ok, rv, t = out[0], out[1], out[2]
    if not ok or rv is None:
        return {"ok": False}
    R, _ = cv2.Rodrigues(rv)
    res = {"ok": True, "R": rows(R, 3), "t": r10(t)}
    if len(out) > 3:
        res["num_inliers"] = 0 if out[3] is None else int(len(out[3]))
    return res


def solve_all(cam, X, uv):
    K, d = np.array(cam["K"], float), np.array(cam["dist"], float)
    X, uv = X.astype(np.float64), uv.astype(np.float64)
    return {
        "epnp": cv_answer(lambda: cv2.solvePnP(X, uv, K, d, flags=cv2.SOLVEPNP_EPNP)),
        "iterative": cv_answer(lambda: cv2.solvePnP(X, uv, K, d, flags=cv2.SOLVEPNP_ITERATIVE)),
        "ransac": cv_answer(lambda: cv2.solvePnPRansac(X, uv, K, d, iterationsCount=100, reprojectionError=8.0,
                                                       confidence=0.99, flags=cv2.SOLVEPNP_ITERATIVE)),
    }


def pnp_cases():
    cases = []
    for cam_name in ("linemod", "speedplus"):
        cam = CAMERAS[cam_name]
        half, tz = (75.0, (600.0, 1200.0)) if cam_name == "linemod" else (0.5, (5.0, 12.0))
        for n in (8, 11, 200):
            for noise in (0, 1, 3):
                for frac in (0.0, 0.2):
                    trials = 1 if n == 200 else 4
                    for k in range(trials):
                        R, t, X, uv = scene(cam_name, n, half, tz)
                        uv = uv + rng.normal(0, noise, uv.shape) if noise else uv
                        outl = sorted(rng.choice(n, int(round(frac * n)), replace=False).tolist()) if frac else []
                        W, H = cam["size"]
                        for i in outl:  # a uniform pixel at least 30 px from the true projection
                            while True:
                                p = rng.uniform([0, 0], [W, H])
                                if np.linalg.norm(p - uv[i]) > 30:
                                    uv[i] = p
                                    break
                        cases.append({
                            "name": "%s_n%d_noise%d_out%d_%d" % (cam_name, n, noise, int(frac * 100), k),
                            "camera": cam_name, "K": cam["K"], "dist": cam["dist"], "noise_px": noise,
                            "outliers": outl, "R_true": rows(R, 3), "t_true": r10(t),
                            "points3d": rows(X, 3), "points2d": rows(uv, 2), "opencv": solve_all(cam, X, uv),
                        })
    return cases


def small_cases(count=100):
    cases = []
    cam = CAMERAS["linemod"]
    K = np.array(cam["K"], float)
    for k in range(count):
        R, t, X, uv = scene("linemod", 8, 50.0, (500.0, 1500.0))
        noise = [1, 2, 3][k % 3]
        uv = uv + rng.normal(0, noise, uv.shape)
        it = cv_answer(lambda: cv2.solvePnP(X, uv, K, None, flags=cv2.SOLVEPNP_ITERATIVE))
        cases.append({"noise_px": noise, "R_true": rows(R, 3), "t_true": r10(t), "points3d": rows(X, 3),
                      "points2d": rows(uv, 2), "opencv_iterative": it})
    return cases


def geom_cases():
    rvecs = [rng.normal(size=3) * s for s in (1e-9, 1e-4, 0.5, 1, 2, 3)]
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    rvecs += [axis * (np.pi - 1e-6), axis * np.pi * 0.999999999]
    rvecs += [rng.normal(size=3) for _ in range(8)]
    rod = [{"rvec": r10(r), "R": rows(cv2.Rodrigues(np.array(r).reshape(3, 1))[0], 3)} for r in rvecs]
    cam = CAMERAS["speedplus"]
    K, d = np.array(cam["K"], float), np.array(cam["dist"], float)
    R, t, X, uv = scene("speedplus", 20, 0.5, (5.0, 12.0))
    grid = np.array([[u, v] for u in (0, 100, 480, 960, 1500, 1919) for v in (0, 50, 600, 1000, 1199)], float)
    und = cv2.undistortPointsIter(grid.reshape(-1, 1, 2), K, d, None, None,
                                  (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-15)).reshape(-1, 2)
    return {
        "rodrigues": rod,
        "project": {"K": cam["K"], "dist": cam["dist"], "R": rows(R, 3), "t": r10(t), "points3d": rows(X, 3),
                    "points2d": rows(uv, 2)},
        "undistort": {"K": cam["K"], "dist": cam["dist"], "pixels": rows(grid, 2), "normalised": rows(und, 2)},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in (("geom_cv.json", geom_cases()), ("cases.json", pnp_cases()), ("small.json", small_cases())):
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(data, f, separators=(",", ":"))
        print("wrote", os.path.join(OUT, name))


if __name__ == "__main__":
    main()
