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
	long rc = to_local_pod(skb, FROM_NETDEV_PEER);

	if (rc >= 0)
		return rc;
	count(FROM_NETDEV_STACK);
	return TC_ACT_OK;
}
