#!/bin/bash
# Device run 3: weak scaling of ViT-tiny at 1..16 ranks, then checkpoint 1/2/4 again.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX
run=runs/bench-dev-scaling
mkdir -p $run
t0=$(date +%s)
BENCH_ARGS="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 2 --steps 6" \
  MPIRUN_ARGS="--bind-to core" JSONL=$run/scaling.jsonl timeout 400 bash scripts/bench_scaling.sh 1 2 4 8 16 > $run/scaling.md 2>$run/scaling.err
cat $run/scaling.md | grep '^|'
echo "scaling at $(( $(date +%s) - t0 )) s"
ITERS=5 MPIRUN_ARGS="--bind-to core" timeout 100 bash scripts/bench_checkpoint.sh /tmp 1 2 4 > $run/checkpoint.md 2>&1
grep '^|' $run/checkpoint.md
echo "checkpoint at $(( $(date +%s) - t0 )) s"
tar czf $OUT/run.tgz $run
