# Shared by the e2e_*.sh checkpoint scripts: a tiny ViT on a tiny image
# dataset, in exact mode (bitwise equal at any rank count).
# Usage: source common.sh HEED MAKE_DATASET WORKDIR
set -uo pipefail
heed=$1
make_dataset=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
data=$work/images.h5
"$make_dataset" "$data" image || exit 1
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
# 96 samples, batch 8: 12 steps per epoch, so step 10 is mid-epoch.
train_flags=(--model vit --data "$data" --dim 16 --depth 1 --heads 2 --ffn 32 --patch 1
  --batch-size 8 --micro-batch 2 --exact-reduce --dropout 0.1 --steps 10 --log-every 1
  --threads 1 --eval-every 1000)
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# heed_train RANKS OUTDIR [flags...]: runs heed train, sets $rc, keeps the log.
heed_train() {
  local p=$1 out=$2
  shift 2
  timeout 120 mpirun "${mpi_flags[@]}" -n "$p" "$heed" train "${train_flags[@]}" --out "$out" "$@" \
    >"$out.log" 2>&1
  rc=$?
}

# same_params A.h5 B.h5: the /params of two checkpoints are bitwise equal.
same_params() {
  h5diff -q "$1" "$2" /params /params >/dev/null 2>&1
}

# train_losses RUNDIR: "step loss" of each train line of metrics.jsonl.
train_losses() {
  sed -n 's/.*"kind":"train","step":\([0-9]*\),"epoch":[0-9]*,"loss":\([^,]*\),.*/\1 \2/p' \
    "$1/metrics.jsonl"
}

finish() {
  if [ "$failures" -eq 0 ]; then
    echo "OK: $1"
    rm -rf "$work"  # keep it on failure
  fi
  exit "$failures"
}
