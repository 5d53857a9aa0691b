#!/usr/bin/env bash
# Weak scaling of data-parallel ViT training (bench/bench_scaling.c): the same
# per-rank batch at each rank count, 1 BLAS thread per rank, gradient buckets
# reduced during backward (overlap on) and after it (overlap off). Prints the
# JSON lines of every run, then a Markdown table: samples/s, efficiency
# (samples/s at p ranks / (p x samples/s at 1 rank), overlap on), the
# reduction of all buckets alone (after a barrier), the time left after
# backward with and without overlap (which also holds waiting for a slower
# rank), the wait of the rank that finished backward last (exposed: it waits
# for no one's backward, only for unhidden communication), and the share of
# the reduction hidden: 1 - min(exposed, reduction alone) / reduction alone.
# At p > 1 it also runs p independent copies under the same launch (every
# rank trains alone: no communication, no synchronisation): the ceiling that
# the cores themselves allow when they all work at once, and the efficiency
# against it.
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
  for mode in "--overlap 1" "--overlap 0" "--independent 1"; do
    [ "$p" -gt 1 ] || [ "$mode" != "--independent 1" ] || continue
    # shellcheck disable=SC2086  # args, mode and MPIRUN_ARGS are word lists
    mpirun ${MPIRUN_ARGS:-} -n "$p" "$bench" $args --threads 1 $mode | tee -a "$out"
  done
done
[ -z "${JSONL:-}" ] || cat "$out" >>"$JSONL"
python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {(r["ranks"], r["overlap"], r.get("independent", 0)): r for r in runs}
base = by.get((1, 1, 0))
print()
print("| ranks | samples/s | efficiency | step (s) | reduction alone (ms) | wait after backward, "
      "overlap off (ms) | same, overlap on (ms) | exposed, overlap on (ms) | hidden | hook time (ms) "
      "| step time, overlap off (s) | independent copies, samples/s | efficiency vs independent |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in sorted({r["ranks"] for r in runs}):
    on, off, ind = by.get((p, 1, 0)), by.get((p, 0, 0)), by.get((p, 1, 1))
    if not on or not off:
        continue
    eff = on["samples_per_s"] / (p * base["samples_per_s"]) if base else float("nan")
    alone = on["reduce_alone_ms"]
    exposed = on.get("exposed_ms", on["wait_ms"])
    hidden = f"{1 - min(exposed, alone) / alone:.0%}" if p > 1 and alone > 0 else "-"
    ind_sps = f"{ind['samples_per_s']:.1f}" if ind else "-"
    ind_eff = f"{on['samples_per_s'] / ind['samples_per_s']:.1%}" if ind else "-"
    print(f"| {p} | {on['samples_per_s']:.1f} | {eff:.1%} | {on['step_s']:.3f} | {alone:.1f} "
          f"| {off['wait_ms']:.1f} | {on['wait_ms']:.1f} | {exposed:.1f} | {hidden} | {on['hook_ms']:.1f} "
          f"| {off['step_s']:.3f} | {ind_sps} | {ind_eff} |")
PY
