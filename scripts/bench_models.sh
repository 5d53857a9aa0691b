#!/usr/bin/env bash
# Training throughput of heed vs PyTorch, same model, batch and thread count,
# measured in one invocation, and the share of the CPU's sgemm peak that each
# training step reaches. Usage: scripts/bench_models.sh [threads] [steps] [model...]
# Prints a Markdown table (paste into docs/benchmarks.md).
#
# Environment:
#   BUILD_DIR  build folder (default: build)
#   PYTHON     the Python that has torch (default: /usr/bin/python3)
#   REPS       runs of each side per model, alternating heed and PyTorch;
#              the table shows the best of each (default: 1)
#   METRIC     samples_per_s (wall clock, default) or samples_per_cpu_s
#              (process CPU time: steadier on a machine shared with other
#              work, where wall time counts the time other jobs hold the core)
#
# Model FLOPs are the matrix-product FLOPs of one forward + backward as
# PyTorch's FlopCounterMode counts them on the PyTorch twin (torch >= 2.1;
# "-" otherwise), of the work heed does: heed's bert runs its last block at
# [CLS] only, so its FLOPs are counted on a twin that does the same
# (bench_torch.py --cls-only), which also gets a row of its own below the
# plain twin's; the sgemm peak is bench_sgemm's best large square product
# at the same thread count and clock (scripts/bench_sgemm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
steps=${2:-20}
shift $(($# > 2 ? 2 : $#))
bench=${BUILD_DIR:-build}/bench/bench_model
sgemm=${BUILD_DIR:-build}/bench/bench_sgemm
python=${PYTHON:-/usr/bin/python3}
reps=${REPS:-1}
metric=${METRIC:-samples_per_s}
[ -x "$bench" ] || { echo "bench_models.sh: $bench missing; run scripts/setup.sh first" >&2; exit 2; }
# Idle OpenMP/BLAS threads must not spin on shared cores.
export OMP_WAIT_POLICY=PASSIVE
# One thread means one thread on both sides: torch.set_num_threads does not
# reach the OpenBLAS that Debian's PyTorch calls, which would start one
# thread per core.
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
declare -A configs=(
  [transformer]="--model transformer --batch 64 --len 64 --vocab 8000 --dim 128 --depth 2 --heads 4 --ffn 512"
  [bert]="--model bert --batch 64 --len 64 --vocab 8000 --dim 128 --depth 2 --heads 4 --ffn 512"
  [vit]="--model vit --batch 64 --image 28 --channels 1 --patch 4 --dim 64 --depth 4 --heads 4 --ffn 128"
  [cbam_cnn]="--model cbam_cnn --batch 64 --image 28 --channels 1 --width 32"
  [resnet20]="--model resnet20 --batch 64 --image 28 --channels 1"
  [bilstm]="--model bilstm --batch 64 --len 32 --vocab 8000 --dim 128 --depth 2 --embed-dim 128"
  [bigru]="--model bigru --batch 64 --len 32 --vocab 8000 --dim 128 --depth 2 --embed-dim 128"
)
# PyTorch twins that do what heed does beyond the plain model: timed as a
# second row "<model> (twin <flags>)", and the source of heed's FLOPs.
declare -A same_work=(
  [bert]="--cls-only"
)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(transformer vit cbam_cnn resnet20 bilstm bigru bert)
field() { sed -n "s/.*\"$1\": \([0-9.e+]*\).*/\1/p"; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
have_torch=1
"$python" -c "import torch" 2>/dev/null || {
  have_torch=0
  echo "bench_models.sh: $python has no torch: the PyTorch columns read '-'" >&2
}
peak=""
if [ -x "$sgemm" ]; then
  clock=wall
  [ "$metric" = samples_per_cpu_s ] && clock=cpu
  peak=$("$sgemm" --threads "$threads" --clock "$clock" | field sgemm_peak_gflops)
  echo "sgemm peak at $threads thread(s): $peak GFLOP/s"
  echo
fi
echo "| model | threads | heed samples/s | PyTorch samples/s | ratio | GFLOP/step | heed GFLOP/s | share of sgemm peak |"
echo "|---|---|---|---|---|---|---|---|"
row() { # label heed_samples torch_samples flops batch
  local ratio gstep="-" gps="-" share="-"
  ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
  if [ -n "$4" ]; then
    gstep=$(awk -v f="$4" 'BEGIN { printf "%.2f", f / 1e9 }')
    gps=$(awk -v f="$4" -v s="$2" -v b="$5" 'BEGIN { printf "%.1f", f * s / b / 1e9 }')
    [ -n "$peak" ] && share=$(awk -v g="$gps" -v pk="$peak" 'BEGIN { printf "%.0f%%", 100 * g / pk }')
  fi
  echo "| $1 | $threads | $2 | ${3:--} | $ratio | $gstep | $gps | $share |"
}
for name in "${models[@]}"; do
  read -ra args <<<"${configs[$name]} --threads $threads --steps $steps"
  read -ra extra <<<"${same_work[$name]:-}"
  batch=$(echo "${args[*]}" | sed -n 's/.*--batch \([0-9]*\).*/\1/p')
  h="" p="" flops="" q=""
  for ((r = 0; r < reps; r++)); do
    h=$(best "$h" "$("$bench" "${args[@]}" | field "$metric")")
    [ "$have_torch" = 1 ] || continue
    out=$("$python" scripts/bench_torch.py "${args[@]}")
    p=$(best "$p" "$(echo "$out" | field "$metric")")
    flops=$(echo "$out" | field flops_per_step)
    [ ${#extra[@]} -gt 0 ] || continue
    out=$("$python" scripts/bench_torch.py "${args[@]}" "${extra[@]}")
    q=$(best "$q" "$(echo "$out" | field "$metric")")
    flops=$(echo "$out" | field flops_per_step)
  done
  row "$name" "$h" "$p" "$flops" "$batch"
  [ ${#extra[@]} -eq 0 ] || [ "$have_torch" = 0 ] || row "$name (twin ${extra[*]})" "$h" "$q" "$flops" "$batch"
done
