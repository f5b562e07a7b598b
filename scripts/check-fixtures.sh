#!/usr/bin/env bash
# Regenerates every committed reference fixture from its peer (PyTorch, POT, OpenCV) and fails when
# the result differs from what is committed: each scripts/ref_*.py rewrites its files under
# tests/data/ in place, then git must see no change there. Run it in a clean checkout (CI does);
# with local edits under tests/data it refuses to start. Skips (exit 0, says so) when the peers
# are not installed for /usr/bin/python3.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
if ! "$py" -c 'import torch, ot, cv2, numpy' 2>/dev/null; then
  echo "check-fixtures: skipped: /usr/bin/python3 lacks torch, ot, cv2 or numpy (run scripts/install-deps.sh)"
  exit 0
fi
if [ -n "$(git status --porcelain -- tests/data)" ]; then
  echo "check-fixtures: tests/data has uncommitted changes; commit or stash them first" >&2
  exit 2
fi
for script in scripts/ref_*.py; do
  start=$(date +%s)
  "$py" "$script" >/dev/null
  echo "check-fixtures: $script regenerated ($(( $(date +%s) - start ))s)"
done
if [ -n "$(git status --porcelain -- tests/data)" ]; then
  echo "check-fixtures: regenerated fixtures differ from the committed ones:" >&2
  git status --porcelain -- tests/data >&2
  git diff --stat -- tests/data >&2
  exit 1
fi
echo "check-fixtures: every fixture reproduced exactly"
