# shellcheck shell=bash
# Shared by the cluster tests: source it after setting `heed` and `work`.
# Defines mpi_flags, tiny_data (a learnable 2-class 8x8 image set),
# train_args (a model small enough for a 1-2 s run), fail and skip.
set -uo pipefail
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$work"
tiny_data=$work/tiny.h5
[ -f "$tiny_data" ] || /usr/bin/python3 "$here/make_tiny_data.py" "$tiny_data" ||
  { echo "FAIL: could not write $tiny_data"; exit 1; }
train_args=(--model vit --data "$tiny_data" --batch-size 32 --dim 16 --depth 1 --heads 2
            --ffn 32 --patch 4 --log-every 10 --lr 3e-3 --warmup 0)
# SKIP_RETURN_CODE of every cluster test (tests/cluster/CMakeLists.txt).
skip_code=77
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit "$skip_code"; }
