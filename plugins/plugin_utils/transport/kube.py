"""Kubernetes transport of the benchmark: the run's objects, the kubernetes.core calls, what the cluster says.

Placement is exact because every pod names its node (``nodeName``: the scheduler is not asked,
so a "cross-node" pair can never land on one node). Each server pod runs ``iperf3 --server``
for one client only; tests run one at a time. The role drives the cluster from the controller
with kubernetes.core; this module builds every object and the arguments of every call, and reads
the objects ``k8s_info`` returns. Pure functions, no Ansible imports.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state

APP = "netlab-iperf3"
SERVICE = "iperf3-cross"
CONTAINER = "iperf3"
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
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_VERSION = re.compile(r"^iperf (\d+)\.(\d+)")
_NETPERF_VERSION = re.compile(r"^Netperf version (\d+(?:\.\d+)+)")
MIN_IPERF3 = (3, 16)
OWN_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "netlab.io/run")
# What bench_pod_overrides may not touch: placement, identity and what the benchmark runs.
PROTECTED = {
    "metadata": ("name", "namespace"),
    "spec": ("nodeName", "nodeSelector", "affinity", "hostNetwork", "containers", "initContainers"),
    "container": ("name", "image", "command", "args", "ports"),
}


class KubeError(ValueError):
    """The cluster side of the benchmark cannot be set up as asked."""


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


def components(placements: list[str], nodes: int = 2) -> list[str]:
    """The pods a matrix needs, in a fixed order."""
    wanted = {c for p in placements for c in needs(p, nodes)}
    return [c for c in PODS if c in wanted]


def node_of(component: str, nodes: list[str]) -> str:
    role = PODS[component][0]
    if role == "same":
        return nodes[2] if len(nodes) > 2 else nodes[0]
    return nodes[0] if role == "client" else nodes[1]


def check_nodes(nodes: list[str]) -> list[str]:
    nodes = [str(n) for n in nodes]
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
    host_network = PODS[component][1]
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
                            "runAsNonRoot": True, "runAsUser": 65534},
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
    }
    if host_network:
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


def manifests(run_id: str, nodes: list[str], placements: list[str], image: str, port: int,
              overrides: dict[str, Any] | None = None, netperf_port: int | None = None) -> list[dict[str, Any]]:
    """Namespace, the Service if a test uses it, and the pods the matrix needs on the nodes
    (``netperf_port``: netserver's control port when the matrix has netperf tests)."""
    nodes = check_nodes(nodes)
    check_image(image)
    overrides = check_overrides(overrides)
    ns = namespace(run_id)
    wanted = components(placements, len(nodes))
    # hostNetwork is outside the restricted and baseline Pod Security levels.
    level = "privileged" if any(PODS[c][1] for c in wanted) else "restricted"
    docs: list[dict[str, Any]] = [{
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/name": APP, "netlab.io/run": run_id[:63],
                                            "pod-security.kubernetes.io/enforce": level}},
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


def _items(result: Any) -> list[dict[str, Any]]:
    """The objects of a ``k8s_info`` result (``resources``), of a looped one (``results``), of a
    List (``items``), or a plain list."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        if "results" in result:
            return [item for one in result["results"] or [] for item in _items(one)]
        if "resources" in result:
            return result["resources"] or []
        if "items" in result:
            return result["items"] or []
        if "kind" in result:
            return [result]
    return []


def node_ip(node: dict[str, Any]) -> str | None:
    addresses = node.get("status", {}).get("addresses", [])
    for kind in ("InternalIP", "ExternalIP"):
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return address["address"]
    return None


def _planner_nodes(names: list[str], pod: dict[str, dict[str, str]], ips: dict[str, str | None],
                   service_ip: str | None) -> list[dict[str, Any]]:
    """The nodes as matrix.endpoints wants them, from the pods found (component -> {name, ip})."""

    def pods(*components_: str) -> list[dict[str, str]]:
        return [pod[c] for c in components_ if c in pod]

    first = {"name": names[0], "ip": ips.get(names[0]), "pods": pods("client", "server-same")
             if len(names) == 2 else pods("client"), "host_pod": pod.get("client-host", {}).get("name")}
    second = {"name": names[1], "ip": ips.get(names[1]), "pods": pods("server-cross"),
              "host_pod": pod.get("server-host", {}).get("name"), "service_ip": service_ip}
    out = [first, second]
    if len(names) > 2:
        out.append({"name": names[2], "ip": ips.get(names[2]), "pods": pods("client-same", "server-same"),
                    "host_pod": None})
    return out


def bench_nodes(node_names: list[str], nodes: Any, pods: Any, services: Any) -> list[dict[str, Any]]:
    """The benchmark nodes as the planner wants them, from ``k8s_info`` of the nodes, pods and Service.

    Each pod must be Running, with an address, on the node it names.
    """
    names = check_nodes(node_names)
    by_name = {n["metadata"]["name"]: n for n in _items(nodes)}
    ips = {name: node_ip(by_name.get(name, {})) for name in names}
    found: dict[str, dict[str, str]] = {}
    for item in _items(pods):
        component = item["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        if component not in PODS:
            continue
        status = item.get("status", {})
        if status.get("phase") != "Running" or not status.get("podIP"):
            raise KubeError(f"pod {item['metadata']['name']} is {status.get('phase', 'unknown')}, not Running")
        want = node_of(component, names)
        if item["spec"].get("nodeName") != want:
            raise KubeError(f"pod {item['metadata']['name']} runs on {item['spec'].get('nodeName')}, not on {want}")
        found[component] = {"name": item["metadata"]["name"], "ip": status["podIP"]}
    # The host tests target the node's address as its hostNetwork pod sees it.
    for component, index in (("client-host", 0), ("server-host", 1)):
        if component in found:
            ips[names[index]] = found[component]["ip"]
    service_ip = next((s.get("spec", {}).get("clusterIP") for s in _items(services)
                       if s["metadata"]["name"] == SERVICE), None)
    return _planner_nodes(names, found, ips, service_ip)


def placeholder_nodes(node_names: list[str], placements: list[str]) -> list[dict[str, Any]]:
    """The planner's nodes before the pods exist (render-only): addresses are named, not known."""
    names = check_nodes(node_names)
    found = {c: {"name": f"iperf3-{c}", "ip": f"POD_IP:iperf3-{c}"} for c in components(placements, len(names))}
    for component, index in (("client-host", 0), ("server-host", 1)):
        if component in found:
            found[component]["ip"] = f"NODE_IP:{names[index]}"
    ips = {name: f"NODE_IP:{name}" for name in names}
    return _planner_nodes(names, found, ips, f"CLUSTER_IP:{SERVICE}" if "service" in placements else None)


def iperf3_version(text: str) -> str:
    """The version from ``iperf3 --version``, or KubeError if older than 3.16."""
    found = _VERSION.match(text.strip())
    if not found:
        raise KubeError(f"cannot read the iperf3 version from {text.strip()[:80]!r}")
    version = (int(found.group(1)), int(found.group(2)))
    if version < MIN_IPERF3:
        raise KubeError(f"iperf3 {version[0]}.{version[1]} is too old: the benchmark needs 3.16 or newer "
                        "(multi-threaded --parallel, reliable --json)")
    return f"{version[0]}.{version[1]}"


def netperf_version(text: str) -> str | None:
    """The version from ``netperf -V`` (``Netperf version 2.7.0`` -> ``2.7.0``); None when the node has no
    netperf (empty output: the command failed), so a matrix without netperf tests still runs there."""
    if not text.strip():
        return None
    found = _NETPERF_VERSION.match(text.strip())
    if not found:
        raise KubeError(f"cannot read the netperf version from {text.strip()[:80]!r}")
    return found.group(1)


def _memory_mb(quantity: str | None) -> int | None:
    """A node's memory capacity (a Kubernetes quantity such as 32859948Ki) in MiB."""
    found = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(quantity or ""))
    if not found:
        return None
    factor = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
    return int(found.group(1)) * factor.get(found.group(2) or "", 1) // 1024 ** 2


def check_nodes_exist(node_names: list[str], nodes: Any) -> list[dict[str, Any]]:
    """The benchmark nodes' objects, in order; KubeError naming the missing ones."""
    by_name = {n["metadata"]["name"]: n for n in _items(nodes)}
    missing = [n for n in node_names if n not in by_name]
    if missing:
        raise KubeError(f"the cluster has no node {', '.join(missing)} (it has {', '.join(sorted(by_name)) or 'none'})")
    return [by_name[n] for n in node_names]


def node_records(node_names: list[str], nodes: Any, hosts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per benchmark node: versions, capacity, taints and where it runs (providerID, system UUID, hypervisor)."""
    hosts = hosts or {}
    out = []
    for item in check_nodes_exist(node_names, nodes):
        status, spec = item.get("status", {}), item.get("spec", {})
        info = status.get("nodeInfo", {})
        name = item["metadata"]["name"]
        out.append({
            "name": name,
            "kubelet": info.get("kubeletVersion"),
            "kernel": info.get("kernelVersion"),
            "os": info.get("osImage"),
            "runtime": info.get("containerRuntimeVersion"),
            "cpu": status.get("capacity", {}).get("cpu"),
            "memory": status.get("capacity", {}).get("memory"),
            "address": node_ip(item),
            "provider_id": spec.get("providerID") or None,
            "system_uuid": info.get("systemUUID") or None,
            "host": hosts.get(name) or None,
            "taints": [{k: t[k] for k in ("key", "value", "effect") if t.get(k) is not None}
                       for t in spec.get("taints") or []],
        })
    return out


def cpuinfo_model(cpuinfo: str) -> str | None:
    """The CPU model in a /proc/cpuinfo text: its first ``model name`` (None where the kernel gives none,
    as arm64's does)."""
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == "model name" and value.strip():
            return value.strip()
    return None


def environment_nodes(records: list[dict[str, Any]], cpuinfo: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``environment.nodes`` of run.json (as the local lab's setup facts give it), from the node objects
    and, per node, the /proc/cpuinfo read in a pod on it (Node objects do not carry the CPU model)."""
    cpuinfo = cpuinfo or {}
    return [{"name": r["name"], "kernel": r["kernel"],
             "vcpus": int(r["cpu"]) if str(r["cpu"] or "").isdigit() else r["cpu"],
             "memtotal_mb": _memory_mb(r["memory"]), "cpu_model": cpuinfo_model(cpuinfo.get(r["name"]) or "")}
            for r in records]


def run_metadata(version: dict[str, Any], records: list[dict[str, Any]], pods: Any) -> dict[str, Any]:
    """Cluster facts recorded once per run: versions, the benchmark nodes, taints, the image digests.

    ``version`` is the server version as ``k8s_cluster_info`` returns it (``version.server``).
    """
    server = version.get("kubernetes", version)
    digests = sorted({status.get("imageID", "") for item in _items(pods)
                      for status in item.get("status", {}).get("containerStatuses", [])} - {""})
    git = server.get("gitVersion", "")
    return {"kubernetes": git, "rke2": git if "+rke2" in git else None, "nodes": records,
            "tainted_nodes": [r["name"] for r in records if r["taints"]], "image_ids": digests}


def datapath(cni: dict[str, Any], node_status: dict[str, dict[str, Any]], mtu: int | None) -> dict[str, Any]:
    """The datapath the cluster runs, from the readers' outputs (plugins/plugin_utils/transport/cni_state.py).

    ``cni`` is identify_cni's ``{cni, daemonset, names}``; ``node_status`` per benchmark node is
    cilium_status's or flannel_node's result (empty for other CNIs); ``mtu`` the client pod's eth0 MTU.
    """
    name = cni.get("cni") or "unknown"
    first = next(iter(node_status.values()), {}) if node_status else {}
    if name == "cilium":
        parts = [f"cilium {first.get('version') or '?'}", f"routing {first.get('routing') or '?'}"]
        if first.get("tunnel_protocol"):
            parts.append(f"tunnel {first['tunnel_protocol']}")
        parts += [f"kube-proxy replacement {first.get('kube_proxy_replacement') or '?'}",
                  f"host routing {first.get('host_routing') or '?'}",
                  f"masquerading {first.get('masquerading') or '?'}"]
    elif name in ("canal", "flannel"):
        # Neither writes its version where the node can read it: the DaemonSet's image tags say it.
        versions = cni_state.image_versions(cni.get("images") or {})
        running = f" ({', '.join(f'{c} {v}' for c, v in versions.items())})" if versions else ""
        parts = [f"{name}: flannel {first.get('backend') or '?'}{running}"]
    else:
        # Not refused: named by the DaemonSets it runs, so the run still says what was measured.
        parts = [f"{name} CNI (DaemonSets: {', '.join(cni.get('names') or []) or 'none'}): "
                 "datapath not read"]
    if mtu:
        parts.append(f"pod MTU {mtu}")
    return {"cni": name, "daemonset": cni.get("daemonset"), "daemonsets": cni.get("names") or [],
            "images": cni.get("images") or {},
            "known": name in ("cilium", "canal", "flannel"),
            "nodes": node_status, "pod_mtu": mtu, "summary": ", ".join(parts)}


def _exec(ns: str, pod: str, command: str, container: str = CONTAINER) -> dict[str, Any]:
    return {"namespace": ns, "pod": pod, "container": container, "command": command}


def cluster_calls(node_names: list[str], cni_namespace: str = "kube-system") -> dict[str, Any]:
    """The calls that read the cluster itself, before the run's objects exist.

    DaemonSets are read in every namespace (Calico's operator runs calico-node in calico-system,
    upstream flannel in kube-flannel); Cilium's agents are then looked for in the namespace of
    the DaemonSet found (``cni_namespace``; kube-system on RKE2).
    """
    return {
        "read_nodes": [{"kind": "Node", "name": n} for n in node_names],
        "read_daemonsets": {"api_version": "apps/v1", "kind": "DaemonSet"},
        "read_cilium_pods": [{"kind": "Pod", "namespace": cni_namespace, "label_selectors": ["k8s-app=cilium"],
                              "field_selectors": [f"spec.nodeName={n}"]} for n in node_names],
        "cilium_status": [_exec(cni_namespace, f"CILIUM_POD:{n}", "cilium-dbg status -o json", "cilium-agent")
                          for n in node_names],
        "cluster_info": {"invalidate_cache": False},
    }


def _runs_netserver(pods: list[dict[str, Any]]) -> bool:
    """Whether the run's pods serve netperf (the matrix has netperf tests): only then must the image hold it."""
    return any(port["name"] == "netperf-ctl" for pod in pods for container in pod["spec"]["containers"]
               for port in container.get("ports", []))


def calls(docs: list[dict[str, Any]], pod_timeout: int, delete_timeout: int,
          plan: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The arguments of every kubernetes.core call on the run's objects, by step, as the role's tasks pass them.

    kubeconfig and context come from module_defaults (group kubernetes.core.k8s). Per-test calls
    are a list, with the task's timeout and retries. ``netperf_version`` only when the pods serve netperf.
    ``cpu_info``: per node, /proc/cpuinfo read in the first of the run's pods on it (not namespaced).
    """
    ns = docs[0]["metadata"]["name"]
    pods = [d for d in docs if d["kind"] == "Pod"]
    client = next((p["metadata"]["name"] for p in pods if not p["spec"].get("hostNetwork")),
                  pods[0]["metadata"]["name"])
    on_node: dict[str, str] = {}
    for pod in pods:
        on_node.setdefault(pod["spec"]["nodeName"], pod["metadata"]["name"])
    out: dict[str, Any] = {
        "create_namespace": {"state": "present", "definition": [d for d in docs if d["kind"] != "Pod"],
                             "wait": True, "wait_timeout": pod_timeout},
        "create_pods": {"state": "present", "definition": pods, "wait": True,
                        "wait_condition": {"type": "Ready", "status": "True"}, "wait_timeout": pod_timeout},
        "read_pods": {"kind": "Pod", "namespace": ns, "label_selectors": [f"app.kubernetes.io/name={APP}"]},
        "read_services": {"kind": "Service", "namespace": ns, "label_selectors": [f"app.kubernetes.io/name={APP}"]},
        "iperf3_version": _exec(ns, client, "iperf3 --version"),
        "pod_mtu": _exec(ns, client, "cat /sys/class/net/eth0/mtu"),
        **({"netperf_version": _exec(ns, client, "netperf -V")} if _runs_netserver(pods) else {}),
        "cpu_info": [{"node": node, **_exec(ns, pod, "cat /proc/cpuinfo")} for node, pod in on_node.items()],
        "delete_namespace": {"state": "absent", "api_version": "v1", "kind": "Namespace", "name": ns,
                             "wait": True, "wait_timeout": delete_timeout},
    }
    if plan is not None:
        # Per test: the client's exec, and the exec that reads the server pod's /proc/stat before and after it.
        out["tests"] = [{"id": t["id"], "args": t["exec"], "cpu_args": t["cpu_exec"], **t["bounds"]} for t in plan]
    return out
