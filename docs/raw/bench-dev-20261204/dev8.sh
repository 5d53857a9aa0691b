#!/bin/bash
# Device run 8 (2026-12-04 evening): 16-rank weak scaling, backward hook vs
# progress thread (--comm-thread 1), alternating; then models vs PyTorch.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
nproc; lscpu | grep "Model name"
a="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 2 --steps 8 --threads 1"
b=build/bench/bench_scaling
mpirun --bind-to core -n 1 $b $a
for i in 1 2; do
  mpirun --bind-to core -n 16 $b $a --comm-thread 0
  mpirun --bind-to core -n 16 $b $a --comm-thread 1
done
mpirun --bind-to core -n 8 $b $a --comm-thread 0
mpirun --bind-to core -n 8 $b $a --comm-thread 1
mpirun --bind-to core -n 16 $b $a --independent 1
REPS=1 scripts/bench_models.sh 1 20 resnet20 cbam_cnn vit transformer
