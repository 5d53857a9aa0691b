#!/usr/bin/env bash
# A two-node Slurm cluster on this machine: the nodes are network namespaces
# (tests/cluster/netns_lib.sh), each running its own slurmd with its own
# host name; slurmctld and munged run on the machine itself, reached over
# the bridge. slurm/train_multinode.sbatch is submitted for 2 nodes x 1
# task with HEED_IFACE set to the bridge's subnet: mpirun starts its daemon
# on the second node through Slurm (srun), the ranks talk TCP over the
# bridge. The job must finish with exactly the metrics of the same 2 ranks
# on one host, and the second node must have received the traffic.
# Skips (77) when not root, or without Slurm or network namespaces.
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"
. "$here/netns_lib.sh"
. "$here/slurm_lib.sh"
repo=$(cd "$here/../.." && pwd)

tmp=$(mktemp -d /tmp/heed-slurm.XXXXXX)
cleanup() {
  slurm_down
  netns_down
  mkdir -p "$work/logs" && cp -r "$tmp/slurm/log/." "$work/logs/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns_up 2
rc=$?
[ "$rc" = 0 ] || exit "$rc"
export SL_CTLD_ADDR=$net.254
slurm_up "$tmp/slurm" "h0:$net.1:${nss[0]}" "h1:$net.2:${nss[1]}"
rc=$?
[ "$rc" = 0 ] || exit "$rc"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$work/run" "$work/local" "$work/job.out"
export HEED_BIN=$heed HEED_MODEL=vit HEED_DATA=$tiny_data HEED_OUT=$work/run
export HEED_ARGS="--steps 40 --batch-size 32 --dim 16 --depth 1 --heads 2 --ffn 32 --patch 4 --log-every 10 --lr 3e-3 --warmup 0"
export HEED_IFACE=$net.0/24 HEED_MPIRUN_ARGS="--mca btl tcp,self" HEED_SLURM_DIR=$repo/slurm
rx_before=$(ip netns exec "${nss[1]}" cat /sys/class/net/eth0/statistics/rx_bytes)
job=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 \
  --output="$work/job.out" --chdir="$work" "$repo/slurm/train_multinode.sbatch") || fail "sbatch failed"
echo "submitted job $job"
slurm_wait "$job" 180
rc=$?
rx_after=$(ip netns exec "${nss[1]}" cat /sys/class/net/eth0/statistics/rx_bytes)
echo "---- job output"
grep -v '^step ' "$work/job.out" 2>/dev/null | grep -v ' = ' | head -40
[ "$rc" = 0 ] || { slurm_logs; fail "job $job ended $job_state (exit code $job_exit)"; }
grep -q "^heed: job [0-9]* (restart 0) on h\[0-1\]: 2 ranks x 1 threads" "$work/job.out" ||
  fail "the job log does not show 2 ranks on h[0-1]"

out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" train "${train_args[@]}" --steps 40 \
  --threads 1 --out "$work/local" 2>&1) || fail "training on one host failed: $out"
strip() { sed -E 's/"(samples_per_s|elapsed_s)":[0-9.e+-]+,?//g' "$1"; }
[ "$(strip "$work/run/metrics.jsonl")" = "$(strip "$work/local/metrics.jsonl")" ] ||
  fail "metrics differ between 2 Slurm nodes and one host"
[ "$(grep -c '"kind":"train"' "$work/local/metrics.jsonl")" -ge 4 ] || fail "too few train lines"
rx=$((rx_after - rx_before))
[ "$rx" -gt 100000 ] || fail "only $rx bytes reached node h1: did the job use the network?"
echo "ok: 2 Slurm nodes give the same metrics as one host; h1 received $rx bytes over the bridge"
echo "OK: multi-node Slurm job"
