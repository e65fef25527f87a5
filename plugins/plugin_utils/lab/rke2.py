"""RKE2: the install script's environment, node readiness, and the datapath that really runs.

Pure functions, unit tested; the rke2 role calls them through the netlab.lab.rke2_* filters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state

METHODS = ("script", "tarball", "airgap")
NODE_TYPES = ("server", "agent")
_VERSION = re.compile(r"^v1\.\d+\.\d+\+rke2r\d+$")


class InstallError(ValueError):
    """The install settings cannot produce a valid install."""


def install_environment(method: str, version: str, node_type: str, artifact_path: str = "") -> dict[str, str]:
    """Environment of the RKE2 install script (INSTALL_RKE2_*).

    script: the script fetches the release; tarball: the same as a tarball
    (INSTALL_RKE2_METHOD=tar); airgap: everything from a local artifact
    directory (INSTALL_RKE2_ARTIFACT_PATH), nothing is fetched.
    """
    if method not in METHODS:
        raise InstallError(f"install method {method!r} is not one of {', '.join(METHODS)}")
    if node_type not in NODE_TYPES:
        raise InstallError(f"node type {node_type!r} is not one of {', '.join(NODE_TYPES)}")
    if not _VERSION.match(version):
        raise InstallError(f"RKE2 version {version!r} must look like v1.33.5+rke2r1")
    env = {"INSTALL_RKE2_VERSION": version, "INSTALL_RKE2_TYPE": node_type}
    if method == "tarball":
        env["INSTALL_RKE2_METHOD"] = "tar"
    elif method == "airgap":
        if not artifact_path.startswith("/"):
            raise InstallError("an airgap install needs rke2_artifact_path, an absolute directory on the node")
        env["INSTALL_RKE2_ARTIFACT_PATH"] = artifact_path
    return env


def ready_nodes(nodes_json: str | dict[str, Any]) -> list[str]:
    """Names of the Ready nodes in ``kubectl get nodes -o json``; none while the API does not answer."""
    if isinstance(nodes_json, str):
        try:
            nodes_json = json.loads(nodes_json) if nodes_json.strip() else {}
        except json.JSONDecodeError:
            return []
    return sorted(
        item["metadata"]["name"]
        for item in nodes_json.get("items", [])
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in item.get("status", {}).get("conditions", []))
    )


# flannel's device per backend (pkg/backend/vxlan, pkg/backend/wireguard); its host-gw backend (pkg/backend/hostgw)
# makes none, it only routes.
FLANNEL_DEVICES = {"flannel.1": "vxlan", "flannel-wg": "wireguard"}


def flannel_link(ip_json: str | list[dict[str, Any]]) -> dict[str, Any]:
    """flannel's device among the node's links (``ip -j -d link show``): its backend, MTU, VNI and port; backend
    host-gw, with no device, where there is none of them."""
    links = json.loads(ip_json) if isinstance(ip_json, str) else ip_json
    found = [link for link in links if link.get("ifname") in FLANNEL_DEVICES]
    if len(found) > 1:
        raise ValueError(f"expected one flannel device, got {', '.join(link['ifname'] for link in found)}")
    if not found:
        return {"device": None, "backend": "host-gw", "mtu": None, "vni": None, "port": None}
    link = found[0]
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    return {"device": link["ifname"], "backend": info.get("info_kind", "none"), "mtu": link["mtu"],
            "vni": data.get("id"), "port": data.get("port")}


INGRESS_CONTROLLERS = ("none", "ingress-nginx", "traefik")
# The first release of each minor line with the ingress-controller flag (rke2 pkg/cli/cmds/server.go).
_INGRESS_FLAG_SINCE = {31: 8, 32: 4, 33: 0}
_RELEASE = re.compile(r"^v1\.(\d+)\.(\d+)\+rke2r\d+$")


def ingress_config(version: str, controller: str) -> dict[str, Any]:
    """config.yaml keys that choose the ingress controller of a server.

    ``none`` keeps the ingress DaemonSet (hostPorts 80/443 on every node) off the benchmark nodes:
    ``ingress-controller: none`` where the release has the flag (v1.31.8+, v1.32.4+, v1.33+), the
    older ``disable: [rke2-ingress-nginx]`` before. Older releases know only ingress-nginx.
    """
    if controller not in INGRESS_CONTROLLERS:
        raise ValueError(f"ingress controller {controller!r} is not one of {', '.join(INGRESS_CONTROLLERS)}")
    found = _RELEASE.match(version)
    if not found:
        raise ValueError(f"RKE2 version {version!r} must look like v1.33.5+rke2r1")
    minor, patch = int(found.group(1)), int(found.group(2))
    has_flag = minor > max(_INGRESS_FLAG_SINCE) or patch >= _INGRESS_FLAG_SINCE.get(minor, 1 << 30)
    if has_flag:
        return {"ingress-controller": controller}
    if controller == "traefik":
        raise ValueError(f"RKE2 {version} has no ingress-controller flag: only ingress-nginx or none")
    return {"disable": ["rke2-ingress-nginx"]} if controller == "none" else {}


# Cilium 1.14 replaced `tunnel: vxlan|disabled` with routingMode/tunnelProtocol and took
# kubeProxyReplacement as true/false (before: strict/partial/disabled): the role writes those.
CILIUM_VALUES_SINCE = (1, 14)
# The Cilium each RKE2 minor line ships at its first release, where its release notes say so
# (docs.rke2.io/release-notes: v1.29.0+rke2r1 ships rke2-cilium 1.14.400; later lines ship newer).
RKE2_FIRST_CILIUM = {29: (1, 14)}
# bpf.datapathMode (netkit) came with rke2-cilium 1.16.000: the first patch release of each line that ships it
# (the tuning review, from each release's charts/chart_versions.yaml); every later line does.
RKE2_FIRST_NETKIT = {29: 8, 30: 4, 31: 0}


def chart_problems(version: str, cni: str, settings: dict[str, Any] | None = None) -> list[str]:
    """Why the role's chart values cannot be given to the CNI chart of this RKE2 release; empty when they can.

    Canal's values (flannel.backend, calico.vethuMTU) are old; Cilium's need Cilium 1.14, which a
    release older than the first of RKE2_FIRST_CILIUM's lines is not known here to ship, and a profile's
    netkit devices (``settings``) Cilium 1.16.
    """
    found = _RELEASE.match(version or "")
    if not found:
        return [f"RKE2 version {version!r} must look like v1.33.5+rke2r1"]
    nftables = _nftables_problems(version, int(found.group(1)), settings)
    if cni != "cilium" or nftables:
        return nftables
    lines = [line for line in RKE2_FIRST_CILIUM if line <= int(found.group(1))]
    if lines and RKE2_FIRST_CILIUM[max(lines)] >= CILIUM_VALUES_SINCE:
        return _netkit_problems(version, int(found.group(1)), int(found.group(2)), settings)
    since = ".".join(map(str, CILIUM_VALUES_SINCE))
    return [f"RKE2 {version} is not known to ship Cilium {since} or newer, whose chart values this role writes "
            f"(routingMode, tunnelProtocol, kubeProxyReplacement true/false); use RKE2 "
            f"v1.{min(RKE2_FIRST_CILIUM)} or newer"]


# kube-proxy's nftables mode: alpha behind the NFTablesProxyMode gate in Kubernetes 1.29 and 1.30, beta and on by
# default from 1.31 (KEP-3866), GA in 1.33.
KUBE_PROXY_NFTABLES_SINCE = 31


def _nftables_problems(version: str, minor: int, settings: dict[str, Any] | None) -> list[str]:
    """A profile with kube-proxy in nftables mode on a release whose Kubernetes has it only behind a gate."""
    if profiles.setting(settings or {}, "kube_proxy_mode") != "nftables" or minor >= KUBE_PROXY_NFTABLES_SINCE:
        return []
    return [f"RKE2 {version} runs Kubernetes 1.{minor}, whose kube-proxy has the nftables mode only as an alpha "
            f"behind the NFTablesProxyMode feature gate; use RKE2 v1.{KUBE_PROXY_NFTABLES_SINCE} or newer"]


def _netkit_problems(version: str, minor: int, patch: int, settings: dict[str, Any] | None) -> list[str]:
    """A profile with netkit devices on a release whose Cilium chart (before 1.16) has no bpf.datapathMode."""
    if profiles.setting(settings or {}, "datapath_mode") != "netkit" or minor > max(RKE2_FIRST_NETKIT):
        return []
    if minor in RKE2_FIRST_NETKIT and patch >= RKE2_FIRST_NETKIT[minor]:
        return []
    return [f"RKE2 {version} ships a Cilium chart older than 1.16, which has no bpf.datapathMode (netkit); use "
            f"RKE2 {', '.join(f'v1.{m}.{p}' for m, p in RKE2_FIRST_NETKIT.items())} or newer"]


# Bytes flannel takes off the external interface's MTU for its device: pkg/backend/vxlan/device.go
# (``MTU: devAttrs.MTU - 50``) and pkg/backend/wireguard/wireguard_network.go (``overhead = 80``); host-gw
# encapsulates nothing (pkg/backend/hostgw: the lease's MTU is the interface's).
FLANNEL_OVERHEAD = {"vxlan": 50, "wireguard": 80, "host-gw": 0}
# A profile's encryption as the agent's status says it (StatusResponse encryption.mode).
ENCRYPTION_STATUS = {"none": "Disabled", "wireguard": "Wireguard", "ipsec": "IPsec"}


def profile_values(settings: dict[str, Any]) -> dict[str, Any]:
    """A CNI profile's settings (``rke2_profile_settings``: routing, kube_proxy_replacement, host_routing,
    masquerade, mtu, and optionally datapath_mode, encryption, bandwidth_manager, notrack, congestion,
    kube_proxy_mode, big_tcp; playbooks/vars/profiles.yml) as the Cilium and Canal charts take them."""
    encryption = profiles.setting(settings, "encryption")
    bandwidth_manager = bool(profiles.setting(settings, "bandwidth_manager"))
    return {
        "cilium_routing_mode": "tunnel" if settings["routing"] == "vxlan" else "native",
        "cilium_kube_proxy_replacement": settings["kube_proxy_replacement"],
        "cilium_bpf_masquerade": settings["masquerade"] == "bpf",
        # Legacy routing is asked for only where BPF host routing could run; elsewhere Cilium falls back itself.
        "cilium_host_legacy_routing": settings["host_routing"] == "legacy" and settings["kube_proxy_replacement"],
        "cilium_mtu": settings["mtu"],
        # bpf.datapathMode (chart 1.16+); veth is the chart's default and not written.
        "cilium_datapath_mode": profiles.setting(settings, "datapath_mode"),
        # encryption.enabled and encryption.type; IPsec also needs its key Secret (the rke2 role writes it).
        "cilium_encryption": encryption,
        "cilium_bandwidth_manager": bandwidth_manager,
        # bandwidthManager.bbr: the pods' TCP on BBR, paced by the bandwidth manager's fq (without it the
        # profile's congestion control is the benchmark sockets' alone, bench_congestion).
        "cilium_bandwidth_manager_bbr": bandwidth_manager and profiles.setting(settings, "congestion") == "bbr",
        # installNoConntrackIptablesRules: raw-table NOTRACK for traffic from and to the native routing CIDR.
        "cilium_notrack": bool(profiles.setting(settings, "notrack")),
        # enableIPv4BIGTCP: IPv4 GSO/GRO maximum sizes of 192 KiB on the pods' devices and the native devices
        # whose drivers take it.
        "cilium_big_tcp": bool(profiles.setting(settings, "big_tcp")),
        # kube-proxy's --proxy-mode (config.yaml kube-proxy-arg), where kube-proxy runs.
        "kube_proxy_mode": profiles.setting(settings, "kube_proxy_mode"),
        "canal_mtu": settings["mtu"],
        # flannel's backend: routing native is host-gw; its wireguard backend encrypts in place of VXLAN.
        "canal_backend": ("host-gw" if settings["routing"] == "native"
                          else "wireguard" if encryption == "wireguard" else "vxlan"),
    }


def canal_mtu(nic_mtu: int, backend: str) -> int:
    """flannel's device MTU, and so the largest pod MTU, on a NIC of ``nic_mtu`` with this backend."""
    if backend not in FLANNEL_OVERHEAD:
        raise ValueError(f"flannel backend {backend!r} is not one of {', '.join(FLANNEL_OVERHEAD)}")
    mtu = int(nic_mtu) - FLANNEL_OVERHEAD[backend]
    if mtu < 576:
        raise ValueError(f"a NIC MTU of {nic_mtu} leaves {mtu} for {backend}, below the IPv4 minimum of 576")
    return mtu


def datapath(raw: str, cni: str, expected: dict[str, Any], pod_link: str | list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """What runs, said in one line, and how it differs from what was configured.

    ``raw`` for cilium: ``cilium-dbg status -o json`` (also the document it prints with exit code 1);
    for canal: ``ip -j -d link show`` (flannel's device among them, none for host-gw).
    ``expected`` for cilium: kube_proxy_replacement, routing_mode, bpf_masquerade and optionally
    host_legacy_routing, encryption (none, wireguard, ipsec), bandwidth_manager and datapath_mode (each
    checked where the agent reports it: Cilium 1.16 and later);
    for canal: backend, nic_mtu (the MTU flannel starts from: the NIC's, or flannel.mtu when set) and
    optionally veth_mtu (calico.vethuMTU).
    ``pod_link``: ``ip -j link show dev eth0`` in a pod on this node; its MTU becomes ``state.pod_mtu``
    (and cilium's ``state.mtu``) and is compared with veth_mtu when both are given.
    """
    if cni == "cilium":
        state: dict[str, Any] = cni_state.cilium_status(raw)
        kpr = bool(expected["kube_proxy_replacement"])
        wanted: dict[str, Any] = {
            "kube_proxy_replacement": "True" if kpr else "False",
            # Before Cilium 1.16 the status has no network routing mode.
            "routing": expected["routing_mode"].capitalize() if state["routing"] else None,
            # BPF host routing needs both kube-proxy replacement and BPF masquerading, and is not opted out of.
            "host_routing": ("BPF" if expected["bpf_masquerade"] and kpr
                             and not expected.get("host_legacy_routing") else "Legacy"),
            "masquerading": "BPF" if expected["bpf_masquerade"] else "IPTables",
        }
        # The profile's optional settings, where the agent reports them (None before Cilium 1.16).
        reported = {"encryption": ENCRYPTION_STATUS.get(str(expected.get("encryption") or "none")),
                    "bandwidth_manager": bool(expected.get("bandwidth_manager")),
                    "datapath_mode": expected.get("datapath_mode") or "veth"}
        wanted |= {key: value for key, value in reported.items() if state[key] is not None}
        tunnel = f" ({state['tunnel_protocol']})" if state["routing"] == "Tunnel" and state["tunnel_protocol"] else ""
        extras = ([f"encryption {state['encryption']}"] if state["encryption"] not in (None, "Disabled") else [])
        extras += ["bandwidth manager"] if state["bandwidth_manager"] else []
        extras += [f"{state['datapath_mode']} devices"] if state["datapath_mode"] not in (None, "veth") else []
        description = (f"Cilium {state['version'] or '?'} ({state['state']}): "
                       f"kube-proxy replacement {state['kube_proxy_replacement']}, "
                       f"routing {state['routing'] or '?'}{tunnel}, host routing {state['host_routing']}, "
                       f"masquerading {state['masquerading']}" + "".join(f", {extra}" for extra in extras))
    elif cni == "canal":
        state = flannel_link(raw)
        wanted = {"backend": expected["backend"]}
        if state["device"]:
            wanted["mtu"] = canal_mtu(expected["nic_mtu"], expected["backend"])
            description = (f"Canal: flannel {state['backend']} (VNI {state['vni']}, UDP {state['port']}) "
                           f"on {state['device']}, MTU {state['mtu']}")
        else:
            description = "Canal: flannel host-gw (routes to the other nodes' pod CIDRs, no flannel device)"
    else:
        raise ValueError(f"unknown CNI {cni!r}")
    if pod_link is not None:
        state["pod_mtu"] = cni_state.mtu_from_ip_link(pod_link)
        description += f", pod MTU {state['pod_mtu']}"
        if cni == "cilium":
            state["mtu"] = state["pod_mtu"]
        if expected.get("veth_mtu") not in (None, ""):
            wanted["pod_mtu"] = int(expected["veth_mtu"])
    # A Cilium agent that is not Ok (cilium-dbg exits 1 then) is reported first, with its reason.
    problems = [f"state is {state['state']}: {state['message']}"] if state.get("state", "Ok") != "Ok" else []
    problems += [f"{key} is {state[key]}, configured {value}" for key, value in wanted.items()
                 if value is not None and str(state[key]) != str(value)]
    return {"cni": cni, "state": state, "description": description, "problems": problems}
