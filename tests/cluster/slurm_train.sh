#!/usr/bin/env bash
# A Slurm cluster on this machine (tests/cluster/slurm_lib.sh): submit
# slurm/train.sbatch (2 tasks; LAUNCHER mpirun inside the allocation, or
# srun --mpi=pmix), wait for it,
# and check that it trained: exit 0, the job log, a test accuracy, the run
# directory. Skips (77) when not root or Slurm is not installed.
heed=$1
work=$2
launcher=${3:-mpirun}
. "$(dirname "$0")/lib.sh"
. "$here/slurm_lib.sh"
repo=$(cd "$here/../.." && pwd)

tmp=$(mktemp -d /tmp/heed-slurm.XXXXXX) # short: munge's socket path has a length limit
cleanup() {
  slurm_down
  mkdir -p "$work/logs" && cp -r "$tmp/slurm/log/." "$work/logs/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
slurm_up "$tmp/slurm"
rc=$?
[ "$rc" = 0 ] || exit "$rc"

rm -rf "$work/run" "$work/job.out"
export HEED_LAUNCHER=$launcher HEED_BIN=$heed HEED_MODEL=vit HEED_DATA=$tiny_data HEED_OUT=$work/run
export HEED_ARGS="--steps 40 --batch-size 32 --dim 16 --depth 1 --heads 2 --ffn 32 --patch 4 --log-every 10 --lr 3e-3 --warmup 0"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
job=$(sbatch --parsable --output="$work/job.out" --chdir="$work" "$repo/slurm/train.sbatch") || fail "sbatch failed"
echo "submitted job $job"
slurm_wait "$job" 180
rc=$?
echo "---- job output"
cat "$work/job.out" 2>/dev/null | grep -v '^step ' | head -40
[ "$rc" = 0 ] || { slurm_logs; fail "job $job ended $job_state (exit code $job_exit)"; }
grep -q "^heed: job [0-9]* (restart 0) on .*: 2 ranks x 1 threads" "$work/job.out" ||
  fail "the job log does not show 2 ranks"
grep -q "heed train: vit on .* 2 ranks x 1 thread" "$work/job.out" || fail "heed did not start 2 ranks"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$work/job.out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }' || fail "test accuracy '$acc' < 0.9"
grep -q "^heed: finished with exit code 0" "$work/job.out" || fail "the script did not finish cleanly"
[ "$(grep -c '"kind":"train"' "$work/run/metrics.jsonl")" -ge 4 ] || fail "too few train lines in metrics.jsonl"
for f in config.ini metrics.jsonl curves.png; do
  [ -s "$work/run/$f" ] || fail "run directory lacks $f"
done
echo "OK: Slurm job trained on 2 ranks started by $launcher (test accuracy $acc)"
