#!/bin/bash
# Device run 9 (2026-12-04 evening): dev8 again with the fixed progress
# thread (dev8's thread started buckets before backward had finished them,
# so its thread figures are void); then the conv changes of this session
# (bench_model) against the binaries of 9f19a60 (bench_model_old), alternating.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
a="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 2 --steps 8 --threads 1"
b=build/bench/bench_scaling
mpirun --bind-to core -n 1 $b $a
for i in 1 2 3; do
  mpirun --bind-to core -n 16 $b $a --comm-thread 0
  mpirun --bind-to core -n 16 $b $a --comm-thread 1
done
mpirun --bind-to core -n 8 $b $a --comm-thread 0
mpirun --bind-to core -n 8 $b $a --comm-thread 1
mpirun --bind-to core -n 16 $b $a --independent 1
for m in "resnet20" "cbam_cnn --width 32"; do
  for i in 1 2; do
    for v in bench_model_old bench_model; do
      echo "$v $(build/bench/$v --model $m --batch 64 --image 28 --channels 1 --steps 20)"
    done
  done
done
