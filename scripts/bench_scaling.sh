#!/usr/bin/env bash
# Weak scaling of data-parallel ViT training (bench/bench_scaling.c): the same
# per-rank batch at each rank count, 1 BLAS thread per rank, gradient buckets
# reduced during backward (overlap on) and after it (overlap off). Prints the
# JSON lines of every run, then a Markdown table: samples/s, efficiency
# (samples/s at p ranks / (p x samples/s at 1 rank), overlap on), the
# reduction of all buckets alone (after a barrier), the time left after
# backward with and without overlap (which also holds waiting for a slower
# rank), and the share of the reduction hidden: 1 - min(wait with overlap,
# reduction alone) / reduction alone.
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
print("| ranks | samples/s | efficiency | step (s) | reduction alone (ms) | wait after backward, "
      "overlap off (ms) | same, overlap on (ms) | hidden | hook time (ms) | step time, overlap off (s) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in sorted({r["ranks"] for r in runs}):
    on, off = by.get((p, 1)), by.get((p, 0))
    if not on or not off:
        continue
    eff = on["samples_per_s"] / (p * base["samples_per_s"]) if base else float("nan")
    alone = on["reduce_alone_ms"]
    # Exposed = what is left after backward with overlap, at most the
    # reduction itself (the rest of the wait is a slower rank's backward).
    hidden = f"{1 - min(on['wait_ms'], alone) / alone:.0%}" if p > 1 and alone > 0 else "-"
    print(f"| {p} | {on['samples_per_s']:.1f} | {eff:.1%} | {on['step_s']:.3f} | {alone:.1f} "
          f"| {off['wait_ms']:.1f} | {on['wait_ms']:.1f} | {hidden} | {on['hook_ms']:.1f} "
          f"| {off['step_s']:.3f} |")
PY
