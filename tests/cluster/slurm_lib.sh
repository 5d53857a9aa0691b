# shellcheck shell=bash
# A one-node Slurm cluster on this machine, for the tests: munged,
# slurmctld and slurmd run as root from a private folder with a generated
# slurm.conf (no systemd, no cgroups: proctrack/linuxproc, task/none), on
# random ports, so several test runs and a real Slurm can coexist.
# cred_expire=5: a requeued job waits cred_expire + 1 s before it may start
# again (120 s by default) and then for the next scheduling pass (60 s),
# which would make the preemption test slow.
#
#   slurm_up DIR [NAME:ADDR:NETNS ...]
#                    start everything; exports SLURM_CONF; returns 77 (skip)
#                    when this machine cannot run it, with the reason printed.
#                    Without node specs: one node, this machine, on 127.0.0.1.
#                    With them: one slurmd per node inside network namespace
#                    NETNS with host name NAME at ADDR (tests/cluster/
#                    netns_lib.sh), slurmctld here at $SL_CTLD_ADDR.
#   slurm_wait JOB S wait up to S seconds for JOB to end (polling every
#                    0.5 s: sbatch --wait backs off to tens of seconds);
#                    sets job_state and job_exit ("0:0"); 0 when COMPLETED
#   slurm_down       stop what slurm_up started (by pid), keep the logs
#   slurm_logs       print the tails of the daemon logs (for failures)

slurm_up() {
  sl_dir=$1
  shift
  local specs=("$@")
  [ "$(id -u)" = 0 ] || { echo "SKIP: the Slurm test runs the daemons as root; run it as root"; return 77; }
  local b
  for b in munged slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || {
      echo "SKIP: $b not found: install slurm-wlm and munge (scripts/setup.sh --with-slurm)"
      return 77
    }
  done
  rm -rf "$sl_dir"
  mkdir -p "$sl_dir/state" "$sl_dir/spool" "$sl_dir/log"
  mkdir -m 0755 "$sl_dir/munge"
  dd if=/dev/urandom of="$sl_dir/munge/munge.key" bs=1024 count=1 2>/dev/null
  chmod 0400 "$sl_dir/munge/munge.key"
  munged -f --key-file="$sl_dir/munge/munge.key" --socket="$sl_dir/munge/sock" \
    --pid-file="$sl_dir/munge/munged.pid" --log-file="$sl_dir/log/munged.log" \
    --seed-file="$sl_dir/munge/seed" || { echo "FAIL: munged did not start"; return 1; }
  local host cpus port ctld_addr=127.0.0.1 spec name addr ns nodes=""
  host=$(hostname -s)
  [ "${#specs[@]}" -gt 0 ] && ctld_addr=${SL_CTLD_ADDR:?set SL_CTLD_ADDR to the address of slurmctld for the namespaces}
  cpus=$(nproc)
  [ "$cpus" -ge 2 ] || cpus=2 # the job asks for 2 tasks; config_overrides lets a 1-core box run it
  # Below the ephemeral range (32768-60999), and not bound by anyone now.
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 12000))
    port_free "$port" && port_free $((port + 1)) && break
  done
  cat >"$sl_dir/slurm.conf" <<CONF
ClusterName=heedtest
SlurmctldHost=$host($ctld_addr)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sl_dir/munge/sock,cred_expire=5
CredType=cred/munge
StateSaveLocation=$sl_dir/state
SlurmdSpoolDir=$sl_dir/spool/%n
SlurmctldPidFile=$sl_dir/slurmctld.pid
SlurmdPidFile=$sl_dir/slurmd-%n.pid
SlurmctldLogFile=$sl_dir/log/slurmctld.log
SlurmdLogFile=$sl_dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
InactiveLimit=0
KillWait=10
MinJobAge=600
CONF
  if [ "${#specs[@]}" -eq 0 ]; then
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN" >>"$sl_dir/slurm.conf"
    nodes=$host
  else
    for spec in "${specs[@]}"; do
      IFS=: read -r name addr ns <<<"$spec"
      echo "NodeName=$name NodeAddr=$addr CPUs=$cpus State=UNKNOWN" >>"$sl_dir/slurm.conf"
      nodes+=${nodes:+,}$name
    done
  fi
  echo "PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP" >>"$sl_dir/slurm.conf"
  export SLURM_CONF=$sl_dir/slurm.conf
  # If this test is killed (a ctest timeout) before slurm_down runs, a
  # guardian stops the daemons once the test's shell is gone.
  (
    while kill -0 $$ 2>/dev/null; do sleep 2; done
    slurm_down
  ) </dev/null >/dev/null 2>&1 &
  slurmctld -c || { echo "FAIL: slurmctld did not start"; slurm_logs; return 1; }
  if [ "${#specs[@]}" -eq 0 ]; then
    mkdir -p "$sl_dir/spool/$host"
    slurmd || { echo "FAIL: slurmd did not start"; slurm_logs; return 1; }
  else
    for spec in "${specs[@]}"; do
      IFS=: read -r name addr ns <<<"$spec"
      mkdir -p "$sl_dir/spool/$name"
      # nsenter --net, not ip netns exec: that remounts /sys for the
      # namespace, without the cgroup file system slurmd insists on reading.
      nsenter --net="/run/netns/$ns" unshare --uts /bin/sh -c "hostname $name; exec slurmd" ||
        { echo "FAIL: slurmd $name did not start in $ns"; slurm_logs; return 1; }
    done
  fi
  local i want
  want=$(tr ',' '\n' <<<"$nodes" | wc -l)
  for i in $(seq 60); do
    if [ "$(sinfo -h -N -o %t 2>/dev/null | grep -c idle)" = "$want" ]; then
      echo "slurm: node(s) $nodes idle (slurmctld at $ctld_addr port $port)"
      return 0
    fi
    sleep 0.5
  done
  echo "FAIL: the Slurm node(s) $nodes did not become idle in 30 s"
  sinfo 2>&1
  slurm_logs
  return 1
}

slurm_wait() {
  local job=$1 secs=$2 i info
  job_state= job_exit=
  for ((i = 0; i < secs * 2; i++)); do
    info=$(scontrol show job "$job" 2>/dev/null)
    job_state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
    job_exit=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$info")
    case $job_state in
      COMPLETED) return 0 ;;
      FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 1 ;;
    esac
    sleep 0.5
  done
  return 1
}

# port_free PORT: no TCP socket on this machine uses PORT (any state).
port_free() {
  local hex
  hex=$(printf ':%04X ' "$1")
  ! grep -q -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

slurm_down() {
  [ -n "${sl_dir:-}" ] || return 0
  local f
  for f in "$sl_dir"/slurmd-*.pid "$sl_dir/slurmctld.pid" "$sl_dir/munge/munged.pid"; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 1
  return 0
}

slurm_logs() {
  local f
  for f in "$sl_dir"/log/*.log; do
    echo "---- $f"
    tail -n 20 "$f"
  done
}
