#!/usr/bin/env bash
# `cmake --install` into a fresh prefix: the program, the static libraries,
# the headers and heed.pc; then a program outside the tree is compiled with
# `pkg-config --cflags --libs heed` only, and run under mpirun -n 2 (a ring
# all-reduce through the installed heed_dist); the installed heed runs.
heed=$1
work=$2
build=$3
. "$(dirname "$0")/lib.sh"

prefix=$work/prefix
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -5 "$work/install.log")"
libdir=$(dirname "$(find "$prefix" -name heed.pc | head -1)")/..
for f in bin/heed include/heed/core/tensor.h include/heed/dist/allreduce.h \
  include/heed/models/model.h share/heed/slurm/train.sbatch; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
for l in heed_core heed_dist heed_models heed_app; do
  [ -f "$libdir/lib$l.a" ] || fail "not installed: $libdir/lib$l.a"
done
"$prefix/bin/heed" models >/dev/null || fail "the installed heed does not run"

# Move the tree: heed.pc is relocatable.
mv "$prefix" "$prefix.moved"
prefix=$prefix.moved
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name heed.pc | head -1)")
pkg-config --exists heed || fail "pkg-config does not find heed in $PKG_CONFIG_PATH"
cat >"$work/user.c" <<'C'
#include "core/rng.h"
#include "dist/allreduce.h"
#include "dist/comm.h"

#include <stdio.h>

int main(void) {
    MPI_Init(NULL, NULL);
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    enum { N = 1000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(c.rank + 1) + 0.0f * rng_uniform(1, (uint64_t)i);
    ring r;
    ring_init(&r, &c, N, 256);
    ring_allreduce(&r, x, N, RING_OP_SUM);
    int bad = 0;
    float want = (float)(c.size * (c.size + 1) / 2);
    for (int i = 0; i < N; i++)
        bad += x[i] != want;
    if (c.rank == 0)
        printf("user program: all-reduce over %d ranks: %s\n", c.size, bad ? "WRONG" : "ok");
    ring_free(&r);
    comm_free(&c);
    MPI_Finalize();
    return bad != 0;
}
C
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -std=c11 -Wall -Werror -o "$work/user" "$work/user.c" $(pkg-config --cflags --libs heed) ||
  fail "compiling against the installed heed failed (pkg-config --cflags --libs heed)"
out=$(timeout 60 mpirun "${mpi_flags[@]}" -n 2 "$work/user" 2>&1) || fail "user program failed: $out"
grep -q "all-reduce over 2 ranks: ok" <<<"$out" || fail "user program: $out"
echo "ok: $out"
echo "OK: installed tree (bin, lib, include/heed, heed.pc) works after being moved"
