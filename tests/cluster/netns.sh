#!/usr/bin/env bash
# Several hosts on this machine: network namespaces (each its own network
# stack and, through unshare --uts, its own host name) joined by veth pairs
# and a bridge. Open MPI's mpirun starts its daemons through an rsh agent
# that runs `ip netns exec HOST` instead of ssh, with the TCP transport only
# (no shared memory) on the bridge's subnet. Checks:
#  - heed doctor sees N ranks on N hosts;
#  - heed train across the hosts gives exactly the metrics (losses, eval
#    results) of the same run with N ranks on one host;
#  - the traffic went over the bridge (bytes counted on the veth).
# Skips (77) when not root or this machine refuses network namespaces.
heed=$1
work=$2
hosts=${3:-2}
. "$(dirname "$0")/lib.sh"

. "$here/netns_lib.sh"
trap netns_down EXIT
netns_up "$hosts"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
: >"$work/hostfile"
agent_cases=""
for ((i = 0; i < hosts; i++)); do
  echo "$net.$((i + 1)) slots=1" >>"$work/hostfile"
  agent_cases+="  $net.$((i + 1))) ns=${nss[$i]} name=h$i ;;"$'\n'
done

# The rsh agent: mpirun calls it as `agent [ssh options] HOST COMMAND...`.
cat >"$work/agent.sh" <<AGENT
#!/bin/sh
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
host=\$1
shift
case \$host in
$agent_cases  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts /bin/sh -c "hostname \$name; \$*"
AGENT
chmod +x "$work/agent.sh"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Interface selection, as on a real cluster: the TCP transport and mpirun's
# own wire-up (oob) on the cluster network only.
across=(--hostfile "$work/hostfile" -n "$hosts" --bind-to none --mca plm_rsh_agent "$work/agent.sh"
        --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24")
in_h0() { in_host 0 "$@"; }

out=$(in_h0 timeout 120 mpirun "${across[@]}" "$heed" doctor --out "$work/runs" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "doctor across $hosts hosts: exit $rc: $out"
grep -q "$hosts ranks on $hosts hosts" <<<"$out" || fail "doctor does not see $hosts hosts: $out"
echo "ok: heed doctor sees $hosts ranks on $hosts hosts"

rx_before=$(ip netns exec "${nss[1]}" cat /sys/class/net/eth0/statistics/rx_bytes)
rm -rf "$work/across" "$work/local"
out=$(in_h0 timeout 120 mpirun "${across[@]}" "$heed" train "${train_args[@]}" --steps 40 \
  --threads 1 --out "$work/across" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "training across $hosts hosts: exit $rc: $out"
rx_after=$(ip netns exec "${nss[1]}" cat /sys/class/net/eth0/statistics/rx_bytes)
out=$(timeout 120 mpirun "${mpi_flags[@]}" -n "$hosts" "$heed" train "${train_args[@]}" --steps 40 \
  --threads 1 --out "$work/local" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "training on one host: exit $rc: $out"

# Everything but the timings must agree, to the last digit.
strip() { sed -E 's/"(samples_per_s|elapsed_s)":[0-9.e+-]+,?//g' "$1"; }
strip "$work/across/metrics.jsonl" >"$work/across.txt"
strip "$work/local/metrics.jsonl" >"$work/local.txt"
[ "$(grep -c '"kind":"train"' "$work/local.txt")" -ge 4 ] || fail "too few train lines in $work/local/metrics.jsonl"
diff "$work/across.txt" "$work/local.txt" >/dev/null ||
  fail "metrics differ between $hosts hosts and one host: $(diff "$work/across.txt" "$work/local.txt" | head -6)"
echo "ok: $hosts ranks on $hosts hosts give the same metrics as on one host ($(wc -l <"$work/local.txt") lines)"
rx=$((rx_after - rx_before))
[ "$rx" -gt 100000 ] || fail "only $rx bytes reached host h1 over the bridge: did MPI use the network?"
echo "ok: host h1 received $rx bytes over the bridge during training"
echo "OK: $hosts hosts as network namespaces"
