#!/usr/bin/env bash
# heed train --resume: exact resume mid-epoch at the same rank count, at
# fewer and more ranks (2 -> 1, 2 -> 3), keep-K retention, --resume auto
# skipping a truncated and a corrupt checkpoint with a warning, and refusals
# (exit 2) of a broken explicit path and of another architecture.
source "$(dirname "$0")/common.sh" "$@"

# Reference: 10 uninterrupted steps on 2 ranks, checkpoints at 3, 6, 9, 10.
heed_train 2 "$work/ref" --ckpt-every 3 --keep 2 --keep-every 6
[ "$rc" -eq 0 ] || fail "reference run exit $rc: $(tail -3 "$work/ref.log")"
ckpts=$(cd "$work/ref/checkpoints" && echo *)
[ "$ckpts" = "ckpt-00000006.h5 ckpt-00000009.h5 ckpt-00000010.h5" ] ||
  fail "--keep 2 --keep-every 6 left: $ckpts (want steps 6, 9, 10)"
final=$work/ref/checkpoints/ckpt-00000010.h5

# Resume from step 6 (mid-epoch) at 2, 1 and 3 ranks: bitwise the same.
for p in 2 1 3; do
  heed_train "$p" "$work/r$p" --resume "$work/ref/checkpoints/ckpt-00000006.h5"
  [ "$rc" -eq 0 ] || fail "resume on $p ranks: exit $rc: $(tail -3 "$work/r$p.log")"
  grep -q "resuming from .*ckpt-00000006.h5 (step 6, epoch 0, written by 2 ranks)" "$work/r$p.log" ||
    fail "resume on $p ranks did not say where it resumed"
  same_params "$final" "$work/r$p/checkpoints/ckpt-00000010.h5" ||
    fail "2 ranks -> $p ranks: parameters after step 10 differ from the uninterrupted run"
  if [ "$p" = 2 ]; then
    diff <(train_losses "$work/ref" | sed -n '7,$p') <(train_losses "$work/r2") >/dev/null ||
      fail "resumed losses differ from the uninterrupted run"
  fi
done

# --resume auto skips a truncated and a corrupt checkpoint, naming them.
mkdir -p "$work/auto"
cp -r "$work/ref/checkpoints" "$work/auto/"
newest=$work/auto/checkpoints/ckpt-00000010.h5
second=$work/auto/checkpoints/ckpt-00000009.h5
truncate -s 5000 "$newest"
# Flip one byte inside /optim/adam_v's data (h5ls gives its offset).
off=$(h5ls -va "$second/optim/adam_v" 2>/dev/null | sed -n 's/.*Contiguous.*at \([0-9]*\).*/\1/p;s/^ *Address: *\([0-9]*\)$/\1/p' | head -1)
if [ -z "$off" ]; then
  off=$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['optim/adam_v'].id.get_offset())" "$second")
fi
printf '\x7f' | dd of="$second" bs=1 seek=$((off + 100)) conv=notrunc status=none
heed_train 2 "$work/auto" --resume auto --steps 12
[ "$rc" -eq 0 ] || fail "--resume auto with broken checkpoints: exit $rc: $(tail -3 "$work/auto.log")"
grep -q "skipping broken checkpoint .*ckpt-00000010.h5" "$work/auto.log" ||
  fail "no warning naming the truncated checkpoint"
grep -q "skipping broken checkpoint .*ckpt-00000009.h5: .*checksum mismatch" "$work/auto.log" ||
  fail "no warning naming the corrupt checkpoint"
grep -q "resuming from .*ckpt-00000006.h5" "$work/auto.log" || fail "auto did not take step 6"

# An explicit broken path and another architecture are refused with exit 2.
heed_train 2 "$work/bad1" --resume "$newest"
[ "$rc" -eq 2 ] && grep -q "cannot open" "$work/bad1.log" ||
  fail "truncated --resume PATH: exit $rc (want 2): $(tail -2 "$work/bad1.log")"
heed_train 2 "$work/bad2" --resume "$final" --dim 8
[ "$rc" -eq 2 ] && grep -q "another architecture" "$work/bad2.log" ||
  fail "another architecture: exit $rc (want 2): $(tail -2 "$work/bad2.log")"
finish "resume is exact at 2 -> 2, 1, 3 ranks; broken checkpoints skipped or refused"
