#!/usr/bin/env bash
# End to end: train a narrow cbam_cnn (width 8, batch norm, CBAM, random
# crops and flips) on 2 ranks for 200 steps of batch 64 on a Fashion-MNIST
# subset, with synchronised batch norm (--sync-bn: statistics of the global
# batch) and --check-sync (parameters AND batch-norm buffers identical on
# both ranks every step), and require >= 70% test accuracy on 2,000 test
# images (chance is 10%). About 40 s of CPU.
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
# an odd global batch cannot give both ranks the same micro-batches
set +e
mpirun "${flags[@]}" -n 2 "$heed" train --model cbam_cnn --data "$data" --out "$work/bad" \
  --steps 2 --batch-size 63 --sync-bn >"$work/bad.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q -- "--batch-size (63) must be a multiple of the 2 ranks" "$work/bad.txt" ||
  { echo "FAIL: --sync-bn with batch 63 on 2 ranks: exit $rc"; cat "$work/bad.txt"; exit 1; }
rm -rf "$work/run"
mpirun "${flags[@]}" -n 2 "$heed" train --model cbam_cnn --data "$data" --out "$work/run" \
  --steps 200 --batch-size 64 --lr 3e-3 --warmup 20 --width 8 --augment true --threads 1 \
  --log-every 50 --eval-every 100 --max-eval 2000 --check-sync --sync-bn | tee "$work/out.txt"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$acc" ] || { echo "FAIL: no test accuracy printed"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.70) }' || { echo "FAIL: test accuracy $acc < 0.70"; exit 1; }
grep -q '^sync-bn = true' "$work/run/config.ini" || { echo "FAIL: config.ini lacks sync-bn = true"; exit 1; }
echo "OK: test accuracy $acc >= 0.70"
