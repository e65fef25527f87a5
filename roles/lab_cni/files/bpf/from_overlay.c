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
	long rc = to_local_pod(skb, FROM_OVERLAY_PEER);

	if (rc >= 0)
		return rc;
	bpf_skb_change_type(skb, PACKET_HOST);
	count(FROM_OVERLAY_STACK);
	return TC_ACT_OK;
}
