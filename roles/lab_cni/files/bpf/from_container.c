/* tc ingress on a pod's host-side veth (lxc*): Cilium's cil_from_container.
 *
 * BPF host routing: a packet for a pod of this node goes straight into that pod's namespace
 * (bpf_redirect_peer); one for a pod of another node is routed by bpf_fib_lookup and sent out of
 * the node's interface by bpf_redirect_neigh, which resolves the next hop's MAC itself: it never
 * meets the host's netfilter hooks or its IP forwarding.
 * routingMode tunnel: a packet for another node's pod is encapsulated here, as Cilium does in
 * BPF with either host routing: the tunnel key names the node that holds the pod's CIDR
 * (netlab_tunnels, Cilium's ipcache), and the packet is redirected to the VXLAN device.
 * Legacy host routing (bpf.hostLegacyRouting): pod traffic that is not encapsulated goes to the
 * host stack, which routes it and runs netfilter, as does anything else (ARP, the node's own
 * addresses, destinations outside the cluster CIDR that need masquerading).
 */
#include "netlab.h"

/* Cilium's encap_and_redirect: the outer header is the VXLAN device's, from the tunnel key. */
static __always_inline long to_tunnel(struct __sk_buff *skb, struct iphdr *ip, const struct config *cfg)
{
	struct tunnel_key prefix = { .prefixlen = 32, .address = ip->daddr };
	struct bpf_tunnel_key key = {};
	__u32 *node;

	node = bpf_map_lookup_elem(&netlab_tunnels, &prefix);
	if (!node)
		return -1;
	decrease_ttl(ip);
	key.remote_ipv4 = bpf_ntohl(*node);
	key.tunnel_id = cfg->vni;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return TC_ACT_SHOT;
	count(FROM_CONTAINER_ENCAP);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh next_hop = {};
	struct endpoint *ep;
	struct config *cfg;
	struct ethhdr *eth;
	struct iphdr *ip;
	long rc;

	ip = ipv4_header(skb, &eth);
	cfg = config();
	if (!ip || !cfg)
		goto stack;

	ep = bpf_map_lookup_elem(&netlab_endpoints, &ip->daddr);
	if (ep) {
		if (legacy_host_routing(cfg))
			goto stack;
		count(FROM_CONTAINER_PEER);
		return to_endpoint(eth, ip, ep);
	}

	if ((ip->daddr & cfg->cluster_mask) != cfg->cluster_net)
		goto stack;

	if (cfg->tunnel_ifindex) {
		rc = to_tunnel(skb, ip, cfg);
		if (rc >= 0)
			return rc;
		goto stack;
	}
	if (legacy_host_routing(cfg))
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
