#!/usr/bin/env bash
# cblas_sgemm GFLOP/s on this CPU (bench/bench_sgemm.c): large square
# products, whose best is the "sgemm peak" that scripts/bench_models.sh
# compares training steps with, and the products of the Transformer
# benchmark's step. Usage: scripts/bench_sgemm.sh [threads] [seconds per shape] [cpu|wall]
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BUILD_DIR:-build}/bench/bench_sgemm
[ -x "$bench" ] || { echo "bench_sgemm.sh: $bench missing; run scripts/setup.sh first" >&2; exit 2; }
OPENBLAS_NUM_THREADS=${1:-1} exec "$bench" --threads "${1:-1}" --seconds "${2:-0.3}" --clock "${3:-cpu}"
