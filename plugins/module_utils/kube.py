"""Kubernetes transport of the benchmark: the run's namespace, pinned iperf3 pods, one Service.

Placement is exact because every pod names its node (``nodeName``: the scheduler is not asked,
so a "cross-node" pair can never land on one node). Each server pod runs ``iperf3 --server``
for one client only; tests run one at a time. Pure functions, no Ansible imports.
"""

from __future__ import annotations

import re
from typing import Any

APP = "netlab-iperf3"
SERVICE = "iperf3-cross"
# component -> (node index, hostNetwork)
PODS = {
    "client": (0, False),
    "server-same": (0, False),
    "server-cross": (1, False),
    "client-host": (0, True),
    "server-host": (1, True),
}
NEEDS = {
    "host": ("client-host", "server-host"),
    "same-node": ("client", "server-same"),
    "cross-node": ("client", "server-cross"),
    "service": ("client", "server-cross"),
}
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_VERSION = re.compile(r"^iperf (\d+)\.(\d+)")
MIN_IPERF3 = (3, 16)


class KubeError(ValueError):
    """The cluster side of the benchmark cannot be set up as asked."""


def namespace(run_id: str) -> str:
    """The run's own namespace: a DNS label derived from the run id."""
    label = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    return f"netlab-bench-{label}"[:63].rstrip("-")


def check_image(image: str) -> str:
    if not _DIGEST.match(image or ""):
        raise KubeError(f"iperf3_bench_image must be pinned by digest (name@sha256:<64 hex>), got {image!r}; "
                        "a tag can change under a benchmark, a digest cannot")
    return image


def components(placements: list[str]) -> list[str]:
    """The pods a matrix needs, in a fixed order."""
    wanted = {c for p in placements for c in NEEDS[p]}
    return [c for c in PODS if c in wanted]


def _pod(component: str, node: str, ns: str, run_id: str, image: str, port: int) -> dict[str, Any]:
    host_network = PODS[component][1]
    container: dict[str, Any] = {
        "name": "iperf3",
        "image": image,
        # Every pod serves, clients too: the image then needs nothing but iperf3 to stay up.
        "command": ["iperf3", "--server", "--port", str(port)],
        "ports": [{"name": "iperf3-tcp", "containerPort": port, "protocol": "TCP"},
                  {"name": "iperf3-udp", "containerPort": port, "protocol": "UDP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
        # No CPU limit: a throttled iperf3 would measure the quota, not the datapath.
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True, "runAsUser": 65534},
    }
    spec: dict[str, Any] = {
        "nodeName": node,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        # A benchmark pod must run on the node it names, taints or not.
        "tolerations": [{"operator": "Exists"}],
        "containers": [container],
    }
    if host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"iperf3-{component}", "namespace": ns,
                     "labels": {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component,
                                "netlab.io/run": run_id[:63]}},
        "spec": spec,
    }


def manifests(run_id: str, nodes: list[str], placements: list[str], image: str, port: int) -> list[dict[str, Any]]:
    """Namespace, the pods the matrix needs on the two nodes, and the Service if a test uses it."""
    if len(nodes) != 2:
        raise KubeError(f"the benchmark needs two nodes, got {nodes}")
    check_image(image)
    ns = namespace(run_id)
    wanted = components(placements)
    # hostNetwork is outside the restricted and baseline Pod Security levels.
    level = "privileged" if any(PODS[c][1] for c in wanted) else "restricted"
    docs: list[dict[str, Any]] = [{
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/name": APP, "netlab.io/run": run_id[:63],
                                            "pod-security.kubernetes.io/enforce": level}},
    }]
    docs += [_pod(c, nodes[PODS[c][0]], ns, run_id, image, port) for c in wanted]
    if "service" in placements:
        docs.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": ns, "labels": {"app.kubernetes.io/name": APP}},
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "server-cross"},
                "ports": [{"name": "iperf3-tcp", "port": port, "targetPort": port, "protocol": "TCP"},
                          {"name": "iperf3-udp", "port": port, "targetPort": port, "protocol": "UDP"}],
            },
        })
    return docs


def bench_nodes(nodes: list[dict[str, Any]], pods_json: dict[str, Any], services_json: dict[str, Any]
                ) -> list[dict[str, Any]]:
    """The two nodes as the planner wants them, from ``kubectl get pods,services -o json`` of the run.

    ``nodes`` are ``{name, ip}``; each pod must be Running on the node it names.
    """
    by_component: dict[str, dict[str, Any]] = {}
    for item in pods_json.get("items", []):
        component = item["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        status = item.get("status", {})
        if status.get("phase") != "Running" or not status.get("podIP"):
            raise KubeError(f"pod {item['metadata']['name']} is {status.get('phase', 'unknown')}, not Running")
        if item["spec"].get("nodeName") != nodes[PODS[component][0]]["name"]:
            raise KubeError(f"pod {item['metadata']['name']} runs on {item['spec'].get('nodeName')}, "
                            f"not on {nodes[PODS[component][0]]['name']}")
        by_component[component] = {"name": item["metadata"]["name"], "ip": status["podIP"]}

    def pods(*names: str) -> list[dict[str, Any]]:
        return [by_component[n] for n in names if n in by_component]

    service_ip = next((s["spec"].get("clusterIP") for s in services_json.get("items", [])
                       if s["metadata"]["name"] == SERVICE), None)
    first = {**nodes[0], "pods": pods("client", "server-same"),
             "host_pod": by_component.get("client-host", {}).get("name")}
    second = {**nodes[1], "pods": pods("server-cross"), "host_pod": by_component.get("server-host", {}).get("name"),
              "service_ip": service_ip}
    return [first, second]


def iperf3_version(text: str) -> str:
    """The version from ``iperf3 --version``, or KubeError if older than 3.16."""
    found = _VERSION.match(text.strip())
    if not found:
        raise KubeError(f"cannot read the iperf3 version from {text.strip()[:80]!r}")
    version = (int(found.group(1)), int(found.group(2)))
    if version < MIN_IPERF3:
        raise KubeError(f"the image has iperf3 {version[0]}.{version[1]}; the benchmark needs 3.16 or newer "
                        "(multi-threaded --parallel, reliable --json)")
    return f"{version[0]}.{version[1]}"


def run_metadata(version_json: dict[str, Any], nodes_json: dict[str, Any], pods_json: dict[str, Any],
                 node_names: list[str]) -> dict[str, Any]:
    """Cluster facts recorded once per run: versions, the benchmark nodes and the image digest."""
    server = version_json.get("serverVersion", {})
    nodes = []
    for item in nodes_json.get("items", []):
        if item["metadata"]["name"] in node_names:
            info = item["status"].get("nodeInfo", {})
            nodes.append({"name": item["metadata"]["name"], "kubelet": info.get("kubeletVersion"),
                          "kernel": info.get("kernelVersion"), "os": info.get("osImage"),
                          "runtime": info.get("containerRuntimeVersion"),
                          "cpu": item["status"].get("capacity", {}).get("cpu"),
                          "memory": item["status"].get("capacity", {}).get("memory")})
    digests = sorted({status.get("imageID", "") for item in pods_json.get("items", [])
                      for status in item.get("status", {}).get("containerStatuses", [])} - {""})
    git = server.get("gitVersion", "")
    return {"kubernetes": git, "rke2": git if "+rke2" in git else None,
            "nodes": sorted(nodes, key=lambda n: node_names.index(n["name"])), "image_ids": digests}
