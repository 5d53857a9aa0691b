#!/usr/bin/env bash
# Training throughput of heed vs PyTorch, same model, batch and thread count,
# measured in one invocation. Usage: scripts/bench_models.sh [threads] [steps]
# Prints a Markdown table (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
steps=${2:-20}
bench=${BUILD_DIR:-build}/bench/bench_model
[ -x "$bench" ] || { echo "bench_models.sh: $bench missing; run scripts/setup.sh first" >&2; exit 2; }
# Idle OpenMP/BLAS threads must not spin on shared cores.
export OMP_WAIT_POLICY=PASSIVE
declare -A configs=(
  [transformer]="--model transformer --batch 64 --len 64 --vocab 8000 --dim 128 --depth 2 --heads 4 --ffn 512"
  [bert]="--model bert --batch 64 --len 64 --vocab 8000 --dim 128 --depth 2 --heads 4 --ffn 512"
  [vit]="--model vit --batch 64 --image 28 --channels 1 --patch 4 --dim 64 --depth 4 --heads 4 --ffn 128"
  [cbam_cnn]="--model cbam_cnn --batch 64 --image 28 --channels 1 --width 32"
  [resnet20]="--model resnet20 --batch 64 --image 28 --channels 1"
  [bilstm]="--model bilstm --batch 64 --len 32 --vocab 8000 --dim 128 --depth 2 --embed-dim 128"
  [bigru]="--model bigru --batch 64 --len 32 --vocab 8000 --dim 128 --depth 2 --embed-dim 128"
)
echo "| model | threads | heed samples/s | PyTorch samples/s | ratio |"
echo "|---|---|---|---|---|"
for name in ${MODELS:-transformer vit cbam_cnn resnet20 bilstm bigru bert}; do
  args="${configs[$name]} --threads $threads --steps $steps"
  h=$("$bench" $args | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p')
  p=$(/usr/bin/python3 scripts/bench_torch.py $args | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p')
  ratio=$(awk -v a="$h" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
  echo "| $name | $threads | $h | $p | ${ratio}x |"
done
