#!/bin/bash
# Device A/B (2026-12-06, the call after dev12.sh on the same warm machine):
# bench_conv and ResNet-20 bench_model, the Winograd build (51a8ab6, carried
# in .devcarry/base/) against the strided-conv build, alternating.
export LD_LIBRARY_PATH=$PWD/.devcarry/lib OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
a="--model resnet20 --batch 64 --image 28 --channels 1 --steps 20"
for i in 1 2 3; do
  for b in base bench; do
    echo "$b conv: $(.devcarry/$b/bench_conv --batch 64 --reps 3 | grep 'stride 2' | sed 's/.*fwd_ms": \([0-9.]*\), "fwd_bwd_ms": \([0-9.]*\).*/\1\/\2/' | tr '\n' ' ')"
    echo "$b model: $(.devcarry/$b/bench_model $a 2>/dev/null | tail -1)"
  done
done | tee $OUT/ab2.txt
