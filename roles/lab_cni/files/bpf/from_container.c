/* tc ingress on a pod's host-side veth (lxc*): Cilium's cil_from_container with BPF host routing.
 *
 * A packet for a pod of this node goes straight into that pod's namespace (bpf_redirect_peer).
 * A packet for a pod of another node (native routing) is routed by bpf_fib_lookup and sent out
 * of the node's interface by bpf_redirect_neigh, which resolves the next hop's MAC itself: it
 * never meets the host's netfilter hooks or its IP forwarding. Anything else (ARP, the node's
 * own addresses, destinations outside the cluster CIDR that need masquerading) goes to the stack.
 */
#include "netlab.h"

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh next_hop = {};
	struct endpoint *ep;
	struct config *cfg;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 zero = 0;
	long rc;

	ip = ipv4_header(skb, &eth);
	if (!ip)
		goto stack;

	ep = bpf_map_lookup_elem(&netlab_endpoints, &ip->daddr);
	if (ep) {
		count(FROM_CONTAINER_PEER);
		return to_endpoint(eth, ip, ep);
	}

	cfg = bpf_map_lookup_elem(&netlab_config, &zero);
	if (!cfg || (ip->daddr & cfg->cluster_mask) != cfg->cluster_net)
		goto stack;

	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	/* No tot_len: the kernel then checks the skb itself against the MTU, which lets a GSO
	 * packet (up to 64 KiB in one skb) through; tot_len would be held against the MTU as is. */
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		goto stack;

	decrease_ttl(ip);
	next_hop.nh_family = AF_INET;
	next_hop.ipv4_nh = fib.ipv4_dst;
	count(FROM_CONTAINER_NEIGH);
	return bpf_redirect_neigh(fib.ifindex, &next_hop, sizeof(next_hop), 0);

stack:
	count(FROM_CONTAINER_STACK);
	return TC_ACT_OK;
}
