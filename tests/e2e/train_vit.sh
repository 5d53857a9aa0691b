#!/usr/bin/env bash
# End to end: prepare a Fashion-MNIST subset from Debian's package, train a
# small ViT on 2 ranks for 300 steps, and require >= 70% test accuracy on
# 2,000 test images (a 4-block width-64 ViT is at ~80% after one epoch; 300
# steps of batch 64 is a third of one). Checks the run directory too.
set -euo pipefail
heed=$1
work=$2
mkdir -p "$work"
data=$work/fashion_mnist_subset.h5
if [ ! -f "$data" ]; then
  /usr/bin/python3 scripts/prepare_fashion_mnist.py --out "$data" --limit 20000
fi
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
rm -rf "$work/run"
mpirun "${flags[@]}" -n 2 "$heed" train --model vit --data "$data" --out "$work/run" \
  --steps 300 --batch-size 64 --lr 2e-3 --warmup 30 --dim 64 --depth 4 --heads 4 --ffn 128 \
  --patch 4 --log-every 50 --eval-every 150 --max-eval 2000 --check-sync | tee "$work/out.txt"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$acc" ] || { echo "FAIL: no test accuracy printed"; exit 1; }
for f in config.ini metrics.jsonl curves.png; do
  [ -s "$work/run/$f" ] || { echo "FAIL: run directory lacks $f"; exit 1; }
done
grep -q '"kind":"eval"' "$work/run/metrics.jsonl" || { echo "FAIL: no eval line in metrics.jsonl"; exit 1; }
grep -q '"kind":"train"' "$work/run/metrics.jsonl" || { echo "FAIL: no train line in metrics.jsonl"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.70) }' || { echo "FAIL: test accuracy $acc < 0.70"; exit 1; }
echo "OK: test accuracy $acc >= 0.70"
