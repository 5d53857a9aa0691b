#!/usr/bin/env bash
# The benchmark suite in one command (issue 11), every part in one run so the
# ratios compare like with like:
#   1. OpenBLAS sgemm GFLOP/s at 1 thread (bench_sgemm), the peak the models'
#      shares are taken of;
#   2. training samples/s per model, heed and its PyTorch twin, same batch,
#      1 thread (scripts/bench_models.sh): ViT, CBAM-CNN, ResNet-20,
#      Transformer, BERT-tiny, BiLSTM;
#   3. all-reduce busbw, heed's ring against MPI_Allreduce, 4 KB to 256 MB,
#      at 2 and 4 ranks (bench_allreduce);
#   4. weak scaling of ViT-tiny training (batch 64 per rank) at 1, 2, 4, 8
#      and 16 ranks, as many as this machine has cores, with overlap on and
#      off, and the share of the reduction hidden behind backward
#      (bench_scaling).
# Raw outputs go to the run folder; scripts/plot_bench.py turns them into
# Markdown tables and PNG plots there and (unless --no-docs) rewrites the
# generated block of docs/benchmarks.md with them.
#
# Usage: scripts/bench_all.sh [--quick] [--out DIR] [--no-docs] [--docs FILE]
#   --quick    tiny sizes and one step: a smoke run of a minute whose figures
#              mean nothing (the tests use it); implies --no-docs
#   --out DIR  run folder (default runs/bench-YYYYmmdd-HHMMSS)
#   --docs F   the Markdown file whose block to rewrite (default docs/benchmarks.md)
#   --no-docs  leave the docs alone
#
# Environment: BUILD_DIR (default build), PYTHON (the Python with torch and
# matplotlib, default /usr/bin/python3), RANKS (weak-scaling rank counts,
# default 1 2 4 8 16 up to the cores), MODELS (default
# "vit cbam_cnn resnet20 transformer bert bilstm"), STEPS (timed steps per
# model, default 20). Without PyTorch the PyTorch columns read "-"; without
# matplotlib there are no plots. Run it on an idle machine.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HEED_ROOT"

usage() { sed -n '2,31s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
quick=0
out=""
docs=docs/benchmarks.md
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 docs="" ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --docs) docs=${2:?--docs needs a file}; shift ;;
    --no-docs) docs="" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  shift
done
build=${BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
out=${out:-runs/bench-$(date +%Y%m%d-%H%M%S)}
for b in bench_sgemm bench_model bench_allreduce bench_scaling; do
  [ -x "$build/bench/$b" ] || die "$build/bench/$b missing; build first (scripts/setup.sh)"
done
command -v mpirun >/dev/null || die "mpirun not found; install Open MPI (scripts/setup.sh)"
mkdir -p "$out"
cores=$(nproc)

if [ "$quick" = 1 ]; then
  steps=1 max_bytes=64K scaling_ranks=(1 2)
  scaling_args="--dim 16 --depth 1 --heads 2 --ffn 32 --patch 7 --batch 4 --warmup 0 --steps 1"
else
  steps=${STEPS:-20} max_bytes=256M scaling_ranks=()
  for p in ${RANKS:-1 2 4 8 16}; do [ "$p" -le "$cores" ] && scaling_ranks+=("$p"); done
  scaling_args="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 1 --steps 3"
fi
read -ra models <<<"${MODELS:-vit cbam_cnn resnet20 transformer bert bilstm}"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
  echo "cores: $cores"
  echo "openblas: $("$build/heed" doctor --out "$out/doctor" 2>/dev/null | sed -n 's/^OpenBLAS: *core \([^,]*\),.*/\1/p')"
  echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-unset}"
  echo "quick: $quick"
} >"$out/machine.txt"
rm -rf "$out/doctor"

log "1/4 sgemm"
OPENBLAS_NUM_THREADS=1 "$build/bench/bench_sgemm" --threads 1 --seconds "$([ $quick = 1 ] && echo 0.05 || echo 0.3)" \
  >"$out/sgemm.jsonl"

log "2/4 models vs PyTorch, 1 thread (${models[*]})"
bash scripts/bench_models.sh 1 "$steps" "${models[@]}" >"$out/models.md"

log "3/4 all-reduce vs MPI_Allreduce, to $max_bytes, p = 2 and 4"
bash scripts/bench_allreduce.sh "$max_bytes" 2 4 >"$out/allreduce.md"

log "4/4 weak scaling at ${scaling_ranks[*]} ranks"
rm -f "$out/scaling.jsonl"
BENCH_ARGS=$scaling_args JSONL=$out/scaling.jsonl bash scripts/bench_scaling.sh "${scaling_ranks[@]}" \
  >"$out/scaling.md"

"$python" scripts/plot_bench.py "$out" ${docs:+--docs "$docs"}
log "done: $out/report.md${docs:+ and $docs}"
