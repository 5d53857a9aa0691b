#!/usr/bin/env bash
# The collective watchdog (src/dist/watchdog.h) at 3 ranks, timeout 3 s:
#  - rank 1 stalls at step 5: exit 4, rank 0 names rank 1 and the step;
#  - rank 0 stalls: the others exit 4 naming the collective and the step;
#  - rank 2 skips step 6 (diverged control flow): rank 0 names it and where
#    it is;
#  - rank 1 stalls during start-up (before the first step): every rank exits
#    4 after the start-up limit (4 x the timeout), naming start-up;
#  - rank 2 dies of SIGKILL: the job ends (non-zero) well within a 60 s
#    timeout, so it is mpirun that ended it, not the watchdog;
#  - heed eval: rank 1 stalls in its start-up, rank 2 before the final
#    reductions: exit 4 naming the stuck part (and rank 2).
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"

run() { # run FAULT TIMEOUT -> sets out, rc, secs
  local start=$SECONDS
  out=$(HEED_DEBUG_FAULT=$1 timeout 120 mpirun "${mpi_flags[@]}" -n 3 "$heed" train \
    "${train_args[@]}" --steps 40 --out "$work/run" --collective-timeout "$2" 2>&1)
  rc=$?
  secs=$((SECONDS - start))
}

run stall:1:5 3
[ "$rc" = 4 ] || fail "stalled rank 1: exit $rc, want 4; output: $out"
grep -q "rank 1 has not arrived" <<<"$out" || fail "rank 0 did not name rank 1: $out"
grep -q "at 'train step', step 5" <<<"$out" || fail "the report does not name step 5: $out"
echo "ok: rank 1 stalled at step 5 -> exit 4 after ${secs}s: $(grep -m1 'has not arrived' <<<"$out")"

run stall:0:7 3
[ "$rc" = 4 ] || fail "stalled rank 0: exit $rc, want 4; output: $out"
grep -q "'train step (loss and gradient all-reduce)' at step 7 has not completed after 3 s" <<<"$out" ||
  fail "no rank reported the collective and step 7: $out"
echo "ok: rank 0 stalled at step 7 -> exit 4 after ${secs}s"

run skip:2:6 3
[ "$rc" = 4 ] || fail "rank 2 skipped step 6: exit $rc, want 4; output: $out"
grep -q "rank 2 is at 'train step', step 7 (diverged)" <<<"$out" || fail "rank 0 did not name the diverged rank 2: $out"
echo "ok: rank 2 skipped step 6 -> exit 4 after ${secs}s: $(grep -m1 'diverged' <<<"$out")"

run stall:1:-1 3
[ "$rc" = 4 ] || fail "rank 1 stalled in start-up: exit $rc, want 4; output: $out"
grep -q "'start-up (dataset, model, --init-from, --resume)' before the first step has not completed after 12 s" <<<"$out" ||
  fail "no rank reported the start-up hang: $out"
[ "$secs" -lt 60 ] || fail "the start-up hang took ${secs}s to end (limit 12 s)"
echo "ok: rank 1 stalled in start-up -> exit 4 after ${secs}s"

run kill:2:5 60
[ "$rc" != 0 ] || fail "a rank was killed and the job exited 0"
grep -q "rank 2 kills itself" <<<"$out" || fail "the kill fault did not fire: $out"
[ "$secs" -lt 60 ] || fail "the job took ${secs}s to end after rank 2 died (timeout 60 s)"
echo "ok: rank 2 killed (SIGKILL) at step 5 -> job ended with exit $rc after ${secs}s (< 60 s)"
# heed eval on a checkpoint of a short clean run
timeout 120 mpirun "${mpi_flags[@]}" -n 3 "$heed" train "${train_args[@]}" --steps 2 \
  --out "$work/evalrun" > "$work/evalrun.txt" 2>&1 || fail "the run for heed eval failed: $(tail -5 "$work/evalrun.txt")"
ckpt=$(find "$work/evalrun/checkpoints" -name 'ckpt-*.h5' | sort | tail -n 1)
[ -n "$ckpt" ] || fail "the run for heed eval wrote no checkpoint"
run_eval() { # run_eval FAULT -> sets out, rc, secs
  local start=$SECONDS
  out=$(HEED_DEBUG_FAULT=$1 timeout 120 mpirun "${mpi_flags[@]}" -n 3 "$heed" eval --ckpt "$ckpt" \
    --data "$tiny_data" --collective-timeout 3 2>&1)
  rc=$?
  secs=$((SECONDS - start))
}
run_eval ""
[ "$rc" = 0 ] && grep -q '^eval test of' <<<"$out" || fail "heed eval without a fault: exit $rc: $out"
run_eval stall:1:-1
[ "$rc" = 4 ] || fail "heed eval, rank 1 stalled in start-up: exit $rc, want 4; output: $out"
grep -q "'eval start-up (checkpoint, dataset, model)' before the first step has not completed after 12 s" <<<"$out" ||
  fail "no rank reported the eval start-up hang: $out"
echo "ok: heed eval, rank 1 stalled in start-up -> exit 4 after ${secs}s"
run_eval stall:2:0
[ "$rc" = 4 ] || fail "heed eval, rank 2 stalled before the reductions: exit $rc, want 4; output: $out"
grep -q "rank 2 has not arrived" <<<"$out" || fail "rank 0 did not name rank 2: $out"
echo "ok: heed eval, rank 2 stalled before the reductions -> exit 4 after ${secs}s: $(grep -m1 'has not arrived' <<<"$out")"
echo "OK: watchdog"
