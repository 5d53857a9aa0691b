# shellcheck shell=bash
# Hosts on this machine: network namespaces heed<ID>-h0..h<N-1>, each with
# an eth0 at $net.<i+1>/24 on a veth pair into the bridge hbr<ID>, which has
# $net.254 on the machine's own side (so daemons there can be reached).
#
#   netns_up N     create them; returns 77 (skip) with the reason printed
#                  when this machine refuses (not root, no iproute2, no
#                  network namespaces)
#   netns_down     delete what netns_up made (also on EXIT via the caller)
#   in_host I CMD  run CMD in host I with its own host name h<I>
# Sets: net (the /24 prefix), br, nss (namespace names).

netns_up() {
  local hosts=$1 i ns err
  [ "$(id -u)" = 0 ] || { echo "SKIP: network namespaces need root"; return 77; }
  command -v ip >/dev/null || { echo "SKIP: ip (iproute2) not found: scripts/setup.sh --with-slurm installs it"; return 77; }
  command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) not found"; return 77; }
  local id try
  nss=()
  br=
  # A free name and subnet: tests may run at the same time.
  for try in 1 2 3 4 5 6 7 8; do
    id=$((RANDOM % 10000))
    net=10.233.$((RANDOM % 250))
    ip -o addr 2>/dev/null | grep -q " $net\." && continue
    if err=$(ip link add "hbr$id" type bridge 2>&1); then
      br=hbr$id
      break
    fi
    grep -qi "exists" <<<"$err" || { echo "SKIP: cannot create a bridge: ip link add hbr$id type bridge: $err"; return 77; }
  done
  [ -n "$br" ] || { echo "FAIL: no free bridge name or subnet after $try tries"; return 1; }
  ip link set "$br" up && ip addr add "$net.254/24" dev "$br" || { echo "FAIL: configuring $br"; return 1; }
  for ((i = 0; i < hosts; i++)); do
    ns=heed$id-h$i
    err=$(ip netns add "$ns" 2>&1) || { echo "SKIP: cannot create a network namespace: ip netns add $ns: $err"; return 77; }
    nss+=("$ns")
    err=$(ip link add "hv$id$i" type veth peer name eth0 netns "$ns" 2>&1) ||
      { echo "SKIP: cannot create a veth pair into $ns: $err"; return 77; }
    ip link set "hv$id$i" master "$br" up &&
      ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0 &&
      ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || { echo "FAIL: configuring $ns"; return 1; }
  done
  return 0
}

netns_down() {
  local ns
  for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null; done
  [ -n "${br:-}" ] && ip link del "$br" 2>/dev/null
  return 0
}

in_host() {
  local i=$1
  shift
  ip netns exec "${nss[$i]}" unshare --uts /bin/sh -c "hostname h$i; exec \"\$@\"" sh "$@"
}
