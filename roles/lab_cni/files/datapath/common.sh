# shellcheck shell=bash
# What both models share: the pods' network namespaces, taking down everything either model built,
# the rule counters the benchmark reads, and the Service records. Sourced by netlab-datapath.

# The Service records, one file per name, port and protocol.
SERVICES=/var/lib/netlab/services
# Chains of the modelled components; "down" removes every one of them, whichever model made it.
OURS='cali-|KUBE-|FLANNEL-|CILIUM_|NETLAB-MASQ'

# drop_rules TABLE REGEX: delete the rules that iptables-save prints matching REGEX.
drop_rules() {
  local rule
  # eval: a rule's words come quoted as iptables-save prints them (comments with spaces).
  iptables-save -t "$1" | { grep -E -e "$2" || true; } | sed 's/^-A/-D/' \
    | while read -r rule; do eval "iptables -t $1 $rule"; done
}

# remove_chains TABLE REGEX: flush every chain whose name matches, then delete them (they may
# jump to each other, so none goes before all are empty).
remove_chains() {
  local chain
  for chain in $(iptables-save -t "$1" | grep -oE "^:($2)[^ ]*" | tr -d :); do iptables -t "$1" -F "$chain"; done
  for chain in $(iptables-save -t "$1" | grep -oE "^:($2)[^ ]*" | tr -d :); do iptables -t "$1" -X "$chain"; done
}

# The iptables rules and chains of either model, in one table.
iptables_down() {
  drop_rules "$1" "^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) (.*-[jg] ($OURS)|.*netlab:)"
  remove_chains "$1" "$OURS"
}

# The cgroup (v2) every process of this node runs in: PID 1's, less systemd's init.scope.
# On a VM that is the root; in a lab container it is the container's own, never the machine's.
node_cgroup() {
  local mount path
  mount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  path=$(awk -F: '$1 == "0" { print $3 }' /proc/1/cgroup)
  echo "$mount${path%/init.scope}"
}

# A short stable name for chains, as kube-proxy hashes its chain names (kube-proxy.sh, kube-proxy-nft.sh).
digest() { printf '%s' "$1" | sha256sum | cut -c1-16 | tr a-f A-F; }

# The Cilium model's programs and maps (cilium.sh, socket-lb.sh), if any.
bpf_down() {
  local hook
  for hook in connect4 sendmsg4 recvmsg4; do
    if [[ -e $PINS/netlab/sock_lb/sock_$hook ]]; then
      bpftool cgroup detach "$(node_cgroup)" "$hook" pinned "$PINS/netlab/sock_lb/sock_$hook" || true
    fi
  done
  # Either attachment (tc_attach in cilium.sh); the pods' devices and the tunnel's go with them.
  tc filter del dev "$NIC" ingress pref 1 2>/dev/null || true
  if bpftool -j net show dev "$NIC" 2>/dev/null | grep -q '"kind":"tcx/ingress"'; then
    bpftool net detach tcx_ingress dev "$NIC"
  fi
  rm -rf "$PINS"/netlab "$PINS"/netlab_*
}

down() {
  local ns dev
  bpf_down
  for ns in $(ip netns list | awk '/^pod[0-9]+/ { print $1 }'); do
    ip netns delete "$ns"
  done
  for dev in cni0 flannel.1 cilium_vxlan cilium_host; do
    if ip link show "$dev" >/dev/null 2>&1; then ip link delete "$dev"; fi
  done
  ip route flush root "$CLUSTER_CIDR"
  ip route del unreachable "$SERVICE_CIDR" 2>/dev/null || true
  iptables_down filter
  iptables_down nat
  iptables_down raw
  # kube-proxy's nftables mode keeps all of it in one table (kube-proxy-nft.sh).
  nft delete table ip kube-proxy 2>/dev/null || true
  # BIG TCP's sizes on the node's interface back to the kernel's (cilium.sh, big_tcp_up); the pods' go with
  # them. An iproute2 older than 6.3 knows no such keyword, and its node no BIG TCP.
  ip link set "$NIC" gso_ipv4_max_size 65536 gro_ipv4_max_size 65536 2>/dev/null || true
}

# add_pod NAME HOST_DEVICE: a network namespace linked to the node by a veth pair.
add_pod() {
  ip netns add "$1"
  ip link add "$2" mtu "$MTU" type veth peer name eth0 mtu "$MTU" netns "$1"
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 up
  ip link set "$2" up
}

# Each peer's pod CIDR via the peer itself on the node's interface, no overlay: Cilium's
# autoDirectNodeRoutes and flannel's host-gw backend alike (both need the nodes on one L2 segment).
direct_routes() {
  local peer peer_ip peer_cidr
  for peer in "${PEERS[@]}"; do
    read -r _ peer_ip peer_cidr _ <<< "$peer"
    ip route replace "$peer_cidr" via "$peer_ip" dev "$NIC"
  done
}

# Every counted rule carries a netlab: comment; netlab-counters reads them. routed-to-peer: what the host
# forwards out of its interface to another node's pods as it is, not encapsulated (flannel's host-gw, Cilium's
# native routing under legacy host routing).
count_rules() {
  iptables -I FORWARD 1 -o "$NIC" -d "$CLUSTER_CIDR" -m comment --comment netlab:routed-to-peer
  iptables -I FORWARD 1 -m comment --comment netlab:forward
  iptables -t nat -I PREROUTING 1 -m comment --comment netlab:nat-prerouting
}

# A Service is recorded (as the API server keeps it), one file per name, port and protocol (a
# Service's ports), and served by the model (service_up and service_down: kube-proxy.sh or
# socket-lb.sh); "up" serves the recorded ones again, so a rebuilt or switched datapath keeps them.
# A record holds the words of its service-add: NAME VIP PORT PROTO BACKEND_IP:PORT...
service_add() {
  local record="$SERVICES/$1.$3.$4" entry old
  entry="$*"
  if [[ -f $record ]] && [[ $(cat "$record") == "$entry" ]]; then
    echo unchanged
    return
  fi
  if [[ -f $record ]]; then
    read -ra old < "$record"
    service_down "${old[@]}"
  fi
  mkdir -p "$SERVICES"
  echo "$entry" > "$record"
  service_up "$@"
  echo added
}

service_del() {
  local record words
  # NAME.PROTO: a record of a model before Services had several ports.
  for record in "$SERVICES/$1".[0-9]*.tcp "$SERVICES/$1".[0-9]*.udp "$SERVICES/$1".tcp "$SERVICES/$1".udp; do
    if [[ -f $record ]]; then
      read -ra words < "$record"
      service_down "${words[@]}"
      rm -f "$record"
      echo deleted
    fi
  done
}

services_up() {
  local record words
  for record in "$SERVICES"/*; do
    if [[ -f $record ]]; then
      read -ra words < "$record"
      service_up "${words[@]}"
    fi
  done
}
