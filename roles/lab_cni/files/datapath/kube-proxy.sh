# shellcheck shell=bash
# kube-proxy's iptables mode: the Services of the Canal model, and of the Cilium model without
# kube-proxy replacement (SERVICE_LB=kube-proxy).

# KUBE-SERVICES from PREROUTING and OUTPUT, masquerade by mark, and its FORWARD chain for the flows
# it marked or tracks.
kube_proxy_up() {
  iptables-restore --noflush <<'RULES'
*filter
:KUBE-FORWARD - [0:0]
-A FORWARD -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-I POSTROUTING 1 -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
COMMIT
RULES
}

# service_up NAME VIP PORT PROTO BACKEND_IP:PORT...: KUBE-SERVICES -> KUBE-SVC-* (the backends split
# by probability) -> KUBE-SEP-* (DNAT).
service_up() {
  local name=$1 vip=$2 port=$3 proto=$4 svc sep backend i=0 n
  shift 4
  n=$#
  svc=KUBE-SVC-$(digest "$name/$port/$proto")
  {
    echo '*nat'
    echo ":$svc - [0:0]"
    echo "-A KUBE-SERVICES -d $vip/32 -p $proto --dport $port -m comment --comment netlab:service.$name -j $svc"
    echo "-A $svc ! -s $CLUSTER_CIDR -d $vip/32 -p $proto --dport $port -j KUBE-MARK-MASQ"
    for backend in "$@"; do
      sep=KUBE-SEP-${svc:9:12}$(printf %04d "$i")
      echo ":$sep - [0:0]"
      if ((i < n - 1)); then
        echo "-A $svc -m statistic --mode random --probability $(awk "BEGIN { printf \"%.10f\", 1 / ($n - $i) }") -j $sep"
      else
        echo "-A $svc -j $sep"
      fi
      echo "-A $sep -s ${backend%:*}/32 -j KUBE-MARK-MASQ"
      echo "-A $sep -p $proto -j DNAT --to-destination $backend"
      i=$((i + 1))
    done
    echo COMMIT
  } | iptables-restore --noflush
}

# service_down NAME VIP PORT PROTO BACKEND_IP:PORT...: the Service's jump, its chain and its endpoints' chains.
service_down() {
  local svc
  svc=KUBE-SVC-$(digest "$1/$3/$4")
  drop_rules nat "-j $svc\$"
  remove_chains nat "KUBE-SVC-${svc:9}|KUBE-SEP-${svc:9:12}[0-9]{4}"
}
