#!/usr/bin/env bash
# Bad input to `heed train` under mpirun -n 2: every case exits with code 2
# (all ranks together, no hang) and the message names the option or file.
set -uo pipefail
heed=$1
work=$2
mkdir -p "$work"
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
failures=0

expect() { # expect CODE PATTERN -- ARGS...
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$(timeout 120 mpirun "${flags[@]}" -n 2 "$heed" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: heed $* -> exit $rc (want $code), output:"
    echo "$out" | tail -5
    failures=$((failures + 1))
  else
    echo "ok: heed $* -> exit $rc, says: $(grep -m1 -- "$pattern" <<<"$out")"
  fi
}

echo "not hdf5" >"$work/not.h5"
printf '[train]\nlearning-rate = 3\n' >"$work/typo.ini"
expect 2 "unknown option 'lr-typo'" -- train --model vit --data x.h5 --lr-typo 1
expect 2 "unknown model 'nope'" -- train --model nope --data tests/fixtures/blocks.h5
expect 2 "missing.h5" -- train --model vit --data "$work/missing.h5"
expect 2 "not.h5" -- train --model vit --data "$work/not.h5"
expect 2 "expects a number" -- train --model vit --data x.h5 --lr fast
expect 2 "learning-rate" -- train --config "$work/typo.ini" --model vit --data x.h5
expect 2 "--model is required" -- train --data x.h5
expect 2 "--class-balance must be in \[0, 2\]" -- train --model vit --data x.h5 --class-balance -1
expect 2 "--comm-thread must be auto, on or off" -- train --model vit --data x.h5 --comm-thread maybe
expect 2 "--sync-bn and --comm-thread on do not go together" -- train --model resnet20 --data x.h5 --sync-bn --comm-thread on
[ "$failures" -eq 0 ] && echo "OK: all bad-input cases exit 2 with a clear message"
exit "$failures"
