"""The datapath a cluster really runs, read from what its CNI and the kernel report.

Pure functions on parsed JSON, standard library only (this file may be copied to nodes):

- ``cilium_status``: ``cilium-dbg status -o json``, the agent's StatusResponse (cilium api/v1/models).
- ``flannel_node``: a Node object's flannel annotations (flannel pkg/subnet/kube/annotations.go).
- ``identify_cni``: which CNI the DaemonSets belong to (RKE2's charts in rancher/rke2-charts).
- ``mtu_from_ip_link``: the MTU in ``ip -j link show dev X``.
"""

from __future__ import annotations

import json
import re
from typing import Any

# flannel's default --kube-annotation-prefix (flannel main.go); RKE2's canal and flannel charts keep it.
FLANNEL_PREFIX = "flannel.alpha.coreos.com"
_VERSION = re.compile(r"^v?(\d+\.\d+\.\d+\S*)")
# Cilium before 1.14 reported Strict/Partial/Probe/Disabled; 1.14 and later True/False.
_KPR = {"True": "True", "False": "False", "Strict": "True", "Disabled": "False"}
_MASQUERADING = {"BPF": "BPF", "iptables": "IPTables"}


def _load(doc: Any, what: str) -> Any:
    if isinstance(doc, (bytes, str)):
        if not doc.strip():
            raise ValueError(f"empty output where {what} was expected")
        try:
            return json.loads(doc)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not {what}: not JSON ({exc})") from exc
    return doc


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def cilium_status(doc: dict[str, Any] | str) -> dict[str, Any]:
    """The datapath part of ``cilium-dbg status -o json``.

    Keys: version (``1.18.1`` or None while the agent's probes have not all run), state (Ok, Warning,
    Failure), message (the agent's status message), kube_proxy_replacement (True/False), routing
    (Native/Tunnel; None before Cilium 1.16), host_routing (BPF/Legacy), masquerading (BPF, IPTables
    or Disabled), tunnel_protocol (vxlan/geneve, None when no tunnel is set up), mtu (always None:
    the StatusResponse has no MTU; read it from a pod's eth0 or cilium_host instead), and since Cilium 1.16
    encryption (``encryption.mode``: Disabled, IPsec, Wireguard), bandwidth_manager (``bandwidth-manager``:
    its ``enabled``, which the agent leaves out when false) and datapath_mode (``datapath-mode``: veth,
    netkit, netkit-l2); StatusResponse and its models in cilium/cilium api/v1/openapi.yaml, v1.16.0-v1.18.1.

    A section the agent has not reported yet reads as None. Cilium 1.16 replaced ``host-routing.mode``
    with ``routing.intra-host-routing-mode``; both are read.
    """
    doc = _load(doc, "the output of cilium-dbg status -o json")
    if not isinstance(doc, dict) or not isinstance(doc.get("cilium"), dict) or "state" not in doc["cilium"]:
        raise ValueError("not the output of cilium-dbg status -o json: no cilium.state")
    agent = doc["cilium"]
    message = str(agent.get("msg", ""))
    version = _VERSION.match(message)

    kpr = _section(doc, "kube-proxy-replacement").get("mode")
    routing = _section(doc, "routing")
    host_routing = routing.get("intra-host-routing-mode") or _section(doc, "host-routing").get("mode")
    masq = _section(doc, "masquerading")
    if not masq:
        masquerading = None
    elif not masq.get("enabled"):
        masquerading = "Disabled"
    else:
        masquerading = _MASQUERADING.get(masq.get("mode", ""), masq.get("mode") or None)
    return {
        "version": version.group(1) if version else None,
        "state": agent["state"],
        "message": message,
        "kube_proxy_replacement": _KPR.get(kpr, kpr) if kpr else None,
        "routing": routing.get("inter-host-routing-mode") or None,
        "host_routing": host_routing or None,
        "masquerading": masquerading,
        "tunnel_protocol": routing.get("tunnel-protocol") or None,
        "mtu": None,
        "encryption": _section(doc, "encryption").get("mode") or None,
        "bandwidth_manager": bool(doc["bandwidth-manager"].get("enabled"))
        if isinstance(doc.get("bandwidth-manager"), dict) else None,
        "datapath_mode": doc.get("datapath-mode") if isinstance(doc.get("datapath-mode"), str) else None,
    }


def flannel_node(node: dict[str, Any] | str, prefix: str = FLANNEL_PREFIX) -> dict[str, Any]:
    """flannel's view of one node, from its Node object (``kubernetes.core.k8s_info`` or ``kubectl -o json``).

    Keys: name, backend (vxlan, wireguard, ...), public_ip, vtep_mac (VXLAN only, else None),
    kube_subnet_manager (bool) and pod_cidr.
    """
    node = _load(node, "a Node object")
    if not isinstance(node, dict) or not isinstance(node.get("metadata"), dict):
        raise ValueError("not a Node object: no metadata")
    meta = node["metadata"]
    annotations = meta.get("annotations") or {}
    prefix = prefix if prefix.endswith(("/", "-")) else prefix + "/"
    backend = annotations.get(prefix + "backend-type")
    if not backend:
        raise ValueError(f"node {meta.get('name', '?')} has no {prefix}backend-type annotation: flannel has not "
                         "registered it (not running there, or another annotation prefix)")
    raw_data = annotations.get(prefix + "backend-data") or "{}"
    try:
        data = json.loads(raw_data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"node {meta.get('name', '?')}: {prefix}backend-data is not JSON: {raw_data!r}") from exc
    return {
        "name": meta.get("name"),
        "backend": backend,
        "public_ip": annotations.get(prefix + "public-ip"),
        "vtep_mac": data.get("VtepMAC") if isinstance(data, dict) else None,
        "kube_subnet_manager": annotations.get(prefix + "kube-subnet-manager") == "true",
        "pod_cidr": (node.get("spec") or {}).get("podCIDR"),
    }


# (cni, daemonset names, pod label k8s-app/app values) in the order they are tried: canal runs flannel
# and calico in one DaemonSet, so it comes before both. Sources: rancher/rke2-charts packages/rke2-cilium
# (DaemonSet "cilium", k8s-app=cilium; "cilium-envoy" is a helper, not the agent), packages/rke2-canal
# templates/daemonset.yaml ({{ .Release.Name }} = rke2-canal, k8s-app=canal), packages/rke2-calico (tigera
# operator: "calico-node" in calico-system, k8s-app=calico-node), packages/rke2-flannel (upstream chart:
# "kube-flannel-ds", app=flannel).
_CNIS = (
    ("cilium", ("cilium",), ("cilium",)),
    ("canal", ("rke2-canal", "canal"), ("canal",)),
    ("calico", ("calico-node",), ("calico-node",)),
    ("flannel", ("kube-flannel-ds", "kube-flannel", "rke2-flannel"), ("flannel",)),
)


# What the project's Kubernetes twin (netlab_twin/kube) puts on the CNI DaemonSet it invents.
TWIN_ANNOTATION = "netlab.io/twin"


def identify_cni(daemonsets: list[dict[str, Any]] | dict[str, Any] | str) -> dict[str, Any]:
    """Which CNI runs, from the DaemonSets (``k8s_info`` resources, or a ``kubectl get ds -o json`` list).

    Returns cni (cilium, canal, calico, flannel or unknown), daemonset (its name, None when unknown),
    namespace, names (every DaemonSet seen, sorted), images (the CNI DaemonSet's image per container:
    its tag is the CNI's version, e.g. RKE2's Canal chart runs hardened-calico and hardened-flannel) and
    twin (the DaemonSet's ``netlab.io/twin`` annotation: the project's Kubernetes twin invented it, and
    its agents' answers, from its ``model`` of the local lab or ``canned`` outputs; None on a cluster).
    An unknown CNI is not an error.
    """
    daemonsets = _load(daemonsets, "a DaemonSet list")
    if isinstance(daemonsets, dict):
        daemonsets = daemonsets.get("items", daemonsets.get("resources", []))
    if not isinstance(daemonsets, list):
        raise ValueError("not a DaemonSet list")
    seen = []
    for ds in daemonsets:
        meta = ds.get("metadata") or {}
        labels = ((((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
        containers = ((((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
        images = {c.get("name", ""): c.get("image", "") for c in containers if c.get("image")}
        twin = (meta.get("annotations") or {}).get(TWIN_ANNOTATION)
        seen.append((meta.get("name", ""), meta.get("namespace"), {labels.get("k8s-app"), labels.get("app")}, images,
                     twin))
    names_seen = sorted(name for name, *_ in seen)
    for cni, names, apps in _CNIS:
        for name, namespace, pod_apps, images, twin in seen:
            if name in names or pod_apps & set(apps):
                return {"cni": cni, "daemonset": name, "namespace": namespace, "names": names_seen, "images": images,
                        "twin": twin}
    return {"cni": "unknown", "daemonset": None, "namespace": None, "names": names_seen, "images": {}, "twin": None}


def image_versions(images: dict[str, str]) -> dict[str, str]:
    """Each container's image tag (``rancher/hardened-calico:v3.30.3-build20250909`` -> the tag), digest
    pins left out; an image without a tag is named by its last path part."""
    versions = {}
    for container, image in images.items():
        name = image.split("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        versions[container] = last.split(":", 1)[1] if ":" in last else last
    return versions


def mtu_from_ip_link(ip_json: list[dict[str, Any]] | str) -> int:
    """The MTU in ``ip -j link show dev X``; with several links (``type veth``) they must all agree."""
    links = _load(ip_json, "the output of ip -j link show")
    if not isinstance(links, list) or not links or not all(isinstance(link, dict) and "mtu" in link
                                                         for link in links):
        raise ValueError("not the output of ip -j link show: no link with an mtu")
    mtus = {link["mtu"] for link in links}
    if len(mtus) != 1:
        raise ValueError("the links differ in MTU: " + ", ".join(f"{link.get('ifname')} {link['mtu']}"
                                                                 for link in links))
    return int(mtus.pop())
