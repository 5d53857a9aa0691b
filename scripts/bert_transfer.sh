#!/usr/bin/env bash
# Does MLM pretraining help? Pretrain bert_mlm on the train split's token
# sequences, export its parameters, fine-tune bert from them (--init-from),
# and train the same bert from scratch with the same fine-tuning budget;
# prints both test results. Every stage is plain heed train / heed export.
#
# Usage: scripts/bert_transfer.sh DATA OUTDIR [ranks]       (default 2 ranks)
#
# Environment (defaults are the run of docs/benchmarks.md, "BERT"):
#   BUILD_DIR    build folder holding heed (build)
#   MODEL_ARGS   model and batch options shared by all stages
#   MLM_ARGS     pretraining schedule (--epochs 6 --lr 1e-3 --warmup 500)
#   FT_ARGS      fine-tuning schedule, both arms (--epochs 4 --lr 5e-4 --warmup 300)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -ge 2 ] || die "usage: scripts/bert_transfer.sh DATA OUTDIR [ranks]"
data=$1 out=$2 ranks=${3:-2}
heed=${BUILD_DIR:-build}/heed
[ -x "$heed" ] || die "$heed missing; build first"
[ -r "$data" ] || die "$data: no such dataset"
model=${MODEL_ARGS:---batch-size 64 --weight-decay 0.01 --dim 128 --depth 2 --heads 4 --ffn 512 --dropout 0.1 --length-buckets 50 --threads 1}
mlm=${MLM_ARGS:---epochs 6 --lr 1e-3 --warmup 500}
ft=${FT_ARGS:---epochs 4 --lr 5e-4 --warmup 300}
mpi_env
mkdir -p "$out"
train() { # name, then heed train options
  local name=$1
  shift
  # shellcheck disable=SC2086  # model is a word list
  mpirun -n "$ranks" "$heed" train --data "$data" $model --out "$out/$name" "$@" > "$out/$name.log" 2>&1 ||
    die "stage $name failed; see $out/$name.log"
  log "$name: $(grep '^test accuracy' "$out/$name.log")"
}
# shellcheck disable=SC2086  # mlm and ft are word lists
train mlm --model bert_mlm $mlm
last=$(find "$out/mlm/checkpoints" -name 'ckpt-*.h5' | sort | tail -1)
"$heed" export "$last" --out "$out/mlm.h5" > /dev/null
# shellcheck disable=SC2086
train finetuned --model bert --init-from "$out/mlm.h5" $ft
# shellcheck disable=SC2086
train scratch --model bert $ft
