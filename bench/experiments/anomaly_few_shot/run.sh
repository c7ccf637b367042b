#!/usr/bin/env bash
# PatchCore fit on the first N of a seeded shuffle of a category's train/good photos (3 seeds; one
# when N is all of them), scored by anomaly.evaluate on the category's whole test/ (MVTec protocol).
# usage: bash bench/experiments/anomaly_few_shot/run.sh ROOT CATEGORY WORK "COUNTS" > LOG
# (run from the repository root; WORK is scratch: a copy of test/ and ground_truth/ per fit)
set -euo pipefail
src=$1; cat=$2; work=$3; counts=$4
py=${PYTHON:-.venv/bin/python}
total=$(ls "$src/$cat/train/good" | wc -l)
mkdir -p "$work"
for n in $counts; do
  for seed in 0 1 2; do
    [ "$n" = "$total" ] && [ "$seed" != 0 ] && continue
    d=$work/few_${n}_${seed}
    rm -rf "$d" "$d-run"; mkdir -p "$d/$cat/train/good"
    cp -r "$src/$cat/test" "$src/$cat/ground_truth" "$d/$cat/"
    ls "$src/$cat/train/good" | python3 -c "import sys, random; f = sorted(sys.stdin.read().split()); \
random.Random($seed).shuffle(f); print('\n'.join(f[:$n]))" | while read -r f; do
      cp "$src/$cat/train/good/$f" "$d/$cat/train/good/"
    done
    OMP_NUM_THREADS=2 "$py" -m anomaly.train --root "$d" --category "$cat" --out "$d-run" --no-progress \
      > "$d.train.log" 2>&1
    OMP_NUM_THREADS=2 "$py" -m anomaly.evaluate --run "$d-run" --no-figure --no-progress > "$d.eval.log" 2>&1
    echo "n=$n seed=$seed $(grep -i -m1 'auroc' "$d.eval.log")"
    rm -rf "$d"
  done
done
