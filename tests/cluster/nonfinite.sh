#!/usr/bin/env bash
# NaN in one rank's input (rank 1, step 3) at 2 ranks: all ranks reach one
# verdict. --on-nonfinite stop (default): exit 5 naming step 3.
# --on-nonfinite skip: step 3 is skipped on every rank, training finishes
# (exit 0) and still learns.
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"

out=$(HEED_DEBUG_FAULT=nan:1:3 timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train \
  "${train_args[@]}" --steps 20 --out "$work/stop" 2>&1)
rc=$?
[ "$rc" = 5 ] || fail "stop: exit $rc, want 5; output: $out"
grep -q "not finite at step 3 " <<<"$out" || fail "stop: message does not name step 3: $out"
echo "ok: stop -> exit 5: $(grep -m1 'not finite' <<<"$out")"

out=$(HEED_DEBUG_FAULT=nan:1:3 timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train \
  "${train_args[@]}" --steps 40 --on-nonfinite skip --check-sync --out "$work/skip" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "skip: exit $rc, want 0; output: $out"
grep -q "not finite at step 3 (epoch 0); step skipped" <<<"$out" || fail "skip: no skip message: $out"
[ "$(grep -c 'step skipped' <<<"$out")" = 1 ] || fail "skip: more than one step skipped: $out"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' <<<"$out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }' || fail "skip: test accuracy '${acc}' < 0.9"
echo "ok: skip -> step 3 skipped on every rank (--check-sync), test accuracy $acc"
echo "OK: nonfinite"
