#!/bin/bash
# Device run (2026-12-05): models vs the device's PyTorch at 1 thread with the
# Winograd build, and bench_conv; no MPI needed (bench_model is one process).
export LD_LIBRARY_PATH=$PWD/.devcarry/lib
export OPENBLAS_CORETYPE=SkylakeX PYTHON=python3
nproc; lscpu | grep -E "Model name|Flags" | cut -c1-120
python3 -c "import torch; print('torch', torch.__version__)"
mkdir -p build && rm -rf build/bench && cp -r .devcarry/bench build/bench
t0=$(date +%s)
build/bench/bench_conv --batch 64 --reps 3 2>&1 | tee $OUT/conv.txt
for e in 0 1; do echo "resnet20/cbam wino=$e"; for m in resnet20 cbam_cnn; do
  HEED_CONV_WINOGRAD=$e OPENBLAS_NUM_THREADS=1 build/bench/bench_model --model $m --batch 64 --image 28 --channels 1 --steps 10 2>/dev/null | tail -1; done; done | tee $OUT/ab.txt
REPS=3 timeout 420 bash scripts/bench_models.sh 1 10 2>&1 | tee $OUT/models.md
echo "done at $(( $(date +%s) - t0 )) s"
