"""The proof that a local-lab test took the path its datapath model claims.

The local transport reads the client node's datapath counters (``netlab-datapath counters``: BPF
program counters, labelled iptables rules, NIC and VXLAN packets) right before and after each
test, on stderr lines that start with MARKER; they are kept in the test's raw file beside iperf3's
own document. The client's node sees both directions of every placement (what its pod sends, what
comes back), so its counters alone show the path. Pure functions, unit-tested directly.
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_objects

MARKER = "netlab-counters "
# The Service the benchmark's tests go through, on both transports (its kube-proxy chain's label).
SERVICE = kube_objects.SERVICE
DATAPATH = "/usr/local/sbin/netlab-datapath"
# Runs the test command between two counter reads, and within them between two CPU readings of this
# node and of the server's ($1: its reader's address:port, empty within one node); the test's exit
# code is the wrapper's. The counters are read outside the CPU window: their own cost is not the test's.
_AROUND = (f'{cpu.SAMPLE}; {cpu.REMOTE}; peer=$1; shift; '
           f'echo "{MARKER}$({DATAPATH} counters)" >&2; sample client; remote "$peer"; '
           f'"$@"; rc=$?; sample client; remote "$peer"; '
           f'echo "{MARKER}$({DATAPATH} counters)" >&2; exit $rc')

# What each counter means when it grew during a test.
MECHANISMS = {
    "bpf.from_container_peer": "BPF from-container: bpf_redirect_peer to a pod of the node",
    "bpf.from_container_neigh": "BPF from-container: bpf_fib_lookup + bpf_redirect_neigh to another node",
    "bpf.from_container_encap": "BPF from-container: tunnel key + redirect to cilium_vxlan",
    "bpf.from_netdev_peer": "BPF from-netdev: bpf_redirect_peer from the wire into the pod",
    "bpf.from_overlay_peer": "BPF from-overlay: bpf_redirect_peer from the tunnel into the pod",
    "bpf.from_container_stack": "BPF from-container: handed to the host stack",
    "bpf.from_overlay_stack": "BPF from-overlay: handed to the host stack",
    "bpf.sock_xlate": "BPF socket LB: Service address translated at connect()",
    "iptables.felix-from-workload": "Felix iptables: from-workload chains",
    "iptables.felix-to-workload": "Felix iptables: to-workload chains",
    f"iptables.service.{SERVICE}": "kube-proxy iptables: KUBE-SVC/KUBE-SEP DNAT",
    f"nftables.service.{SERVICE}": "kube-proxy nftables: service-ips verdict map, numgen DNAT",
    "vxlan.tx_packets": "flannel VXLAN (flannel.1)",
    "iptables.forward": "host netfilter FORWARD",
    "iptables.nat-prerouting": "host netfilter nat PREROUTING (conntrack)",
    "iptables.notrack": "iptables raw NOTRACK: pod traffic kept out of conntrack (installNoConntrackIptablesRules)",
    "iptables.routed-to-peer": "host routing: out of the node's interface to another node's pods, not encapsulated",
    # Not a counter: nic.big_tcp is 1 where the interface's bytes per packet, one way, passed 64 KiB (big_packets).
    "nic.big_tcp": "BIG TCP: packets of more than 64 KiB through the node's interface",
}
# The largest IPv4 GSO packet without BIG TCP (the kernel's default gso_ipv4_max_size).
GSO_LEGACY_MAX = 65536


def big_packets(grown: dict[str, int]) -> bool:
    """Whether the node's interface moved packets of more than 64 KiB on average one way (BIG TCP's), from the
    growth of its byte and packet counters (readings without bytes: no)."""
    return any(grown.get(f"nic.{way}_packets", 0) > 0
               and grown.get(f"nic.{way}_bytes", 0) / grown[f"nic.{way}_packets"] > GSO_LEGACY_MAX
               for way in ("tx", "rx"))

_CANAL_POD = {"iptables.felix-from-workload": True, "iptables.felix-to-workload": True, "iptables.forward": True}


def _canal(placement: str, settings: dict[str, Any]) -> dict[str, bool]:
    """Counter -> must it move, for the Canal model: flannel's VXLAN backend (routing vxlan) or host-gw (native)."""
    tunnel = settings.get("routing") != "native"
    if placement == "host":
        return {"vxlan.tx_packets": False, "iptables.felix-from-workload": False}
    if placement == "same-node":
        return {**_CANAL_POD, "vxlan.tx_packets": False, "iptables.routed-to-peer": False}
    cross = {**_CANAL_POD, "vxlan.tx_packets": tunnel, "vxlan.rx_packets": tunnel,
             "iptables.routed-to-peer": not tunnel}
    return {**cross, **_kube_proxy(settings)} if placement == "service" else cross


def _kube_proxy(settings: dict[str, Any]) -> dict[str, bool]:
    """kube-proxy's Service counter in its mode (iptables or nftables) must move, the other mode's not."""
    nftables = profiles.setting(settings, "kube_proxy_mode") == "nftables"
    return {f"iptables.service.{SERVICE}": not nftables, f"nftables.service.{SERVICE}": nftables}


def _cilium(placement: str, settings: dict[str, Any], protocol: str | None = None) -> dict[str, bool]:
    """Counter -> must it move, for the Cilium model with these settings (the client's node sees both ways);
    ``protocol``: the test's (an iperf3 TCP stream between nodes is where BIG TCP's packets show)."""
    bpf = settings.get("host_routing") == "bpf"
    tunnel = settings.get("routing") == "vxlan"
    kpr = bool(settings.get("kube_proxy_replacement"))
    if placement == "host":
        return {"bpf.from_container_peer": False, "bpf.from_container_neigh": False,
                "bpf.from_container_encap": False, "bpf.sock_xlate": False}
    # BPF host routing keeps pod packets away from netfilter; legacy host routing forwards them there, and
    # with notrack (installNoConntrackIptablesRules) past conntrack, so past the nat table too.
    notrack = bool(settings.get("notrack"))
    stack = ({"iptables.forward": False, "iptables.nat-prerouting": False, "iptables.notrack": False} if bpf
             else {"iptables.forward": True, "bpf.from_container_stack": True, "iptables.notrack": notrack}
             | ({"iptables.nat-prerouting": False} if notrack else {}))
    if placement == "same-node":
        return {"bpf.from_container_peer": bpf, "bpf.from_container_neigh": False,
                "bpf.from_container_encap": False, **stack}
    # Through the tunnel from-container encapsulates with either host routing; what comes back is
    # delivered by from-overlay (BPF) or by the host stack (legacy).
    if tunnel:
        cross = {"iptables.forward": not bpf, "bpf.from_container_encap": True, "bpf.from_container_neigh": False,
                 "bpf.from_overlay_peer": bpf, "bpf.from_overlay_stack": not bpf}
    else:
        cross = {**stack, "bpf.from_container_encap": False, "bpf.from_container_neigh": bpf,
                 "bpf.from_netdev_peer": bpf}
    # Without BIG TCP no packet can pass 64 KiB. With it an average above 64 KiB proves big packets crossed, but
    # one below does not prove they did not (TCP's sizes follow its writes and its window): it is shown where
    # seen (the report says where it is not), not required.
    if protocol == "tcp" and not settings.get("big_tcp"):
        cross["nic.big_tcp"] = False
    if placement == "cross-node":
        return cross
    service = {"bpf.sock_xlate": kpr, **({f"iptables.service.{SERVICE}": False, f"nftables.service.{SERVICE}": False}
                                          if kpr else _kube_proxy(settings))}
    # kube-proxy's DNAT needs the stack: without kube-proxy replacement there is no BPF host routing.
    return {**cross, **service} if kpr else {**cross, **service, "iptables.nat-prerouting": True}


def expected(cni: str, placement: str, settings: dict[str, Any] | None = None,
             protocol: str | None = None) -> dict[str, bool]:
    """Per counter, whether the model's path for ``placement`` must move it (True) or leave it alone (False).

    ``settings``: the model's, as the node fact records them (profiles.SETTINGS); a run without them is
    of the CNI's reference (the models before profiles). A host test runs between the nodes themselves:
    no pod mechanism may carry it.
    """
    if cni == "canal":
        return _canal(placement, {**profiles.reference("canal"), **(settings or {})})
    if cni == "cilium":
        return _cilium(placement, {**profiles.reference("cilium"), **(settings or {})}, protocol)
    return {}


def around(argv: list[str], cpu_peer: str | None = None) -> list[str]:
    """argv run between two reads of the node's datapath counters and two CPU readings (on stderr)."""
    return ["sh", "-c", _AROUND, "netlab-counters", cpu_peer or "", *argv]


def split_stderr(stderr: str | None) -> tuple[list[dict[str, int]], str]:
    """(counter readings in order, the rest of stderr) of a test run through around()."""
    readings, rest = [], []
    for line in (stderr or "").splitlines():
        if line.startswith(MARKER):
            try:
                reading = json.loads(line[len(MARKER):])
            except ValueError:
                reading = None
            if isinstance(reading, dict):
                readings.append(reading)
                continue
        rest.append(line)
    return readings, "\n".join(rest)


def delta(counters: dict[str, Any] | None) -> dict[str, int] | None:
    """How much each counter grew between the two readings of a raw file's ``netlab_counters``."""
    if not counters or not isinstance(counters.get("before"), dict) or not isinstance(counters.get("after"), dict):
        return None
    before, after = counters["before"], counters["after"]
    return {key: int(after[key]) - int(before.get(key, 0)) for key in sorted(after)}


def check(cni: str, placement: str, grown: dict[str, int] | None,
          settings: dict[str, Any] | None = None, protocol: str | None = None) -> dict[str, Any] | None:
    """What carried a test and what of its counters contradicts the model; None without counters.

    ``mechanisms``: the known mechanisms whose counters grew; ``contradictions``: one sentence per
    counter that moved where the model's path must not move it, or stayed where it must move.
    """
    if grown is None:
        return None
    grown = {**grown, "nic.big_tcp": int(big_packets(grown))}
    contradictions = []
    for key, must_grow in expected(cni, placement, settings, protocol).items():
        grew = grown.get(key, 0) > 0
        if grew != must_grow:
            what = MECHANISMS.get(key, key)
            contradictions.append(f"{what} {'did not move' if must_grow else f'moved ({grown.get(key, 0)})'}")
    return {"mechanisms": [text for key, text in MECHANISMS.items() if grown.get(key, 0) > 0],
            "contradictions": contradictions}
