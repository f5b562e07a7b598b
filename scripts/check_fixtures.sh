#!/usr/bin/env bash
# Regenerates the PyTorch parity fixtures into a temporary directory and compares them with the
# committed ones (tests/data/torch_parity): same tensor names and shapes, every value within
# 1e-6 + 1e-4 * max|committed| of its tensor, losses within 1e-5 relative. Exit 0 when they agree,
# 1 when they disagree, 77 (skip) when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "check_fixtures: torch not available for $py; skipped"
  exit 77
fi
tmp=$(mktemp -d /tmp/uakd-fixtures.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$py" scripts/ref_torch_parity.py "$tmp" >/dev/null
"$py" - "$tmp" tests/data/torch_parity <<'PY'
import json, sys
import numpy as np
new_dir, old_dir = sys.argv[1], sys.argv[2]
def load(d):
    idx = json.load(open(d + "/index.json"))
    blob = np.fromfile(d + "/tensors.bin", dtype="<f4")
    return idx, {t["name"]: (t["shape"], blob[t["offset"]:t["offset"] + t["count"]]) for t in idx["tensors"]}
ni, nt = load(new_dir)
oi, ot = load(old_dir)
bad = []
if set(nt) != set(ot):
    bad.append("tensor names differ: %s" % sorted(set(nt) ^ set(ot)))
for name in sorted(set(nt) & set(ot)):
    (ns, nv), (os_, ov) = nt[name], ot[name]
    if ns != os_:
        bad.append("%s: shape %s vs committed %s" % (name, ns, os_))
        continue
    tol = 1e-6 + 1e-4 * float(np.abs(ov).max(initial=0))
    d = float(np.abs(nv - ov).max(initial=0))
    if d > tol:
        bad.append("%s: max diff %.3g > %.3g" % (name, d, tol))
for a, b in zip(ni["losses"], oi["losses"]):
    if abs(a - b) > 1e-5 * abs(b):
        bad.append("loss %.9g vs committed %.9g" % (a, b))
if len(ni["losses"]) != len(oi["losses"]):
    bad.append("number of losses differs")
for b in bad:
    print("check_fixtures: " + b)
print("check_fixtures: %d tensors, %s" % (len(ot), "DISAGREE" if bad else "agree"))
sys.exit(1 if bad else 0)
PY
