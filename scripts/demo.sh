#!/usr/bin/env bash
# The main job until the full pipeline exists: install the dependencies, build, and train a small
# keypoint network on generated images, printing its loss going down (uakd fit-demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make -j2
# idle OpenMP threads sleep instead of spinning: on a shared or busy 2-core machine spinning
# threads steal the cores the work needs (measured: 23 vs 188 images/s for this demo)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build/uakd fit-demo "$@"
