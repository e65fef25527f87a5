# shellcheck shell=bash
# Cilium's kube-proxy replacement (kubeProxyReplacement, SERVICE_LB=socket-lb): socket-level load
# balancing, files/bpf/sock_lb.c on the node's cgroup (Cilium's bpf_sock.c). A socket that connects or
# sends to a Service address gets a backend's address before any packet exists: no DNAT, no conntrack
# entry, no iptables rule on the path.

# The programs and their maps (netlab_services, netlab_backends, netlab_revnat), before the config map
# is written; attached to the cgroup once the rest of the datapath is up.
socket_lb_load() {
  bpftool prog loadall "$LIB/bpf/sock_lb.o" "$PINS/netlab/sock_lb"
}

socket_lb_attach() {
  local hook
  for hook in connect4 sendmsg4 recvmsg4; do
    bpftool cgroup attach "$(node_cgroup)" "$hook" pinned "$PINS/netlab/sock_lb/sock_$hook" multi
  done
}

# service_up NAME VIP PORT PROTO BACKEND_IP:PORT...: the Service, its backends in slots and the reverse
# entry for UDP replies, written by netlab-svcmap with the maps' one codec (the collection's
# module_utils/sock_lb.py, installed beside it). Map ids of the benchmark's Services have the top
# bit set, apart from the Service scale scenario's.
service_up() {
  "$LIB/netlab-svcmap" add "$@"
}

service_down() {
  [[ -e $PINS/netlab_services ]] || return 0
  "$LIB/netlab-svcmap" del "$@"
}
