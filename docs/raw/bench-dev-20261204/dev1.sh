#!/bin/bash
# Device run 1: smoke, bench_all (models, all-reduce p=2,4, weak scaling), all-reduce p=8,16, checkpoint 1-8.
. .dev-dist/env.sh
lscpu > $OUT/lscpu.txt; nproc; df -h . /tmp | tail -2
mpirun -n 2 hostname || { echo MPI-SMOKE-FAILED; ldd build/heed | grep 'not found'; exit 1; }
build/heed doctor 2>&1 | head -20
run=runs/bench-dev-$(date -u +%Y%m%d-%H%M)
t0=$(date +%s)
STEPS=10 MPIRUN_ARGS="--bind-to core" timeout 330 bash scripts/bench_all.sh --out $run --no-docs 2>&1 | tail -30
echo "bench_all took $(( $(date +%s) - t0 )) s"
MPIRUN_ARGS="--bind-to core" timeout 100 bash scripts/bench_allreduce.sh 256M 8 16 > $run/allreduce_8_16.md 2>&1
echo "allreduce 8 16 done at $(( $(date +%s) - t0 )) s"
ITERS=5 MPIRUN_ARGS="--bind-to core" timeout 90 bash scripts/bench_checkpoint.sh /tmp 1 2 4 8 > $run/checkpoint.md 2>&1
echo "checkpoint done at $(( $(date +%s) - t0 )) s"
cat $run/allreduce.md $run/allreduce_8_16.md $run/checkpoint.md | grep -v '^$' | head -120
tar czf $OUT/run.tgz $run
