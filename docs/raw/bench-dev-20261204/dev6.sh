#!/bin/bash
# Device run 6: 16-rank weak scaling, does waiting by spinning cost the computing ranks?
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
a="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 2 --steps 8 --threads 1"
b=build/bench/bench_scaling
mpirun --bind-to core -n 1 $b $a
mpirun --bind-to core -n 16 $b $a
OMPI_MCA_mpi_yield_when_idle=1 mpirun --bind-to core -n 16 $b $a
mpirun --bind-to core -n 16 $b $a --independent 1
mpirun --bind-to none -n 16 $b $a
mpirun --bind-to core -n 16 $b $a --bucket-kb 1024
