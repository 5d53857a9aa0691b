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
  --patch 4 --log-every 50 --eval-every 150 --max-eval 2000 --check-sync --comm-thread on |
  tee "$work/out.txt"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$acc" ] || { echo "FAIL: no test accuracy printed"; exit 1; }
for f in config.ini metrics.jsonl curves.png; do
  [ -s "$work/run/$f" ] || { echo "FAIL: run directory lacks $f"; exit 1; }
done
grep -q '^comm-thread = on' "$work/run/config.ini" || { echo "FAIL: config.ini lacks comm-thread = on"; exit 1; }
grep -q '"kind":"eval"' "$work/run/metrics.jsonl" || { echo "FAIL: no eval line in metrics.jsonl"; exit 1; }
grep -q '"kind":"train"' "$work/run/metrics.jsonl" || { echo "FAIL: no train line in metrics.jsonl"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.70) }' || { echo "FAIL: test accuracy $acc < 0.70"; exit 1; }
echo "OK: test accuracy $acc >= 0.70"

# heed explain on the trained ViT: attention maps, rollout, pictures, and the
# bad requests it must refuse (exit 2, a message, nothing written).
ckpt=$(ls "$work/run/checkpoints"/ckpt-*.h5 | tail -n 1)
[ -n "$ckpt" ] || { echo "FAIL: the run wrote no checkpoint"; exit 1; }
rm -rf "$work/explain"
"$heed" explain --ckpt "$ckpt" --data "$data" --split test --samples 0..7 --out "$work/explain"
for i in 0 1 2 3 4 5 6 7; do
  [ -s "$work/explain/sample_$i.png" ] || { echo "FAIL: explain wrote no sample_$i.png"; exit 1; }
done
grep -q 'sample_7.png' "$work/explain/index.html" || { echo "FAIL: index.html lacks sample_7"; exit 1; }
/usr/bin/python3 - "$work/explain" <<'PY'
import struct, sys
import h5py, numpy as np
d = sys.argv[1]
with open(d + "/sample_0.png", "rb") as f:
    head = f.read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n", "sample_0.png is not a PNG"
w, h = struct.unpack(">II", head[16:24])
assert (w, h) == (2 * 28 * 8 + 24, 28 * 8 + 48), f"sample_0.png is {w}x{h}"
with h5py.File(d + "/attention.h5", "r") as f:
    assert f["samples"][:].tolist() == list(range(8))
    for i in range(4):
        a = f[f"attention/blocks.{i}.attn"]
        assert a.attrs["kind"] == b"self" or a.attrs["kind"] == "self"
        assert a.shape == (8, 4, 50, 50), a.shape
        assert np.allclose(a[:].sum(-1), 1, atol=1e-5)
    assert np.allclose(f["rollout"][:].sum(-1), 1, atol=1e-5)
    p = f["predictions"][:]
    assert (p == f["probabilities"][:].argmax(-1)).all()
print("explain files OK")
PY
set +e
"$heed" explain --ckpt "$ckpt" --data "$data" --samples 0..999999 --out "$work/explain-bad" 2>"$work/err.txt"
rc=$?
set -e
[ "$rc" = 2 ] || { echo "FAIL: an out-of-range --samples exited $rc, not 2"; exit 1; }
grep -q 'valid: 0\.\.' "$work/err.txt" || { echo "FAIL: no valid range in: $(cat "$work/err.txt")"; exit 1; }
[ ! -e "$work/explain-bad/attention.h5" ] || { echo "FAIL: a refused explain wrote attention.h5"; exit 1; }
/usr/bin/python3 tests/cluster/make_tiny_data.py "$work/tiny8x8.h5"
set +e
"$heed" explain --ckpt "$ckpt" --data "$work/tiny8x8.h5" --samples 0..1 --out "$work/explain-bad" 2>"$work/err.txt"
rc=$?
set -e
[ "$rc" = 2 ] || { echo "FAIL: data of another shape exited $rc, not 2"; exit 1; }
grep -q 'tiny8x8.h5' "$work/err.txt" || { echo "FAIL: the message does not name the data: $(cat "$work/err.txt")"; exit 1; }
echo "OK: heed explain"
