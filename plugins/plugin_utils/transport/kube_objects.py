"""Kubernetes transport of the benchmark: the run's objects (namespace, pods, the Service).

Placement is exact because every pod names its node (``nodeName``: the scheduler is not asked,
so a "cross-node" pair can never land on one node). Each server pod runs ``iperf3 --server``
for one client only; tests run one at a time. The role creates these objects with kubernetes.core
(kube_calls.py) and reads them back (kube_read.py). Pure functions, no Ansible imports.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix

APP = "netlab-iperf3"
SERVICE = "iperf3-cross"
CONTAINER = "iperf3"
# The benchmark image's own user (roles/bench_image/vars/main.yml bench_image_uid), owner of its home.
UID = 65532
# component -> (role of its node, hostNetwork). Node roles: client (first node), server (second),
# same (third node if given, else the first: where the same-node pair runs).
PODS = {
    "client": ("client", False),
    "server-same": ("same", False),
    "client-same": ("same", False),
    "server-cross": ("server", False),
    "client-host": ("client", True),
    "server-host": ("server", True),
}
# A node-pair mesh (bench_mesh): node i (from the third on) without a pod on the pod network gets one, its
# component "mesh-<i>"; every pod serves, so each node's first pod is the client and the server of its pairs.
MESH = "mesh-"
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
OWN_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "netlab.io/run")
# On the run's Namespace: "<host>/<ansible-playbook pid>" of the controller that made it, so a later run
# there can tell an interrupted run's namespace (its process gone) from a running one (kube_state).
CONTROLLER = "netlab.io/controller"
# What bench_pod_overrides may not touch: placement, identity and what the benchmark runs.
PROTECTED = {
    "metadata": ("name", "namespace"),
    "spec": ("nodeName", "nodeSelector", "affinity", "hostNetwork", "containers", "initContainers"),
    "container": ("name", "image", "command", "args", "ports"),
}


class KubeError(ValueError):
    """The cluster side of the benchmark cannot be set up as asked."""


def items(result: Any) -> list[dict[str, Any]]:
    """The objects of a ``k8s_info`` result (``resources``), of a looped one (``results``), of a
    List (``items``), or a plain list."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        if "results" in result:
            return [item for one in result["results"] or [] for item in items(one)]
        if "resources" in result:
            return result["resources"] or []
        if "items" in result:
            return result["items"] or []
        if "kind" in result:
            return [result]
    return []


def namespace(run_id: str) -> str:
    """The run's own namespace: a DNS label derived from the run id."""
    label = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    return f"netlab-bench-{label}"[:63].rstrip("-")


def check_image(image: str) -> str:
    if not _DIGEST.match(image or ""):
        raise KubeError(f"bench_pod_image must be pinned by digest (name@sha256:<64 hex>), got {image!r}; "
                        "a tag can change under a benchmark, a digest cannot")
    return image


def needs(placement: str, nodes: int) -> tuple[str, str]:
    """(client pod, server pod) of a placement; with a third node the same-node pair runs there."""
    if placement == "host":
        return "client-host", "server-host"
    if placement == "same-node":
        return ("client-same" if nodes > 2 else "client"), "server-same"
    return "client", "server-cross"


def is_component(component: Any) -> bool:
    """Whether a pod's component label is one of the run's: PODS, or a mesh node's pod."""
    component = str(component or "")
    return component in PODS or (component.startswith(MESH) and component[len(MESH):].isdigit())


def host_network(component: str) -> bool:
    return PODS[component][1] if component in PODS else False


def components(placements: list[str], nodes: int = 2, mesh: bool = False) -> list[str]:
    """The pods a matrix needs, in a fixed order; with a mesh, one more on each node from the third on that has
    none on the pod network (the third node has the same-node pair's when the matrix has same-node tests)."""
    wanted = {c for p in placements for c in needs(p, nodes)}
    fixed = [c for c in PODS if c in wanted]
    if not mesh or "cross-node" not in placements:
        return fixed
    third = {"client-same", "server-same"} & wanted
    return fixed + [f"{MESH}{i}" for i in range(2, nodes) if i > 2 or not third]


def node_of(component: str, nodes: list[str]) -> str:
    if component.startswith(MESH):
        return nodes[int(component[len(MESH):])]
    role = PODS[component][0]
    if role == "same":
        return nodes[2] if len(nodes) > 2 else nodes[0]
    return nodes[0] if role == "client" else nodes[1]


def check_nodes(nodes: list[str], mesh: bool = False) -> list[str]:
    nodes = [str(n) for n in nodes]
    if mesh:
        if len(nodes) < 3 or len(set(nodes)) != len(nodes):
            raise KubeError(f"the node-pair mesh needs three or more different nodes, got {nodes}")
        return nodes
    if len(nodes) not in (2, 3) or len(set(nodes[:2])) != 2:
        raise KubeError(f"the benchmark needs two different nodes, client and server (and optionally a third "
                        f"for the same-node pair), got {nodes}")
    return nodes


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) is replaced."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``bench_pod_overrides``: ``metadata`` and ``spec`` of every pod, ``container`` of its container."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise KubeError(f"bench_pod_overrides must be a mapping, got {type(overrides).__name__}")
    unknown = sorted(set(overrides) - set(PROTECTED))
    if unknown:
        raise KubeError(f"bench_pod_overrides: unknown key(s) {unknown}; use metadata, spec and container")
    for part, keys in PROTECTED.items():
        section = overrides.get(part) or {}
        if not isinstance(section, dict):
            raise KubeError(f"bench_pod_overrides.{part} must be a mapping")
        taken = sorted(set(section) & set(keys))
        if taken:
            raise KubeError(f"bench_pod_overrides.{part} may not set {taken}: the benchmark decides "
                            "where its pods run and what they run")
    labels = (overrides.get("metadata") or {}).get("labels") or {}
    if set(labels) & set(OWN_LABELS):
        raise KubeError(f"bench_pod_overrides may not set the labels {sorted(set(labels) & set(OWN_LABELS))}")
    return overrides


def ports(port: int, netperf_port: int | None) -> list[dict[str, Any]]:
    """The ports every server listens on: iperf3's (TCP and UDP), with netperf tests netserver's control
    port and the data ports the tests pin, one for the tests straight to the pod and one for those through
    the Service (matrix.netperf_ports; TCP for TCP_RR/TCP_CRR, UDP for UDP_RR)."""
    found = [("iperf3-tcp", port, "TCP"), ("iperf3-udp", port, "UDP")]
    if netperf_port:
        control, direct, through_service = matrix.netperf_ports({"netperf_port": netperf_port})
        found += [("netperf-ctl", control, "TCP"), ("netperf-data", direct, "TCP"), ("netperf-data-u", direct, "UDP"),
                  ("netperf-svc", through_service, "TCP"), ("netperf-svc-u", through_service, "UDP")]
    return [{"name": name, "port": number, "protocol": protocol} for name, number, protocol in found]


def server_command(port: int, netperf_port: int | None) -> list[str]:
    """What every pod runs: iperf3's server; with netperf tests netserver too (it daemonizes), so the
    image needs netperf only when the matrix has netperf tests."""
    iperf3 = ["iperf3", "--server", "--port", str(port)]
    if not netperf_port:
        return iperf3
    return ["sh", "-c", f"netserver -p {netperf_port} && exec {' '.join(iperf3)}"]


def _pod(component: str, node: str, ns: str, run_id: str, image: str, port: int,
         overrides: dict[str, Any], netperf_port: int | None = None) -> dict[str, Any]:
    on_host = host_network(component)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        # Every pod serves, clients too: the image then needs nothing but the servers to stay up.
        "command": server_command(port, netperf_port),
        "ports": [{"name": p["name"], "containerPort": p["port"], "protocol": p["protocol"]}
                  for p in ports(port, netperf_port)],
        # No probe: a probe that connects to the iperf3 port is a fake client that makes the server
        # close its listener (esnet/iperf IERECVCOOKIE). Ready = container started; the first test
        # retries a refused connection.
        # No CPU limit: a throttled iperf3 would measure the quota, not the datapath.
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID},
        # netserver 2.7.0 writes /tmp/netserver.debug_<pid> and exits when it cannot (src/netserver.c
        # open_debug_file): /tmp is the pod's own, writable even with readOnlyRootFilesystem.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "nodeName": node,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        # A benchmark pod must run on the node it names, taints or not (the run records the taints).
        "tolerations": [{"operator": "Exists"}],
        "containers": [_merge(container, overrides.get("container") or {})],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if on_host:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"iperf3-{component}", "namespace": ns,
                     "labels": {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component,
                                "netlab.io/run": run_id[:63]}},
        "spec": spec,
    }
    return _merge(pod, {"metadata": overrides.get("metadata") or {}, "spec": overrides.get("spec") or {}})


def controller_mark(controller: dict[str, Any] | None) -> str:
    """The CONTROLLER annotation of a run made by ``controller`` ({host, pid}; lookup bench_controller)."""
    return f"{controller['host']}/{controller['pid']}" if controller else ""


def manifests(run_id: str, nodes: list[str], placements: list[str], image: str, port: int,
              overrides: dict[str, Any] | None = None, netperf_port: int | None = None,
              controller: dict[str, Any] | None = None, mesh: bool = False) -> list[dict[str, Any]]:
    """Namespace, the Service if a test uses it, and the pods the matrix needs on the nodes
    (``netperf_port``: netserver's control port when the matrix has netperf tests; ``controller``: who
    runs it, written on the Namespace; ``mesh``: a pod on the pod network on every node)."""
    nodes = check_nodes(nodes, mesh)
    check_image(image)
    overrides = check_overrides(overrides)
    ns = namespace(run_id)
    wanted = components(placements, len(nodes), mesh)
    # hostNetwork is outside the restricted and baseline Pod Security levels.
    level = "privileged" if any(host_network(c) for c in wanted) else "restricted"
    docs: list[dict[str, Any]] = [{
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/name": APP, "netlab.io/run": run_id[:63],
                                            "pod-security.kubernetes.io/enforce": level},
                     **({"annotations": {CONTROLLER: controller_mark(controller)}} if controller else {})},
    }]
    if "service" in placements:
        docs.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": ns, "labels": {"app.kubernetes.io/name": APP}},
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "server-cross"},
                "ports": [{**p, "targetPort": p["port"]} for p in ports(port, netperf_port)],
            },
        })
    docs += [_pod(c, node_of(c, nodes), ns, run_id, image, port, overrides, netperf_port) for c in wanted]
    return docs


def placements(entries: list[dict[str, Any]]) -> list[str]:
    """The placement of each of a matrix's tests (checked: matrix.MatrixError on a bad matrix)."""
    return [entry["placement"] for entry in matrix.normalize_matrix(entries)]


def netserver_port(entries: list[dict[str, Any]], netperf_port: Any = None) -> int | None:
    """netserver's control port when the matrix has netperf tests (default matrix.NETPERF_PORT), else None."""
    netperf = any(matrix.tool(entry["protocol"]) == "netperf" for entry in matrix.normalize_matrix(entries))
    return int(netperf_port or matrix.NETPERF_PORT) if netperf else None


def server_ports(entries: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The ports a matrix's servers listen on with a run's settings (``port``, ``netperf_port``)."""
    return ports(int(settings["port"]), netserver_port(entries, settings.get("netperf_port")))


def run_objects(run_id: str, nodes: list[str], entries: list[dict[str, Any]], image: str, port: Any,
                overrides: dict[str, Any] | None = None, netperf_port: Any = None,
                controller: dict[str, Any] | None = None, mesh: bool = False) -> list[dict[str, Any]]:
    """The run's objects (``manifests``) for a matrix: netserver's port only when it has netperf tests."""
    return manifests(run_id, list(nodes), placements(entries), image, int(port), overrides,
                     netserver_port(entries, netperf_port), controller or None, bool(mesh))
