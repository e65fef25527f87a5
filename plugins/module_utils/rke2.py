"""RKE2: the install script's environment, node readiness, and the datapath that really runs.

Pure functions, unit tested; the rke2 role calls them through the netlab.lab.rke2_* filters.
"""

from __future__ import annotations

import json
import re
from typing import Any

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


def cilium_status(text: str) -> dict[str, str]:
    """The datapath lines of ``cilium-dbg status``.

    Cilium 1.16 and later print ``Routing: Network: Native   Host: BPF``;
    earlier releases ``Host Routing: BPF`` and no network routing mode.
    """
    fields = {}
    for line in text.splitlines():
        if line[:1].isspace() or ":" not in line:
            continue  # the indented detail sections repeat names with other meanings
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()

    def word(key: str, index: int = 0) -> str:
        words = fields.get(key, "").split()
        return words[index] if len(words) > index else ""

    parsed = {"version": word("Cilium", 1), "kube_proxy_replacement": word("KubeProxyReplacement"),
              "masquerading": word("Masquerading"), "host_routing": word("Host Routing"), "routing": ""}
    routing = re.match(r"Network:\s*(\S+)(?:\s+\[[^]]*\])?\s+Host:\s*(\S+)", fields.get("Routing", ""))
    if routing:
        parsed["routing"], parsed["host_routing"] = routing.group(1), routing.group(2)
    if not parsed["kube_proxy_replacement"] and not parsed["host_routing"]:
        raise ValueError("not the output of cilium-dbg status: no KubeProxyReplacement or host routing line")
    return parsed


def vxlan_link(ip_json: str | list[dict[str, Any]]) -> dict[str, Any]:
    """flannel's VXLAN device from ``ip -j -d link show flannel.1``."""
    links = json.loads(ip_json) if isinstance(ip_json, str) else ip_json
    if len(links) != 1:
        raise ValueError(f"expected one link, got {len(links)}")
    link = links[0]
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    return {"device": link["ifname"], "backend": info.get("info_kind", "none"), "mtu": link["mtu"],
            "vni": data.get("id"), "port": data.get("port")}


def datapath(raw: str, cni: str, expected: dict[str, Any]) -> dict[str, Any]:
    """What runs, said in one line, and how it differs from what was configured.

    ``expected`` for cilium: kube_proxy_replacement, routing_mode, bpf_masquerade;
    for canal: backend, mtu.
    """
    if cni == "cilium":
        state: dict[str, Any] = cilium_status(raw)
        wanted = {
            "kube_proxy_replacement": "True" if expected["kube_proxy_replacement"] else "False",
            "routing": expected["routing_mode"].capitalize() if state["routing"] else "",
            # BPF host routing needs both kube-proxy replacement and BPF masquerading.
            "host_routing": "BPF" if expected["bpf_masquerade"] and expected["kube_proxy_replacement"] else "Legacy",
            "masquerading": "BPF" if expected["bpf_masquerade"] else "IPTables",
        }
        description = (f"Cilium {state['version'] or '?'}: kube-proxy replacement {state['kube_proxy_replacement']}, "
                       f"routing {state['routing'] or '?'}, host routing {state['host_routing']}, "
                       f"masquerading {state['masquerading']}")
    elif cni == "canal":
        state = vxlan_link(raw)
        wanted = {"backend": expected["backend"], "mtu": expected["mtu"]}
        description = (f"Canal: flannel {state['backend']} (VNI {state['vni']}, UDP {state['port']}) "
                       f"on {state['device']}, MTU {state['mtu']}")
    else:
        raise ValueError(f"unknown CNI {cni!r}")
    problems = [f"{key} is {state[key]}, configured {value}" for key, value in wanted.items()
                if value != "" and str(state[key]) != str(value)]
    return {"cni": cni, "state": state, "description": description, "problems": problems}
