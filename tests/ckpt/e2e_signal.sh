#!/usr/bin/env bash
# Preemption and the checkpoint tools:
#  - a signal on one rank (HEED_DEBUG_SIGNAL_STEP: the last rank raises
#    SIGUSR1 during step 5) stops all ranks after that step with a
#    checkpoint and exit 3; --resume auto then ends bitwise like an
#    uninterrupted run;
#  - a real SIGUSR1 sent to mpirun (forwarded to the ranks) gives exit 3
#    and a checkpoint;
#  - heed export writes the parameters alone (read back with h5py), and
#    heed eval --ckpt reproduces the run's own test accuracy.
source "$(dirname "$0")/common.sh" "$@"

heed_train 2 "$work/ref"
[ "$rc" -eq 0 ] || fail "reference run exit $rc: $(tail -3 "$work/ref.log")"
final=$work/ref/checkpoints/ckpt-00000010.h5
[ -f "$final" ] || fail "no final checkpoint $final"

HEED_DEBUG_SIGNAL_STEP=4 heed_train 2 "$work/sig"
[ "$rc" -eq 3 ] || fail "signalled run: exit $rc, want 3: $(tail -3 "$work/sig.log")"
grep -q "preempted by a signal after step 5; checkpoint written, exit 3" "$work/sig.log" ||
  fail "no preemption message"
[ -f "$work/sig/checkpoints/ckpt-00000005.h5" ] || fail "no checkpoint of step 5"
heed_train 2 "$work/sig" --resume auto
[ "$rc" -eq 0 ] || fail "resume after preemption: exit $rc: $(tail -3 "$work/sig.log")"
grep -q "resuming from .*ckpt-00000005.h5" "$work/sig.log" || fail "did not resume from step 5"
same_params "$final" "$work/sig/checkpoints/ckpt-00000010.h5" ||
  fail "preempted + resumed parameters differ from the uninterrupted run"

# A real SIGUSR1 to mpirun (not through `timeout`, which would die of it),
# once the run is training; a watchdog ends it if the signal is lost.
mpirun "${mpi_flags[@]}" -n 2 "$heed" train "${train_flags[@]}" --steps 1000000 \
  --out "$work/real" >"$work/real.log" 2>&1 &
pid=$!
(for _ in $(seq 1000); do
  sleep 0.1
  kill -0 "$pid" 2>/dev/null || exit 0
done
kill -KILL "$pid") >/dev/null 2>&1 &
for _ in $(seq 300); do
  [ -s "$work/real/metrics.jsonl" ] && break
  sleep 0.1
done
kill -USR1 "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 3 ] || fail "SIGUSR1 to mpirun: exit $rc, want 3: $(tail -3 "$work/real.log")"
ls "$work/real/checkpoints/"ckpt-*.h5 >/dev/null 2>&1 || fail "SIGUSR1: no checkpoint written"

# Export and eval.
"$heed" export "$final" --out "$work/model.h5" >"$work/export.log" 2>&1 ||
  fail "heed export: $(cat "$work/export.log")"
/usr/bin/python3 - "$work/model.h5" "$final" <<'PY' || fail "the exported file does not read back"
import sys, h5py, numpy as np
m, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert m.attrs["model"] in (b"vit", "vit"), m.attrs["model"]
assert set(m["params"]) == set(c["params"]) and len(m["params"]) > 5
for k in m["params"]:
    assert m["params"][k].dtype == np.float32
    assert np.array_equal(m["params"][k][()], c["params"][k][()]), k
assert c["params/head.weight"].shape[0] == 10
assert c["optim/adam_m"].shape == (int(c.attrs["numel"]),)
print("h5py reads", len(m["params"]), "parameters")
PY
want=$(sed -n 's/^eval test at step 10: loss \([0-9.]*\) accuracy \([0-9.]*\).*/\1 \2/p' "$work/ref.log")
got=$(timeout 60 mpirun "${mpi_flags[@]}" -n 2 "$heed" eval --ckpt "$final" --data "$data" --split test 2>&1 |
  sed -n 's/^eval test of .* (step 10): loss \([0-9.]*\) accuracy \([0-9.]*\).*/\1 \2/p')
[ -n "$want" ] && [ "$want" = "$got" ] || fail "heed eval says '$got', the run said '$want'"
"$heed" eval --ckpt "$work/missing.h5" --data "$data" >/dev/null 2>&1
[ $? -eq 2 ] || fail "heed eval of a missing checkpoint should exit 2"
"$heed" export "$work/missing.h5" --out "$work/x.h5" >/dev/null 2>&1
[ $? -eq 2 ] || fail "heed export of a missing checkpoint should exit 2"
finish "preemption exits 3 after a checkpoint and resumes exactly; export and eval work"
