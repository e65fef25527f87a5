# shellcheck shell=bash
# The Canal model (RKE2's default CNI): Calico's workload veths and Felix's iptables chains on each
# node, flannel between nodes (ROUTING vxlan: its VXLAN backend, native: its host-gw backend) and its
# masquerade. Services: kube-proxy.sh.

# Calico's workload plumbing: a cali* veth per pod with no address and proxy ARP, a /32 route
# to the pod, and the pod's default route via 169.254.1.1, which the host answers for.
add_workload() {
  add_pod "$1" "cali$1"
  ip link set "cali$1" address ee:ee:ee:ee:ee:ee
  sysctl -qw "net.ipv4.conf.cali$1.proxy_arp=1" "net.ipv4.neigh.cali$1.proxy_delay=0"
  ip -n "$1" addr add "$2/32" dev eth0
  ip -n "$1" route add 169.254.1.1 dev eth0 scope link
  ip -n "$1" route add default via 169.254.1.1 dev eth0
  ip route add "$2/32" dev "cali$1" scope link
}

# Felix's filter chains (iptables mode), as iptables-restore input: FORWARD dispatches on the cali*
# interface to a chain per endpoint; each allows established flows, then applies the namespace's
# profile, which with no NetworkPolicy allows everything (Canal: DefaultEndpointToHostAction ACCEPT).
# flannel and kube-proxy add their FORWARD chains after Felix's.
felix_rules() {
  local pod name chain profile
  cat <<'CHAINS'
*filter
:cali-FORWARD - [0:0]
:cali-INPUT - [0:0]
:cali-wl-to-host - [0:0]
:cali-from-wl-dispatch - [0:0]
:cali-to-wl-dispatch - [0:0]
:cali-pro-kns.netlab - [0:0]
:cali-pri-kns.netlab - [0:0]
:FLANNEL-FWD - [0:0]
CHAINS
  for pod in "${PODS[@]}"; do
    read -r name _ <<< "$pod"
    echo ":cali-fw-cali$name - [0:0]"
    echo ":cali-tw-cali$name - [0:0]"
  done
  cat <<'HOOKS'
-I INPUT 1 -j cali-INPUT
-A cali-INPUT -i cali+ -g cali-wl-to-host
-A cali-wl-to-host -j cali-from-wl-dispatch
-A cali-wl-to-host -j ACCEPT
-I FORWARD 1 -j cali-FORWARD
-I FORWARD 2 -m mark --mark 0x10000/0x10000 -m comment --comment netlab:felix-accept -j ACCEPT
-A FORWARD -j FLANNEL-FWD
-A cali-FORWARD -j MARK --set-xmark 0x0/0x10000
-A cali-FORWARD -i cali+ -m comment --comment netlab:felix-from-workload -j cali-from-wl-dispatch
-A cali-FORWARD -o cali+ -m comment --comment netlab:felix-to-workload -j cali-to-wl-dispatch
HOOKS
  for pod in "${PODS[@]}"; do
    read -r name _ <<< "$pod"
    echo "-A cali-from-wl-dispatch -i cali$name -g cali-fw-cali$name"
    echo "-A cali-to-wl-dispatch -o cali$name -g cali-tw-cali$name"
    # From the workload (fw) the namespace's outbound profile (pro); to it (tw) the inbound one (pri).
    for chain in fw:pro tw:pri; do
      profile=cali-${chain#*:}-kns.netlab
      chain=cali-${chain%:*}-cali$name
      echo "-A $chain -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
      echo "-A $chain -m conntrack --ctstate INVALID -j DROP"
      echo "-A $chain -j MARK --set-xmark 0x0/0x10000"
      echo "-A $chain -j $profile"
      echo "-A $chain -m mark --mark 0x10000/0x10000 -j RETURN"
      echo "-A $chain -j DROP"
    done
  done
  cat <<PROFILES
-A cali-from-wl-dispatch -j DROP
-A cali-to-wl-dispatch -j DROP
-A cali-pro-kns.netlab -j MARK --set-xmark 0x10000/0x10000
-A cali-pro-kns.netlab -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-pri-kns.netlab -j MARK --set-xmark 0x10000/0x10000
-A cali-pri-kns.netlab -m mark --mark 0x10000/0x10000 -j RETURN
-A FLANNEL-FWD -s $CLUSTER_CIDR -j ACCEPT
-A FLANNEL-FWD -d $CLUSTER_CIDR -j ACCEPT
COMMIT
PROFILES
}

# flannel's masquerade of pod traffic that leaves the cluster CIDR (--ip-masq); traffic kube-proxy
# marked is masqueraded by kube-proxy's own chain.
flannel_nat_up() {
  iptables-restore --noflush <<NAT
*nat
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -j RETURN
-A FLANNEL-POSTRTG -s $POD_CIDR -d $CLUSTER_CIDR -j RETURN
-A FLANNEL-POSTRTG -s $CLUSTER_CIDR -d $POD_CIDR -j RETURN
-A FLANNEL-POSTRTG ! -s $CLUSTER_CIDR -d $POD_CIDR -j RETURN
-A FLANNEL-POSTRTG -s $CLUSTER_CIDR ! -d 224.0.0.0/4 -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s $CLUSTER_CIDR -d $CLUSTER_CIDR -j MASQUERADE --random-fully
COMMIT
NAT
}

# flannel's VXLAN backend: static FDB and neighbour entries per peer, no learning. flannel gives its
# device the network address of the node's pod CIDR (VTEP_IP) and publishes its MAC (VTEP_MAC, here
# derived from the node's address, so no lookup is needed).
flannel_vxlan_up() {
  local peer peer_ip peer_cidr peer_vtep_ip peer_vtep_mac
  ip link add flannel.1 address "$VTEP_MAC" mtu "$OVERLAY_MTU" type vxlan \
    id "$VXLAN_VNI" dstport "$VXLAN_PORT" local "$NODE_IP" dev "$NIC" nolearning
  ip addr add "$VTEP_IP/32" dev flannel.1
  ip link set flannel.1 up
  for peer in "${PEERS[@]}"; do
    read -r _ peer_ip peer_cidr peer_vtep_ip peer_vtep_mac _ <<< "$peer"
    ip neigh replace "$peer_vtep_ip" lladdr "$peer_vtep_mac" dev flannel.1 nud permanent
    bridge fdb append "$peer_vtep_mac" dev flannel.1 dst "$peer_ip"
    ip route replace "$peer_cidr" via "$peer_vtep_ip" dev flannel.1 onlink
  done
}

model_up() {
  local pod name ip
  for pod in "${PODS[@]}"; do
    read -r name ip _ <<< "$pod"
    add_workload "$name" "$ip"
  done

  if [[ $ROUTING == native ]]; then
    # flannel's host-gw backend (pkg/backend/hostgw): routes only, no device, no encapsulation.
    direct_routes
  else
    flannel_vxlan_up
  fi

  felix_rules | iptables-restore --noflush
  flannel_nat_up
}
