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

/* The cluster CIDR: traffic to anything else leaves through the stack to be masqueraded. */
struct config {
	__u32 cluster_net;  /* network order */
	__u32 cluster_mask; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_config SEC(".maps");

/* What each program did, per CPU: read before and after every benchmark test as the proof
 * of the path it took. The order is the one the datapath script prints. */
enum counter {
	FROM_CONTAINER_PEER,   /* pod to a pod of this node: bpf_redirect_peer */
	FROM_CONTAINER_NEIGH,  /* pod to a pod of another node: bpf_fib_lookup + bpf_redirect_neigh */
	FROM_CONTAINER_STACK,  /* handed to the host stack (ARP, the node itself, outside the cluster) */
	FROM_NETDEV_PEER,      /* from the wire to a pod of this node: bpf_redirect_peer */
	FROM_NETDEV_STACK,     /* from the wire to the node itself */
	SOCK_XLATE,            /* a Service address translated to a backend at connect/sendmsg */
	SOCK_REVNAT,           /* a backend's UDP reply shown as coming from the Service */
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

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#endif
