#!/usr/bin/env bash
# A stand-in for `heed train` that keeps heed's preemption contract and
# nothing else, so the Slurm signal/requeue path (slurm/train.sbatch) is
# tested on its own: `train --help` lists --resume; `train ... --out DIR
# --resume auto` exits 0 at once when DIR/checkpoints/ holds a checkpoint
# ("resumed"), else it "trains" until SIGUSR1 or SIGTERM, then rank 0
# writes DIR/checkpoints/fake (heed's checkpoint is one collective file)
# and every rank exits 3.
[ "${1:-}" = train ] || exit 2
shift
if [ "${1:-}" = --help ]; then
  echo "  --resume               auto or PATH"
  exit 0
fi
out=
while [ $# -gt 0 ]; do
  [ "$1" = --out ] && out=$2
  shift
done
rank=${OMPI_COMM_WORLD_RANK:-0}
if [ -e "$out/checkpoints/fake" ]; then
  echo "fake heed rank $rank: resumed from $out/checkpoints"
  exit 0
fi
mkdir -p "$out/checkpoints"
stop() {
  kill "$sleeper" 2>/dev/null
  if [ "$rank" = 0 ]; then
    touch "$out/checkpoints/fake"
    echo "fake heed: signal $1: checkpoint written"
  else
    sleep 0.5 # heed's ranks exit after the collective checkpoint: rank 0 first here
  fi
  echo "fake heed rank $rank: exit 3"
  exit 3
}
trap 'stop USR1' USR1
trap 'stop TERM' TERM
echo "fake heed rank $rank: training"
touch "$out/training-rank-$rank"
# Short sleeps in the background: a trapped signal ends `wait` at once, and
# a sleeper orphaned when mpirun kills this rank ends within a second (Slurm
# waits for every process of the job before it requeues it).
sleeper=
for _ in $(seq 120); do
  sleep 1 &
  sleeper=$!
  wait "$sleeper"
done
echo "fake heed rank $rank: never preempted"
exit 1
