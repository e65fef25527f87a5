"""Services as the API server and the EndpointSlice controller make them: defaults, the clusterIP, backends.

Upstream: ``pkg/apis/core/v1/defaults.go`` SetDefaults_Service (type ClusterIP, sessionAffinity None,
targetPort = port, protocol TCP); the service REST allocator (clusterIP, clusterIPs, ipFamilies,
ipFamilyPolicy SingleStack, internalTrafficPolicy Cluster, ``pkg/registry/core/service``); backends are the
Ready pods that match spec.selector (``pkg/controller/endpointslice``). The twin takes clusterIPs from host
10, 11, ... of the runtime's service CIDR (plugins/plugin_utils/plan/commands.py SERVICE_HOST is 10).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netlab_twin.kube import discovery
from netlab_twin.kube.store import ApiError, Obj, Store, status

SERVICES = discovery.RESOURCES[("", "services")]


def service_defaults(svc: Obj, cluster_ip: str) -> Obj:
    """SetDefaults_Service and the allocator's fields: type, affinity, the clusterIP(s), families, ports."""
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("clusterIP", cluster_ip)
    if spec["clusterIP"] != "None":
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports", []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    return svc


def free_cluster_ip(store: Store, cidr: str) -> str:
    """The first free host from 10 on of cidr; the allocator's InternalError when the range is full."""
    taken = {s["spec"].get("clusterIP") for s in store.list(SERVICES)["items"]}
    network = ipaddress.ip_network(cidr)
    for host in range(10, network.num_addresses - 1):
        if str(network[host]) not in taken:
            return str(network[host])
    raise ApiError(status(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: "
                          "range is full"))


def backends(selector: dict[str, str], pods: list[dict[str, Any]]) -> list[str]:
    """The IPs of the Ready, not terminating pods whose labels match every key of selector, sorted."""
    return sorted(p["status"]["podIP"] for p in pods
                  if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
                  and not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
                  and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
