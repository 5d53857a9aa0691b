#!/usr/bin/env bash
# Weak scaling of data-parallel ViT training (bench/bench_scaling.c): the same
# per-rank batch at each rank count, 1 BLAS thread per rank, gradient buckets
# reduced during backward (overlap on) and after it (overlap off). Prints the
# JSON lines of every run, then a Markdown table: samples/s, efficiency
# (samples/s at p ranks / (p x samples/s at 1 rank), overlap on), the
# reduction time left after backward with and without overlap, and the share
# of it that overlap hides.
#
# Usage: scripts/bench_scaling.sh [ranks...]        (default: 1 2 4)
#
# Environment:
#   BUILD_DIR     build folder holding bench/bench_scaling (default: build)
#   BENCH_ARGS    bench_scaling options (default: ViT-tiny, batch 64 per rank:
#                 --dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64
#                 --warmup 1 --steps 3)
#   MPIRUN_ARGS   extra mpirun options
#   JSONL         also append the JSON lines to this file
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HEED_ROOT"

ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2 4)
bench=${BUILD_DIR:-build}/bench/bench_scaling
[ -x "$bench" ] || die "$bench missing; build first (cmake --build ${BUILD_DIR:-build})"
command -v mpirun >/dev/null || die "mpirun not found; install Open MPI (scripts/setup.sh)"
args=${BENCH_ARGS:---dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 1 --steps 3}

mpi_env
export OPENBLAS_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for p in "${ranks[@]}"; do
  for overlap in 1 0; do
    # shellcheck disable=SC2086  # args and MPIRUN_ARGS are word lists
    mpirun ${MPIRUN_ARGS:-} -n "$p" "$bench" $args --threads 1 --overlap "$overlap" | tee -a "$out"
  done
done
[ -z "${JSONL:-}" ] || cat "$out" >>"$JSONL"
python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {(r["ranks"], r["overlap"]): r for r in runs}
base = by.get((1, 1))
print()
print("| ranks | samples/s | efficiency | step (s) | reduction after backward, overlap off (ms) "
      "| same, overlap on (ms) | hidden | hook time (ms) | step-time gain / reduction |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in sorted({r["ranks"] for r in runs}):
    on, off = by.get((p, 1)), by.get((p, 0))
    if not on or not off:
        continue
    eff = on["samples_per_s"] / (p * base["samples_per_s"]) if base else float("nan")
    hidden = 1 - on["wait_ms"] / off["wait_ms"] if off["wait_ms"] > 0 else float("nan")
    gain = ((off["step_s"] - on["step_s"]) * 1e3 / off["wait_ms"]) if off["wait_ms"] > 0 else float("nan")
    print(f"| {p} | {on['samples_per_s']:.1f} | {eff:.1%} | {on['step_s']:.3f} | {off['wait_ms']:.1f} "
          f"| {on['wait_ms']:.1f} | {hidden:.0%} | {on['hook_ms']:.1f} | {gain:.0%} |")
PY
