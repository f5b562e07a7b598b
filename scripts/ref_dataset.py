#!/usr/bin/python3
"""Writes the SPEED+ list fixture of tests/test_dataset.c (tests/data/dataset/speedplus/) and prints
the reference projections of the Tango keypoints that the test compares to (cv2.projectPoints with
the SPEED+ camera and distortion; x_cam = R(q) X + r, q scalar-first Hamilton active).
Run from the repository root: /usr/bin/python3 scripts/ref_dataset.py"""
import json
import cv2
import numpy as np

ROOT = "tests/data/dataset/speedplus"
cam = json.load(open("../shared/data/speedplus/camera_speedplus.transcribed.json"))
json.dump(cam, open(ROOT + "/camera.json", "w"), indent=2)
K = np.array(cam["cameraMatrix"], float)
D = np.array(cam["distCoeffs"], float)
P = np.loadtxt("../shared/data/speedplus/tangoPoints.transcribed.csv", delimiter=",", skiprows=2)[:, 1:].copy()


def rot(q):
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]], float)


entries = [("img000001.jpg", [0.70710678118654752, 0, 0, 0.70710678118654752], [0.1, -0.2, 5.0]),
           ("img000002.jpg", [0.5, 0.5, 0.5, 0.5], [-0.3, 0.25, 8.0]),
           ("img000003.jpg", [1, 0, 0, 0], [0, 0, 6.0])]  # no image file: must be skipped
json.dump([{"filename": f, "q_vbs2tango_true": q, "r_Vo2To_vbs_true": r} for f, q, r in entries],
          open(ROOT + "/synthetic/train.json", "w"), indent=1)
for f, q, r in entries:
    rv, _ = cv2.Rodrigues(rot(q))
    uv = cv2.projectPoints(P.reshape(-1, 1, 3), rv, np.array(r, float), K, D)[0][:, 0]
    print(f, "kp0 %.6f %.6f" % tuple(uv[0]), "box %.6f %.6f %.6f %.6f" % (
        uv[:, 0].min(), uv[:, 1].min(), np.ptp(uv[:, 0]), np.ptp(uv[:, 1])))
img = np.full((1200, 1920, 3), (90, 110, 130), np.uint8)
for f, _, _ in entries[:2]:
    cv2.imwrite(ROOT + "/synthetic/images/" + f, img, [cv2.IMWRITE_JPEG_QUALITY, 30])
