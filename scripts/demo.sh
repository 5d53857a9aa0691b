#!/usr/bin/env bash
# The main job: install what is missing, build, prepare Fashion-MNIST from
# Debian's dataset-fashion-mnist package, train a Vision Transformer on 2
# ranks and print its test accuracy.
#
# Environment: RANKS (2), EPOCHS (2), RUN_DIR (runs/vit-fashion-mnist),
# DATA (data/fashion_mnist.h5), and HEED_TRAIN_ARGS for extra train options.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data=${DATA:-data/fashion_mnist.h5}
if [ ! -f "$data" ]; then
  mkdir -p "$(dirname "$data")"
  /usr/bin/python3 scripts/prepare_fashion_mnist.py --out "$data"
fi
ranks=${RANKS:-2}
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
# One BLAS thread per rank on this 2-core default; heed picks cores/ranks itself.
exec mpirun "${mpi_flags[@]}" -n "$ranks" "${BUILD_DIR:-build}/heed" train \
  --model vit --data "$data" --out "${RUN_DIR:-runs/vit-fashion-mnist}" \
  --epochs "${EPOCHS:-2}" --batch-size 128 --lr 2e-3 --schedule cosine --warmup 200 \
  --weight-decay 0.05 --dim 64 --depth 4 --heads 4 --ffn 128 --patch 4 --pool mean \
  --log-every 50 ${HEED_TRAIN_ARGS:-}
