/* tc ingress on the VXLAN device (cilium_vxlan, routingMode tunnel): Cilium's cil_from_overlay.
 *
 * The kernel has taken the outer headers off; the inner frame still carries the sending node's
 * MAC addresses, so it is not addressed to this device. With BPF host routing a packet for a pod
 * of this node goes straight into its namespace (bpf_redirect_peer); otherwise it is marked as
 * the host's (Cilium's ctx_change_type to PACKET_HOST) for the host stack to route it.
 */
#include "netlab.h"

#define PACKET_HOST 0

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct endpoint *ep;
	struct ethhdr *eth;
	struct iphdr *ip;

	ip = ipv4_header(skb, &eth);
	if (ip && !legacy_host_routing(config())) {
		ep = bpf_map_lookup_elem(&netlab_endpoints, &ip->daddr);
		if (ep) {
			count(FROM_OVERLAY_PEER);
			return to_endpoint(eth, ip, ep);
		}
	}
	bpf_skb_change_type(skb, PACKET_HOST);
	count(FROM_OVERLAY_STACK);
	return TC_ACT_OK;
}
