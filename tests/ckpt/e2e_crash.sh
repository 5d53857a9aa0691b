#!/usr/bin/env bash
# kill -9 of the whole job during a checkpoint write (HEED_CKPT_CRASH makes
# every rank SIGKILL itself after a stage of the write of step 6): after
# each stage, `--resume auto` finds a usable checkpoint - step 3 when the
# job died before the rename, step 6 after it - skips the leftover .tmp,
# and finishes with the same parameters as an uninterrupted run.
source "$(dirname "$0")/common.sh" "$@"

heed_train 2 "$work/ref" --ckpt-every 3
[ "$rc" -eq 0 ] || fail "reference run exit $rc: $(tail -3 "$work/ref.log")"
final=$work/ref/checkpoints/ckpt-00000010.h5

for stage in created params moments closed renamed; do
  out=$work/$stage
  HEED_CKPT_CRASH=$stage:6 heed_train 2 "$out" --ckpt-every 3
  [ "$rc" -ne 0 ] || fail "$stage: the job was not killed"
  grep -q "killing the job after stage '$stage' of step 6" "$out.log" ||
    fail "$stage: crash hook did not fire: $(tail -2 "$out.log")"
  want=3
  [ "$stage" = renamed ] && want=6
  heed_train 1 "$out" --ckpt-every 3 --resume auto
  [ "$rc" -eq 0 ] || fail "$stage: resume exit $rc: $(tail -3 "$out.log")"
  grep -q "resuming from .*ckpt-0000000$want.h5 (step $want" "$out.log" ||
    fail "$stage: did not resume from step $want: $(grep -m1 resum "$out.log")"
  ls "$out/checkpoints" | grep -q tmp && fail "$stage: a .tmp file was left after the resumed run"
  same_params "$final" "$out/checkpoints/ckpt-00000010.h5" ||
    fail "$stage: parameters after the crash and resume differ from the uninterrupted run"
done
finish "after kill -9 at every stage of a write the previous checkpoint loads, the run ends exact"
