#!/bin/bash
# Device run 4: is the weak-scaling loss the hardware? P independent copies
# (no MPI, no communication), one per core: sgemm peak and ViT-tiny training.
. .dev-dist/env.sh
export OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1
vit="--model vit --batch 64 --image 28 --channels 1 --patch 4 --dim 192 --depth 12 --heads 3 --ffn 768 --steps 5 --threads 1"
for P in 1 2 4 8 16; do
  d=/tmp/ind$P; mkdir -p $d
  for i in $(seq 0 $((P-1))); do taskset -c $i build/bench/bench_sgemm --threads 1 --seconds 0.2 | grep peak > $d/sg$i & done; wait
  for i in $(seq 0 $((P-1))); do taskset -c $i build/bench/bench_model $vit > $d/vit$i & done; wait
  echo "P=$P sgemm: $(cat $d/sg* | sed 's/.*gflops": \([0-9.]*\).*/\1/' | sort -n | tr '\n' ' ')"
  echo "P=$P vit samples/s: $(cat $d/vit* | sed 's/.*"samples_per_s": \([0-9.]*\).*/\1/' | sort -n | tr '\n' ' ')"
done | tee $OUT/independent.txt
