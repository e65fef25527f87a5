/* tc ingress on the node's interface: Cilium's cil_from_netdev.
 *
 * With BPF host routing a packet from the wire for a pod of this node goes straight into the
 * pod's namespace (bpf_redirect_peer), skipping the host's routing and netfilter; with legacy
 * host routing, and for everything that is the node's own, the host stack takes it.
 */
#include "netlab.h"

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct endpoint *ep;
	struct ethhdr *eth;
	struct iphdr *ip;

	ip = ipv4_header(skb, &eth);
	if (ip && !legacy_host_routing(config())) {
		ep = bpf_map_lookup_elem(&netlab_endpoints, &ip->daddr);
		if (ep) {
			count(FROM_NETDEV_PEER);
			return to_endpoint(eth, ip, ep);
		}
	}
	count(FROM_NETDEV_STACK);
	return TC_ACT_OK;
}
