#!/usr/bin/env bash
# Preemption under Slurm (tests/cluster/slurm_lib.sh): slurm/train.sbatch is
# submitted; once the job trains and has a checkpoint, Slurm's preemption
# signal is sent the way --signal=B:USR1@120 sends it (to the batch shell:
# scancel --signal=USR1 --batch). The script passes it to mpirun and the
# ranks, heed checkpoints and exits 3, the script requeues the job, and the
# requeued job (restart 1) resumes from the checkpoint with --resume auto
# and must end with exactly the metrics of an uninterrupted run.
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"
. "$here/slurm_lib.sh"
repo=$(cd "$here/../.." && pwd)

args="--steps 40 --batch-size 32 --dim 16 --depth 1 --heads 2 --ffn 32 --patch 4 --log-every 10 --lr 3e-3 --warmup 0"
args+=" --ckpt-every 5 --keep 3 --collective-timeout 60"

tmp=$(mktemp -d /tmp/heed-slurm.XXXXXX)
cleanup() {
  [ -n "${job:-}" ] && scancel "$job" 2>/dev/null
  slurm_down
  mkdir -p "$work/logs" && cp -r "$tmp/slurm/log/." "$work/logs/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
slurm_up "$tmp/slurm"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mpirun sleeps ~2x this after a rank exits 3 (train.sbatch's default is 20).
export OMPI_MCA_odls_base_sigkill_timeout=2

rm -rf "$work/ref"
# shellcheck disable=SC2086 # $args is a list of options
out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train --model vit --data "$tiny_data" \
  $args --out "$work/ref" 2>&1) || fail "the uninterrupted reference run failed: $out"

rm -rf "$work/run" "$work/job.out"
# sleep:0:12 holds rank 0 at step 12 for up to 10 s, after the checkpoints
# of steps 5 and 10: the signal arrives at a known point, and a job that
# restarted from the beginning instead of resuming would sleep there twice.
export HEED_BIN=$heed HEED_MODEL=vit HEED_DATA=$tiny_data HEED_OUT=$work/run HEED_ARGS=$args
export HEED_DEBUG_FAULT=sleep:0:12
job=$(sbatch --parsable --output="$work/job.out" --chdir="$work" "$repo/slurm/train.sbatch") ||
  fail "sbatch failed"
echo "submitted job $job"
ready=0
for _ in $(seq 240); do
  grep -q "rank 0 sleeps 10 s at step 12" "$work/job.out" 2>/dev/null &&
    [ -n "$(ls "$work/run/checkpoints" 2>/dev/null)" ] && ready=1
  [ "$ready" = 1 ] && break
  sleep 0.25
done
[ "$ready" = 1 ] || { cat "$work/job.out"; slurm_logs; fail "the job did not reach the preemption point in 60 s"; }
scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch $job failed"
echo "sent USR1 to the batch shell of job $job"

state=
for _ in $(seq 360); do
  state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  restarts=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
  [ "$state" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] && break
  case $state in FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  sleep 0.5
done
echo "job $job: $state after $restarts restart(s), ${SECONDS}s into the test"
echo "---- job output"
grep -v '^step ' "$work/job.out" | head -60
[ "$state" = COMPLETED ] || { slurm_logs; fail "job $job ended $state (restarts ${restarts:-?}), want COMPLETED after a requeue"; }
grep -q "preempted after a checkpoint; requeueing job $job" "$work/job.out" || fail "the job was not requeued by the script"
grep -q "^heed: job $job (restart 1)" "$work/job.out" || fail "no restart 1 in the job log"
grep -q "^heed: finished with exit code 0" "$work/job.out" || fail "the requeued job did not finish with 0"
[ "$(grep -c 'rank 0 sleeps 10 s at step 12' "$work/job.out")" = 1 ] ||
  fail "step 12 ran twice: the requeued job did not resume after the preemption checkpoint"
last() { grep -E "\"kind\":\"$1\",\"step\":40," "$2" | tail -1 | sed -E 's/"(samples_per_s|elapsed_s)":[0-9.e+-]+,?//g'; }
for kind in train eval; do
  [ -n "$(last $kind "$work/ref/metrics.jsonl")" ] || fail "the reference has no $kind line at step 40"
  [ "$(last $kind "$work/run/metrics.jsonl")" = "$(last $kind "$work/ref/metrics.jsonl")" ] ||
    fail "$kind at step 40 differs from the uninterrupted run: $(last $kind "$work/run/metrics.jsonl") vs $(last $kind "$work/ref/metrics.jsonl")"
done
echo "ok: the preempted and requeued job ends exactly like an uninterrupted one"
echo "OK: USR1 -> checkpoint -> exit 3 -> requeue -> resumed"
