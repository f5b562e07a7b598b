#!/usr/bin/env bash
# The main job until the full pipeline exists: install the dependencies, build, and train a small
# keypoint network on generated images, printing its loss going down (uakd fit-demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make -j2
build/uakd fit-demo "$@"
