/* Maps and helpers shared by the Cilium model's programs.
 *
 * Each map is pinned by name under /sys/fs/bpf, so the programs of every object file
 * share one instance, as Cilium's programs share its pinned maps (cilium_lxc,
 * cilium_lb4_services_v2, ...). Keys and values are laid out for bpftool's byte lists:
 * addresses and ports in network order, everything else in host order.
 */
#ifndef NETLAB_H
#define NETLAB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* <sys/socket.h> is not for the BPF target. */
#define AF_INET 2

/* A pod on this node, keyed by its IPv4 address: Cilium's endpoint map (cilium_lxc). */
struct endpoint {
	__u32 ifindex;      /* the host side of its veth (lxc*) */
	__u8 pod_mac[6];    /* its eth0 */
	__u8 node_mac[6];   /* the lxc device: the pod's next hop */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_endpoints SEC(".maps");

/* How the node routes pod traffic, written by the datapath script from the model's settings. */
#define LEGACY_HOST_ROUTING 1  /* bpf.hostLegacyRouting: pod traffic goes through the host stack */

struct config {
	__u32 cluster_net;    /* network order; traffic to anything outside the cluster CIDR goes to */
	__u32 cluster_mask;   /* the stack, to be masqueraded */
	__u32 flags;          /* LEGACY_HOST_ROUTING */
	__u32 tunnel_ifindex; /* cilium_vxlan (routingMode tunnel); 0 for native routing */
	__u32 vni;            /* the tunnel's VXLAN network identifier */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_config SEC(".maps");

/* The node that holds each other node's pod CIDR, for the tunnel: Cilium's ipcache, whose
 * entries carry the tunnel endpoint of a remote prefix. */
struct tunnel_key {
	__u32 prefixlen;
	__u32 address;  /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct tunnel_key);
	__type(value, __u32);  /* the node's address, network order */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_tunnels SEC(".maps");

/* What each program did, per CPU: read before and after every benchmark test as the proof
 * of the path it took. The order is the one the datapath script prints. */
enum counter {
	FROM_CONTAINER_PEER,   /* pod to a pod of this node: bpf_redirect_peer */
	FROM_CONTAINER_NEIGH,  /* pod to a pod of another node: bpf_fib_lookup + bpf_redirect_neigh */
	FROM_CONTAINER_STACK,  /* handed to the host stack (ARP, the node itself, outside the cluster, legacy host routing) */
	FROM_NETDEV_PEER,      /* from the wire to a pod of this node: bpf_redirect_peer */
	FROM_NETDEV_STACK,     /* from the wire to the node itself, or to a pod by legacy host routing */
	SOCK_XLATE,            /* a Service address translated to a backend at connect/sendmsg */
	SOCK_REVNAT,           /* a backend's UDP reply shown as coming from the Service */
	FROM_CONTAINER_ENCAP,  /* pod to a pod of another node through the tunnel: set_tunnel_key + redirect */
	FROM_OVERLAY_PEER,     /* from the tunnel to a pod of this node: bpf_redirect_peer */
	FROM_OVERLAY_STACK,    /* from the tunnel to the host stack (legacy host routing) */
	COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&netlab_counters, &which);

	if (value)
		*value += 1;
}

/* The kernel's ip_decrease_ttl(): one hop, checksum updated incrementally. */
static __always_inline void decrease_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/* The IPv4 header of an Ethernet frame, or NULL for anything else. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb, struct ethhdr **eth)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	*eth = data;
	if ((void *)(ip + 1) > end || (*eth)->h_proto != bpf_htons(ETH_P_IP) || ip->ttl <= 1)
		return NULL;
	return ip;
}

/* Into a local pod's namespace without a trip through the host stack (Cilium: redirect_ep
 * with bpf_redirect_peer). The frame gets the addresses a routed hop would give it. */
static __always_inline long to_endpoint(struct ethhdr *eth, struct iphdr *ip, const struct endpoint *ep)
{
	__builtin_memcpy(eth->h_dest, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->node_mac, ETH_ALEN);
	decrease_ttl(ip);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline struct config *config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&netlab_config, &zero);
}

static __always_inline int legacy_host_routing(const struct config *cfg)
{
	return cfg && (cfg->flags & LEGACY_HOST_ROUTING);
}

/* From the wire or the tunnel, a packet for a pod of this node goes straight into it with BPF host
 * routing (Cilium's ipv4_local_delivery); counted as ``counter``. -1 where the stack takes it. */
static __always_inline long to_local_pod(struct __sk_buff *skb, __u32 counter)
{
	struct endpoint *ep;
	struct ethhdr *eth;
	struct iphdr *ip;

	ip = ipv4_header(skb, &eth);
	if (!ip || legacy_host_routing(config()))
		return -1;
	ep = bpf_map_lookup_elem(&netlab_endpoints, &ip->daddr);
	if (!ep)
		return -1;
	count(counter);
	return to_endpoint(eth, ip, ep);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#endif
