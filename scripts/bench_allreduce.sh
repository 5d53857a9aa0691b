#!/usr/bin/env bash
# heed's ring all-reduce vs MPI_Allreduce, float32 sum, 4 KB to 64 MB (or the
# size given), at each rank count given (default 2 and 4), all ranks on this
# machine, oversubscribed when there are fewer cores. Prints one Markdown table
# per rank count (paste into docs/benchmarks.md).
#
# Usage: scripts/bench_allreduce.sh [max-bytes, e.g. 64M or 256M] [ranks...]
#
# Environment:
#   BUILD_DIR         build folder holding bench/bench_allreduce (default: build)
#   BENCH_ARGS        extra bench_allreduce options (--factor 2, --iters 20, ...)
#   MPIRUN_ARGS       extra mpirun options (e.g. --mca btl self,vader)
#
# Both sides use the same transport: on one machine Open MPI's shared-memory
# BTL (vader). With more ranks than cores the figures measure the scheduler
# as much as the algorithm; compare heed with MPI within a table, not across.
#
# From about 64 MB up, the temporary buffer MPI_Allreduce mallocs in every call
# reaches glibc's largest mmap threshold (32 MiB), so each call maps fresh
# pages and takes a page fault per 4 KiB; heed's workspace is allocated once. Where faults are dear (a VM
# measured 30 us each, 250 us under load) that alone costs MPI seconds at
# 64 MB. To compare the algorithms without it, keep malloc off mmap:
#   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296 \
#   MPIRUN_ARGS="-x GLIBC_TUNABLES" scripts/bench_allreduce.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HEED_ROOT"

max_bytes=${1:-64M}
shift || true
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(2 4)
bench=${BUILD_DIR:-build}/bench/bench_allreduce
[ -x "$bench" ] || die "$bench missing; build first (scripts/setup.sh, or cmake --build ${BUILD_DIR:-build})"
command -v mpirun >/dev/null || die "mpirun not found; install Open MPI (scripts/setup.sh)"

# Oversubscription, root in containers, no CMA single-copy where ptrace is
# denied (see common.sh). An oversubscribed Open MPI rank yields the core
# while it polls, so the ranks share the cores instead of spinning.
mpi_env
for p in "${ranks[@]}"; do
  echo "### p = $p ($(nproc) cores)"
  echo
  # shellcheck disable=SC2086  # BENCH_ARGS and MPIRUN_ARGS are word lists
  mpirun ${MPIRUN_ARGS:-} -n "$p" "$bench" --max-bytes "$max_bytes" ${BENCH_ARGS:-}
  echo
done
