# shellcheck shell=bash
# The Cilium model: pods on lxc* veths behind cilium_host, the programs of files/bpf (built on the
# controller, loaded and pinned under /sys/fs/bpf) on the pods' devices, the node's interface and the
# tunnel, and ROUTING native (routingMode native, autoDirectNodeRoutes) or vxlan (routingMode tunnel),
# with HOST_ROUTING bpf or legacy (bpf.hostLegacyRouting), NOTRACK 1 for installNoConntrackIptablesRules,
# BIG_TCP_SIZE for enableIPv4BIGTCP.
# Services: socket-lb.sh (kubeProxyReplacement) or kube-proxy.sh.

# Bytes for bpftool, space-separated: an IPv4 address in network order, a number in host order.
hex_ip() {
  local a b c d
  IFS=. read -r a b c d <<< "$1"
  printf '%02x %02x %02x %02x' "$a" "$b" "$c" "$d"
}
hex_u32() { printf '%02x %02x %02x %02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# map_update MAP KEY_BYTES VALUE_BYTES: one entry of a pinned map, each side as hex_* prints it.
map_update() {
  local -a key value
  read -ra key <<< "$2"
  read -ra value <<< "$3"
  bpftool map update pinned "$PINS/$1" key hex "${key[@]}" value hex "${value[@]}"
}

# tc_attach DEVICE ingress|egress PINNED_PROGRAM: as Cilium attaches its tc programs. TC_ATTACH tcx: a tcx
# attachment (Cilium 1.16+, bpf.enableTCX, on a kernel with tcx, 6.6+), no qdisc; clsact: a cls_bpf filter in
# direct-action mode on a clsact qdisc, as Cilium before it or on an older kernel.
tc_attach() {
  if [[ $TC_ATTACH == tcx ]]; then
    bpftool net attach "tcx_$2" pinned "$3" dev "$1"
  else
    tc qdisc replace dev "$1" clsact
    tc filter replace dev "$1" "$2" pref 1 handle 1 bpf direct-action object-pinned "$3"
  fi
}

bpf_up() {
  local pod peer name ip peer_ip peer_cidr ifindex tunnel=0 flags=0
  # netlab.h's LEGACY_HOST_ROUTING: the programs hand pod traffic to the host's routing and netfilter.
  if [[ $HOST_ROUTING == legacy ]]; then flags=1; fi
  mountpoint -q "$PINS" || mount -t bpf bpf "$PINS"
  mkdir -p "$PINS/netlab"
  bpftool prog loadall "$LIB/bpf/from_container.o" "$PINS/netlab/from_container" type classifier
  bpftool prog loadall "$LIB/bpf/from_netdev.o" "$PINS/netlab/from_netdev" type classifier
  if [[ $ROUTING == vxlan ]]; then
    bpftool prog loadall "$LIB/bpf/from_overlay.o" "$PINS/netlab/from_overlay" type classifier
    tunnel=$(cat /sys/class/net/cilium_vxlan/ifindex)
    # Cilium's ipcache: each peer's pod CIDR and the node that holds it, the tunnel's far end.
    for peer in "${PEERS[@]}"; do
      read -r _ peer_ip peer_cidr _ <<< "$peer"
      map_update netlab_tunnels "$(hex_u32 "${peer_cidr#*/}") $(hex_ip "${peer_cidr%/*}")" "$(hex_ip "$peer_ip")"
    done
  fi
  if [[ $SERVICE_LB == socket-lb ]]; then socket_lb_load; fi
  # struct config: the cluster CIDR, the host routing flags, the tunnel device and its VNI.
  map_update netlab_config "00 00 00 00" \
    "$(hex_ip "${CLUSTER_CIDR%/*}") $(hex_ip "$CLUSTER_NETMASK") $(hex_u32 "$flags") $(hex_u32 "$tunnel") $(hex_u32 "$VXLAN_VNI")"

  # Each local pod in the endpoint map (Cilium's cilium_lxc: its lxc device's ifindex, the pod's MAC and
  # the device's), from-container on its lxc device (ingress: what the pod sends).
  for pod in "${PODS[@]}"; do
    read -r name ip _ <<< "$pod"
    ifindex=$(cat "/sys/class/net/lxc$name/ifindex")
    map_update netlab_endpoints "$(hex_ip "$ip")" \
      "$(hex_u32 "$ifindex") $(ip netns exec "$name" cat /sys/class/net/eth0/address | tr : ' ') $(tr : ' ' < "/sys/class/net/lxc$name/address")"
    tc_attach "lxc$name" ingress "$PINS/netlab/from_container/from_container"
  done

  tc_attach "$NIC" ingress "$PINS/netlab/from_netdev/from_netdev"
  if [[ $ROUTING == vxlan ]]; then
    tc_attach cilium_vxlan ingress "$PINS/netlab/from_overlay/from_overlay"
    tc_attach cilium_host egress "$PINS/netlab/from_container/from_container"
  fi
  if [[ $SERVICE_LB == socket-lb ]]; then socket_lb_attach; fi
}

model_up() {
  local pod peer name ip peer_cidr
  # Cilium's router address lives on cilium_host, one end of a veth pair. NOARP as Cilium has it:
  # what the host routes into it (remote pod CIDRs, tunnel mode) needs no neighbour, the egress
  # program takes it.
  ip link add cilium_host type veth peer name cilium_net
  ip link set cilium_host arp off
  ip addr add "$GATEWAY/32" dev cilium_host
  ip link set cilium_net up
  ip link set cilium_host up
  for pod in "${PODS[@]}"; do
    read -r name ip _ <<< "$pod"
    add_pod "$name" "lxc$name"
    ip -n "$name" addr add "$ip/32" dev eth0
    ip -n "$name" route add "$GATEWAY/32" dev eth0 scope link
    ip -n "$name" route add default via "$GATEWAY" dev eth0
    ip route add "$ip/32" dev "lxc$name"
  done

  if [[ $ROUTING == vxlan ]]; then
    # routingMode tunnel: one collect-metadata VXLAN device; the programs give each packet its far end.
    # Legacy host routing forwards what arrives on it by the host's routes, from another node's pod
    # (no route back through the device): loose reverse-path filtering, as Cilium sets it.
    ip link add cilium_vxlan mtu "$MTU" type vxlan external dstport "$VXLAN_PORT"
    sysctl -qw net.ipv4.conf.cilium_vxlan.rp_filter=0
    ip link set cilium_vxlan up
    # What the host stack routes to another node's pods (legacy host routing, kube-proxy's DNAT) goes
    # to cilium_host, whose egress program encapsulates it, as Cilium routes each remote pod CIDR.
    for peer in "${PEERS[@]}"; do
      read -r _ _ peer_cidr _ <<< "$peer"
      ip route replace "$peer_cidr" via "$GATEWAY" dev cilium_host src "$GATEWAY" mtu "$MTU"
    done
  else
    # autoDirectNodeRoutes: the routes are what bpf_fib_lookup finds, and what legacy host routing
    # forwards pod packets along.
    direct_routes
  fi

  if ((BIG_TCP_SIZE)); then big_tcp_up; fi
  bpf_up

  # Cilium keeps its iptables chains; BPF host routing bypasses them, legacy host routing does not.
  # Masquerading stays in iptables here (Cilium's bpf.masquerade=false), for traffic that leaves
  # the cluster CIDR: the model has no BPF masquerade.
  iptables -N CILIUM_FORWARD
  iptables -A CILIUM_FORWARD -o cilium_host -j ACCEPT
  iptables -A CILIUM_FORWARD -i lxc+ -j ACCEPT
  iptables -A CILIUM_FORWARD -o lxc+ -j ACCEPT
  iptables -I FORWARD 1 -j CILIUM_FORWARD
  iptables -t nat -N CILIUM_POST_nat
  iptables -t nat -A CILIUM_POST_nat -s "$POD_CIDR" ! -d "$CLUSTER_CIDR" ! -o cilium_+ -j MASQUERADE
  iptables -t nat -A POSTROUTING -j CILIUM_POST_nat
  if ((NOTRACK)); then notrack_up; fi
}

# enableIPv4BIGTCP: as Cilium (pkg/datapath/linux/bigtcp, and its CNI plugin for the pods' veths), the IPv4 GSO
# and GRO maximum sizes of the pods' devices, their lxc ends and the node's interface, so TCP builds and takes
# packets of up to 192 KiB: fewer trips through the stack per byte. Each device that transmits such a packet
# checks it against its own maximum and cuts it in software otherwise: on the local lab the provider raises the
# host side of the node's link too (podman_lab).
big_tcp_up() {
  local pod name
  for pod in "${PODS[@]}"; do
    read -r name _ <<< "$pod"
    ip -n "$name" link set eth0 gso_ipv4_max_size "$BIG_TCP_SIZE" gro_ipv4_max_size "$BIG_TCP_SIZE"
    ip link set "lxc$name" gso_ipv4_max_size "$BIG_TCP_SIZE" gro_ipv4_max_size "$BIG_TCP_SIZE"
  done
  ip link set "$NIC" gso_ipv4_max_size "$BIG_TCP_SIZE" gro_ipv4_max_size "$BIG_TCP_SIZE"
}

# installNoConntrackIptablesRules: as Cilium's addNoTrackPodTrafficRules (pkg/datapath/iptables), CT --notrack
# in the raw table's CILIUM_PRE_raw and CILIUM_OUTPUT_raw for traffic from and to the native routing CIDR (the
# cluster CIDR here). Legacy host routing then forwards pod traffic with no conntrack entry, and so past the
# nat table, which sees only tracked packets. The rules carry netlab:notrack (Cilium's comment is "cilium:
# NOTRACK for pod traffic") for the counters.
notrack_up() {
  iptables-restore --noflush <<RAW
*raw
:CILIUM_PRE_raw - [0:0]
:CILIUM_OUTPUT_raw - [0:0]
-A PREROUTING -j CILIUM_PRE_raw
-A OUTPUT -j CILIUM_OUTPUT_raw
-A CILIUM_PRE_raw -d $CLUSTER_CIDR -m comment --comment netlab:notrack -j CT --notrack
-A CILIUM_PRE_raw -s $CLUSTER_CIDR -m comment --comment netlab:notrack -j CT --notrack
-A CILIUM_OUTPUT_raw -d $CLUSTER_CIDR -m comment --comment netlab:notrack -j CT --notrack
-A CILIUM_OUTPUT_raw -s $CLUSTER_CIDR -m comment --comment netlab:notrack -j CT --notrack
COMMIT
RAW
}
