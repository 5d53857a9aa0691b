#!/usr/bin/env bash
# A rank killed with SIGKILL mid-run, then `--resume auto`: nothing lost.
#  1. the reference: 40 steps, checkpoints every 10, uninterrupted;
#  2. the same run in another directory; rank 1 kills itself at step 25:
#     the job ends (non-zero) well within --collective-timeout, with the
#     checkpoints of steps 10 and 20 on disk;
#  3. the same command with --resume auto, and HEED_DEBUG_FAULT=stall:0:5,
#     which hangs (exit 4) a run that started again from step 0 instead of
#     resuming: it must exit 0 and end with exactly the reference's last
#     train and eval metrics.
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"

args=("${train_args[@]}" --steps 40 --ckpt-every 10 --keep 3)
rm -rf "$work/ref" "$work/run"
out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train "${args[@]}" --out "$work/ref" 2>&1) ||
  fail "the reference run failed: $out"

start=$SECONDS
out=$(HEED_DEBUG_FAULT=kill:1:25 timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train "${args[@]}" \
  --collective-timeout 60 --out "$work/run" 2>&1)
rc=$?
secs=$((SECONDS - start))
[ "$rc" != 0 ] || fail "rank 1 was killed and the job exited 0"
grep -q "rank 1 kills itself" <<<"$out" || fail "the kill fault did not fire: $out"
[ "$secs" -lt 60 ] || fail "the job took ${secs}s to end after rank 1 died (timeout 60 s)"
[ -n "$(ls "$work/run/checkpoints" 2>/dev/null)" ] || fail "no checkpoints in $work/run/checkpoints"
echo "ok: rank 1 killed at step 25 -> job ended with exit $rc after ${secs}s; checkpoints: $(ls "$work/run/checkpoints" | tr '\n' ' ')"

out=$(HEED_DEBUG_FAULT=stall:0:5 timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train "${args[@]}" \
  --collective-timeout 5 --resume auto --out "$work/run" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "--resume auto: exit $rc (4 means it ran step 5 again: it did not resume): $out"
last() { grep -E "\"kind\":\"$1\",\"step\":40," "$2" | tail -1 | sed -E 's/"(samples_per_s|elapsed_s)":[0-9.e+-]+,?//g'; }
for kind in train eval; do
  want=$(last $kind "$work/ref/metrics.jsonl")
  [ -n "$want" ] || fail "the reference has no $kind line at step 40"
  [ "$(last $kind "$work/run/metrics.jsonl")" = "$want" ] ||
    fail "$kind at step 40 after resume differs from the uninterrupted run: $(last $kind "$work/run/metrics.jsonl") vs $want"
done
echo "ok: resumed after the kill and ended exactly like the uninterrupted run"
echo "OK: kill -9 + --resume auto"
