#!/bin/bash
# Device run (2026-12-06): the strided-conv build (8ef8597) against the
# Winograd build before it (51a8ab6) on ResNet-20, bench_conv, and the models
# vs the device's PyTorch at 1 thread; no MPI needed (bench_model is one
# process). Carried in .devcarry/: bench/ (new build), base/bench_model (old),
# lib/ (Debian's OpenBLAS 0.3.21, libgfortran, libquadmath).
export LD_LIBRARY_PATH=$PWD/.devcarry/lib
export OPENBLAS_CORETYPE=SkylakeX PYTHON=python3 OPENBLAS_NUM_THREADS=1
nproc; lscpu | grep -E "Model name" | cut -c1-120
python3 -c "import torch; print('torch', torch.__version__)"
mkdir -p build && rm -rf build/bench && cp -r .devcarry/bench build/bench
t0=$(date +%s)
build/bench/bench_sgemm --threads 1 | tail -1
build/bench/bench_conv --batch 64 --reps 3 2>&1 | tee $OUT/conv.txt
a="--model resnet20 --batch 64 --image 28 --channels 1 --steps 10"
for i in 1 2 3; do
  echo "old $(.devcarry/base/bench_model $a 2>/dev/null | tail -1)"
  echo "new $(build/bench/bench_model $a 2>/dev/null | tail -1)"
done | tee $OUT/ab.txt
REPS=3 timeout 400 bash scripts/bench_models.sh 1 10 2>&1 | tee $OUT/models.md
echo "done at $(( $(date +%s) - t0 )) s"
