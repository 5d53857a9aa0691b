#!/bin/bash
# Device run 5: weak scaling 1..16 with exposed wait and independent copies; models REPS=2.
. .dev-dist/env.sh
export PMIX_MCA_pcompress_base_silence_warning=1 PMIX_MCA_mca_base_component_show_load_errors=0
export OPENBLAS_CORETYPE=SkylakeX
run=runs/bench-dev5
mkdir -p $run
t0=$(date +%s)
BENCH_ARGS="--dim 192 --depth 12 --heads 3 --ffn 768 --patch 4 --batch 64 --warmup 2 --steps 6" \
  MPIRUN_ARGS="--bind-to core" JSONL=$run/scaling.jsonl timeout 330 bash scripts/bench_scaling.sh 1 2 4 8 16 > $run/scaling.md 2>$run/scaling.err
grep '^|' $run/scaling.md
echo "scaling at $(( $(date +%s) - t0 )) s"
REPS=2 PYTHON=python3 timeout 230 bash scripts/bench_models.sh 1 10 vit cbam_cnn resnet20 transformer bert bilstm > $run/models.md 2> $run/models.err
cat $run/models.md
echo "models at $(( $(date +%s) - t0 )) s"
tar czf $OUT/run.tgz $run
