#!/bin/bash
# Device run 7: all-reduce p=2,4 again (a second call), to 64 MB.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
MPIRUN_ARGS="--bind-to core" timeout 200 bash scripts/bench_allreduce.sh 64M 2 4 2>&1 | grep -E '^\||memcpy|^###' | tee $OUT/allreduce2.md
