#!/usr/bin/env bash
# Runs every compiled test program in the given directory from the repository root, prints each
# program's summary and one closing line "N passed, N failed, N skipped" summed over all of them.
set -u
dir=${1:?usage: tests/run.sh BUILD/tests}
# idle OpenMP threads sleep rather than spin (spinning costs up to 8x on a busy 2-core machine)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export UAKD_TEST_TMP=$(mktemp -d /tmp/uakd-test.XXXXXX)
trap 'rm -rf "$UAKD_TEST_TMP"' EXIT
pass=0; fail=0; skip=0; broken=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s.%N)
  out=$("$t" 2>"$UAKD_TEST_TMP/$name.err"); rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then
    echo "$name: crashed or printed no summary (exit $rc)"; cat "$UAKD_TEST_TMP/$name.err"; broken=$((broken+1)); continue
  fi
  read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ',')"
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+${s:-0}))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
    echo "$name: $line (${secs}s)  <-- FAILED"; cat "$UAKD_TEST_TMP/$name.err"
    [ "$f" -eq 0 ] && broken=$((broken+1))
  else
    echo "$name: $line (${secs}s)"
    grep '^skip ' "$UAKD_TEST_TMP/$name.err" || true
  fi
done
fail=$((fail+broken))
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
