/* Socket-level load balancing on the node's cgroup: Cilium's kube-proxy replacement
 * (bpf_sock.c: cil_sock4_connect, cil_sock4_sendmsg, cil_sock4_recvmsg).
 *
 * A socket that connects or sends to a Service address (ClusterIP:port) gets a backend's
 * address instead, picked at random from the Service's backends, before any packet exists:
 * no DNAT, no conntrack entry, no iptables rule on the path. A UDP reply from that backend is
 * shown to the application as coming from the Service.
 */
#include "netlab.h"

/* cilium_lb4_services_v2: a Service by address, port and protocol. */
struct service_key {
	__u32 address;  /* network order */
	__u16 port;     /* network order */
	__u8 protocol;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct service {
	__u32 id;
	__u32 backends;  /* slots 0 .. backends-1 in netlab_backends */
};

/* The benchmark's Services (netlab-datapath service-add) have ids with this bit set, the Service scale
 * scenario's have it clear, so neither writer overwrites or removes the other's backends. The programs
 * only compare ids; the writers share the layout through plugins/module_utils/sock_lb.py. */
#define BENCHMARK_ID_BIT 0x80000000u

/* cilium_lb4_backends_v3, reached through the Service's slots. */
struct backend_key {
	__u32 id;
	__u32 slot;
};

struct address {
	__u32 address;  /* network order */
	__u16 port;     /* network order */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct service_key);
	__type(value, struct service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct backend_key);
	__type(value, struct address);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_backends SEC(".maps");

/* cilium_lb4_reverse_sk, keyed here by the backend instead of the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct address);
	__type(value, struct address);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} netlab_revnat SEC(".maps");

static __always_inline void to_backend(struct bpf_sock_addr *ctx)
{
	struct service_key key = {
		.address = ctx->user_ip4,
		.port = (__u16)ctx->user_port,
		.protocol = (__u8)ctx->protocol,
	};
	struct backend_key slot;
	struct address *backend;
	struct service *svc;

	svc = bpf_map_lookup_elem(&netlab_services, &key);
	if (!svc || !svc->backends)
		return;
	slot.id = svc->id;
	slot.slot = bpf_get_prandom_u32() % svc->backends;
	backend = bpf_map_lookup_elem(&netlab_backends, &slot);
	if (!backend)
		return;
	ctx->user_ip4 = backend->address;
	ctx->user_port = backend->port;
	count(SOCK_XLATE);
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	to_backend(ctx);
	return 1;
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	to_backend(ctx);
	return 1;
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct address key = { .address = ctx->user_ip4, .port = (__u16)ctx->user_port };
	struct address *service = bpf_map_lookup_elem(&netlab_revnat, &key);

	if (service) {
		ctx->user_ip4 = service->address;
		ctx->user_port = service->port;
		count(SOCK_REVNAT);
	}
	return 1;
}
