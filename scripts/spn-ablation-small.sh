#!/usr/bin/env bash
# The small SPNv2 / SPEED+ ablation of docs/speedplus.md ("Ablation after the batch-norm fix"):
# 300 synthetic SPEED+ images, two reduced teachers (4000 steps), students with a narrower BiFPN
# (3000 steps), student / ADLP+FKD / UAKD+PFKD x seeds 1-2, two runs at a time. About 16 minutes on
# two cores. Usage: scripts/spn-ablation-small.sh [OUT_DIR]   (default runs/spn-ablation; run `make` first)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/uakd
D=${1:-runs/spn-ablation}
KP=../shared/data/speedplus/tangoPoints.transcribed.csv
[ -x $B ] || { echo "spn-ablation-small: build/uakd not found; run make first" >&2; exit 1; }
[ -f $KP ] || { echo "spn-ablation-small: $KP missing (the shared/ folder next to the checkout)" >&2; exit 1; }
mkdir -p "$D/ens"
$B synth --format speedplus --count 300 --val-fraction 0.2 --width 320 --height 200 --depth 3:6 --seed 1 --out "$D/ds" --threads 2
T=(--data "$D/ds" --keypoints $KP --reduced --input 128x128 --batch 4 --lr 0.002 --threads 1 --log-every 200)
for e in 0 1; do # the two members side by side, seeds 1 and 2 as `uakd ensemble` gives them
    [ -f "$D/ens/member_$e/model.safetensors" ] ||
        $B train --family spnv2 "${T[@]}" --steps 4000 --seed $((e + 1)) --out "$D/ens/member_$e" >"$D/member_$e.log" 2>&1 &
done
wait
$B ensemble --family spnv2 --members 2 --out "$D/ens" -- "${T[@]}" --steps 4000
$B ablate --family spnv2 --methods student,adlp+fkd,uakd+pfkd --seeds 2 --jobs 2 --r 5 --ensemble "$D/ens" \
    --out "$D/ablation" -- "${T[@]}" --steps 3000 --bifpn-width 8
