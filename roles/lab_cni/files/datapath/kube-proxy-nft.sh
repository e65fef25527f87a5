# shellcheck shell=bash
# kube-proxy's nftables mode (--proxy-mode nftables: Kubernetes 1.31+, pkg/proxy/nftables), where kube-proxy
# serves Services (SERVICE_LB=kube-proxy-nftables). One table of its own, ip kube-proxy: its services chain
# looks the packet's address . protocol . port up in the service-ips verdict map and goes to the Service's
# chain, which picks an endpoint's chain by numgen random mod N; that one DNATs. One lookup however many
# Services there are, where iptables mode walks KUBE-SERVICES rule by rule. The filter chains kube-proxy
# adds (rejects for Services without endpoints, drops to unallocated ClusterIPs) are left out: no test
# sends such traffic.

KP="ip kube-proxy"

# The table, its hooks into NAT (prerouting and output: services; postrouting: masquerading of what
# mark-for-masquerade marked, 0x4000 as in iptables mode) and the verdict map.
kube_proxy_up() {
  nft -f - <<RULES
add table $KP
add chain $KP nat-prerouting { type nat hook prerouting priority dstnat ; }
add chain $KP nat-output { type nat hook output priority -100 ; }
add chain $KP nat-postrouting { type nat hook postrouting priority srcnat ; }
add chain $KP services
add chain $KP masquerading
add chain $KP mark-for-masquerade
add map $KP service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add rule $KP nat-prerouting jump services
add rule $KP nat-output jump services
add rule $KP nat-postrouting jump masquerading
add rule $KP mark-for-masquerade mark set mark or 0x4000
add rule $KP masquerading mark and 0x4000 == 0 return
add rule $KP masquerading mark set mark xor 0x4000
add rule $KP masquerading masquerade fully-random
add rule $KP services ip daddr . meta l4proto . th dport vmap @service-ips
RULES
}

# The chains of a Service's port, as kube-proxy names them (service-<hash>-<namespace>/<name>/<proto>/<port>,
# endpoint-<hash>-...__<ip>/<port>), one a line: the Service's first.
_chains() {
  local name=$1 port=$3 proto=$4 backend
  shift 4
  echo "service-$(digest "$name/$port/$proto" | cut -c1-8)-netlab/$name/$proto/$port"
  for backend in "$@"; do
    echo "endpoint-$(digest "$name/$port/$proto/$backend" | cut -c1-8)-netlab/$name/$proto/${port}__${backend/:/\/}"
  done
}

# service_up NAME VIP PORT PROTO BACKEND_IP:PORT...: the Service's chain (masquerade from outside the cluster
# CIDR, then numgen random over its endpoints' chains), each endpoint's (hairpin masquerade, DNAT), and its
# element in service-ips, in one transaction. The Service's first rule counts (netlab:service.NAME).
service_up() {
  local name=$1 vip=$2 port=$3 proto=$4 svc i=0 chains=() map=""
  mapfile -t chains < <(_chains "$@")
  svc=${chains[0]}
  shift 4
  {
    echo "add chain $KP $svc"
    echo "add rule $KP $svc counter comment \"netlab:service.$name\""
    echo "add rule $KP $svc ip daddr $vip $proto dport $port ip saddr != $CLUSTER_CIDR jump mark-for-masquerade"
    for backend in "$@"; do
      i=$((i + 1))
      echo "add chain $KP ${chains[i]}"
      echo "add rule $KP ${chains[i]} ip saddr ${backend%:*} jump mark-for-masquerade"
      echo "add rule $KP ${chains[i]} meta l4proto $proto dnat to $backend"
      map+="${map:+, }$((i - 1)) : goto ${chains[i]}"
    done
    echo "add rule $KP $svc numgen random mod $# vmap { $map }"
    echo "add element $KP service-ips { $vip . $proto . $port : goto $svc }"
  } | nft -f -
}

# service_down NAME VIP PORT PROTO BACKEND_IP:PORT...: its element, then its chains, in one transaction.
service_down() {
  local chain chains=()
  nft list table ip kube-proxy >/dev/null 2>&1 || return 0
  mapfile -t chains < <(_chains "$@")
  {
    echo "delete element $KP service-ips { $2 . $4 . $3 }"
    for chain in "${chains[@]}"; do echo "flush chain $KP $chain"; done
    for chain in "${chains[@]}"; do echo "delete chain $KP $chain"; done
  } | nft -f -
}
