#!/bin/bash
# Device run 10 (2026-12-04 evening): the weak-scaling script with its
# defaults, i.e. the progress thread as heed train's --comm-thread auto
# (on at 8 and 16 ranks).
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
MPIRUN_ARGS="--bind-to core" scripts/bench_scaling.sh 1 2 4 8 16
