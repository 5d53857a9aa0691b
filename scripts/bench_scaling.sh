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
# The figures come from plot_bench.py's scaling_rows, as in bench_all's report.
python3 - "$out" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from plot_bench import scaling_rows
rows = scaling_rows([json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")])
pct = lambda v, digits=1: "-" if v is None else f"{v:.{digits}%}"
num = lambda v, fmt: "-" if v is None else format(v, fmt)
print()
print("| ranks | samples/s | efficiency | step (s) | reduction alone (ms) | wait after backward, "
      "overlap off (ms) | same, overlap on (ms) | exposed, overlap on (ms) | hidden | hook time (ms) "
      "| step time, overlap off (s) | independent copies, samples/s | efficiency vs independent |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    vs_ind = r["sps"] / r["ind_sps"] if r["ind_sps"] else None
    print(f"| {r['p']} | {r['sps']:.1f} | {pct(r['eff'])} | {r['step']:.3f} | {r['alone']:.1f} "
          f"| {num(r['wait_off'], '.1f')} | {r['wait_on']:.1f} | {r['exposed']:.1f} "
          f"| {pct(r['hidden'], 0)} | {r['hook']:.1f} | {num(r['step_off'], '.3f')} "
          f"| {num(r['ind_sps'], '.1f')} | {pct(vs_ind)} |")
PY
