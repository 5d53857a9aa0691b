#!/usr/bin/env bash
# Checkpoint write/read speed (bench/bench_checkpoint.c) at 1, 2 and 4 ranks
# (or those given) for ~100 MB of parameters + Adam moments, against the
# sequential write speed `dd` measures on the same disk (with fdatasync, as
# the checkpoint's fsync), measured just before each row. Prints Markdown
# for docs/benchmarks.md.
#
# Usage: scripts/bench_checkpoint.sh [DIR] [ranks...]
#   DIR defaults to build/ (the disk checkpoints would go to: pass RUNDIR).
# Environment: BUILD_DIR (default build), MB (default 100), ITERS (default 3),
#              MPIRUN_ARGS (extra mpirun options).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HEED_ROOT"

build=${BUILD_DIR:-build}
dir=${1:-$build}
shift || true
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2 4)
mb=${MB:-100}
iters=${ITERS:-3}
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)

# dd_mbps: median MB/s of 5 runs of dd (the first is often slowed by the
# writeback of earlier dirty pages: the median is the fair figure).
dd_mbps() {
  for _ in 1 2 3 4 5; do
    dd if=/dev/zero of="$dir/dd-bench.tmp" bs=1M count="$mb" conv=fdatasync 2>&1 |
      sed -n 's/.*copied, \([0-9.]*\) s.*/\1/p'
  done | sort -n | sed -n 3p | awk -v mb="$mb" '{ printf "%.0f", mb * 1.048576 / $1 }'
  rm -f "$dir/dd-bench.tmp"
}

echo "| ranks | MB | write s | write MB/s | read s | read MB/s | dd MB/s (median of 5, just before) | write / dd |"
echo "|------:|---:|--------:|-----------:|-------:|----------:|-----:|-----:|"
for p in "${ranks[@]}"; do
  dd_speed=$(dd_mbps)
  row=$(mpirun "${flags[@]}" ${MPIRUN_ARGS:-} -n "$p" "$build/bench/bench_checkpoint" \
    --dir "$dir" --mb "$mb" --iters "$iters")
  write=$(awk -F'|' '{ print $5 }' <<<"$row")
  echo "$row $dd_speed | $(awk -v w="$write" -v d="$dd_speed" 'BEGIN { printf "%.0f%%", 100 * w / d }') |"
done
