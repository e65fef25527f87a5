"""Kubernetes transport of the benchmark: what the cluster says, from the objects ``k8s_info`` returns.

The benchmark nodes as the planner wants them (the run's pods, their addresses, the Service's), the
node records and run metadata run.json keeps, the tools' versions, and the datapath the cluster runs
(its CNI's own words, read by cni_state.py). Pure functions, no Ansible imports.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state, kube_objects, kube_state

_VERSION = re.compile(r"^iperf (\d+)\.(\d+)")
_NETPERF_VERSION = re.compile(r"^Netperf version (\d+(?:\.\d+)+)")
MIN_IPERF3 = (3, 16)
# The transport's one error: what the cluster says cannot be benchmarked as asked.
KubeError = kube_objects.KubeError


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
    # The third node's pods: the same-node pair's, or (a mesh without same-node tests) its mesh pod; the mesh's
    # fourth node on: theirs (kube_objects.components).
    for index, name in enumerate(names[2:], start=2):
        same = ("client-same", "server-same") if index == 2 else ()
        out.append({"name": name, "ip": ips.get(name), "host_pod": None,
                    "pods": pods(*same, f"{kube_objects.MESH}{index}")})
    return out


def bench_nodes(node_names: list[str], nodes: Any, pods: Any, services: Any,
                mesh: bool = False) -> list[dict[str, Any]]:
    """The benchmark nodes as the planner wants them, from ``k8s_info`` of the nodes, pods and Service.

    Each pod must be Running, with an address, on the node it names.
    """
    names = kube_objects.check_nodes(node_names, mesh)
    by_name = {n["metadata"]["name"]: n for n in kube_objects.items(nodes)}
    ips = {name: node_ip(by_name.get(name, {})) for name in names}
    found: dict[str, dict[str, str]] = {}
    for item in kube_objects.items(pods):
        component = item["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        if not kube_objects.is_component(component):
            continue
        status = item.get("status", {})
        if status.get("phase") != "Running" or not status.get("podIP"):
            raise KubeError(f"pod {item['metadata']['name']} is {status.get('phase', 'unknown')}, not Running")
        want = kube_objects.node_of(component, names)
        if item["spec"].get("nodeName") != want:
            raise KubeError(f"pod {item['metadata']['name']} runs on {item['spec'].get('nodeName')}, not on {want}")
        found[component] = {"name": item["metadata"]["name"], "ip": status["podIP"]}
    # The host tests target the node's address as its hostNetwork pod sees it.
    for component, index in (("client-host", 0), ("server-host", 1)):
        if component in found:
            ips[names[index]] = found[component]["ip"]
    service_ip = next((s.get("spec", {}).get("clusterIP") for s in kube_objects.items(services)
                       if s["metadata"]["name"] == kube_objects.SERVICE), None)
    return _planner_nodes(names, found, ips, service_ip)


def placeholder_nodes(node_names: list[str], placements: list[str], mesh: bool = False) -> list[dict[str, Any]]:
    """The planner's nodes before the pods exist (render-only): addresses are named, not known."""
    names = kube_objects.check_nodes(node_names, mesh)
    found = {c: {"name": f"iperf3-{c}", "ip": f"POD_IP:iperf3-{c}"}
             for c in kube_objects.components(placements, len(names), mesh)}
    for component, index in (("client-host", 0), ("server-host", 1)):
        if component in found:
            found[component]["ip"] = f"NODE_IP:{names[index]}"
    ips = {name: f"NODE_IP:{name}" for name in names}
    service = f"CLUSTER_IP:{kube_objects.SERVICE}" if "service" in placements else None
    return _planner_nodes(names, found, ips, service)


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
    by_name = {n["metadata"]["name"]: n for n in kube_objects.items(nodes)}
    missing = [n for n in node_names if n not in by_name]
    if missing:
        raise KubeError(f"the cluster has no node {', '.join(missing)} (it has {', '.join(sorted(by_name)) or 'none'})")
    return [by_name[n] for n in node_names]


# Taints that keep ordinary pods off a node (the benchmark's tolerate them, but a node that runs no workloads is
# not the one a user measures unless asked).
_KEEP_OFF = ("NoSchedule", "NoExecute")


def choose_nodes(nodes: Any, host_label: str = "", mesh: bool = False) -> dict[str, Any]:
    """The benchmark's nodes on a cluster of one's own when none are named, from ``k8s_info`` of every Node:
    its Ready, schedulable nodes, those without a NoSchedule or NoExecute taint first (then by name). A mesh takes
    every untainted one (every one where fewer than three are untainted); a pair the first and the first after it
    on another machine (the ``host_label`` value) where the machines are known (matrix.pair).
    ``{nodes, hosts, candidates, said}``; KubeError when too few are Ready."""
    ready = []
    for item in kube_objects.items(nodes):
        conditions = {c.get("type"): c.get("status") for c in (item.get("status") or {}).get("conditions") or []}
        if conditions.get("Ready") == "True" and not (item.get("spec") or {}).get("unschedulable"):
            ready.append(item)
    tainted = {item["metadata"]["name"] for item in ready
               if any(t.get("effect") in _KEEP_OFF for t in (item.get("spec") or {}).get("taints") or [])}
    candidates = sorted((item["metadata"]["name"] for item in ready), key=lambda name: (name in tainted, name))
    hosts = {item["metadata"]["name"]: ((item["metadata"].get("labels") or {}).get(host_label) if host_label else None)
             for item in ready}
    hosts = {name: host for name, host in hosts.items() if host}
    least = 3 if mesh else 2
    if len(candidates) < least:
        raise KubeError(f"the cluster has {len(candidates)} Ready, schedulable node(s) "
                        f"({', '.join(candidates) or 'none'}); the {'mesh' if mesh else 'benchmark'} needs {least}")
    if mesh:
        untainted = [name for name in candidates if name not in tainted]
        chosen = untainted if len(untainted) >= least else candidates
    else:
        chosen = matrix.pair(candidates, hosts)
    where = [f"{name} (on {hosts[name]})" if hosts.get(name) else name for name in chosen]
    said = (f"bench_nodes not set: the {'mesh' if mesh else 'pair'} {', '.join(where)}, chosen from the cluster's "
            f"{len(candidates)} Ready, schedulable nodes ({len(tainted)} tainted, taken last)")
    return {"nodes": chosen, "hosts": {n: hosts[n] for n in chosen if n in hosts}, "candidates": candidates,
            "said": said}


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

    ``version`` is the server version as ``k8s_cluster_info`` returns it (``version.server``); empty when
    that call failed (it reads every API group, and one broken aggregated API fails it): then the first
    node's kubelet version stands in, and ``version_from`` says so.
    """
    server = version.get("kubernetes", version)
    digests = sorted({status.get("imageID", "") for item in kube_objects.items(pods)
                      for status in item.get("status", {}).get("containerStatuses", [])} - {""})
    git = server.get("gitVersion", "")
    source = "api server"
    if not git:
        git = next((r["kubelet"] for r in records if r.get("kubelet")), "") or ""
        source = "kubelet of the benchmark nodes" if git else "unknown"
    return {"kubernetes": git, "version_from": source, "rke2": git if "+rke2" in git else None, "nodes": records,
            "tainted_nodes": [r["name"] for r in records if r["taints"]], "image_ids": digests}


def datapath(cni: dict[str, Any], node_status: dict[str, dict[str, Any]], mtu: int | None) -> dict[str, Any]:
    """The datapath the cluster runs, from the readers' outputs (cni_state.py).

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
    if cni.get("twin"):
        # No CNI agent ran: the Kubernetes twin answered for it (netlab_twin/kube).
        parts.append(f"as the Kubernetes twin's {cni['twin']} answers, not a CNI agent")
    return {"cni": name, "daemonset": cni.get("daemonset"), "daemonsets": cni.get("names") or [],
            "images": cni.get("images") or {},
            "known": name in ("cilium", "canal", "flannel"), "twin": cni.get("twin"),
            "nodes": node_status, "pod_mtu": mtu, "summary": ", ".join(parts)}


def planner_nodes(node_names: list[str], nodes: Any = None, pods: Any = None, services: Any = None,
                  entries: list[dict[str, Any]] | None = None, mesh: bool = False) -> list[dict[str, Any]]:
    """The planner's nodes from ``k8s_info`` results (``bench_nodes``); without pods (render-only), with
    named placeholders for the pods ``entries`` needs (``placeholder_nodes``); ``mesh``: bench_mesh's nodes."""
    if pods is None:
        return placeholder_nodes(list(node_names), kube_objects.placements(entries or []), bool(mesh))
    return bench_nodes(list(node_names), nodes, pods, services, bool(mesh))


def run_meta(version: dict[str, Any], node_names: list[str], nodes: Any, pods: Any, iperf3_text: str,
             hosts: dict[str, Any] | None = None, netperf_text: str | None = None,
             cpu_info: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """run.json's ``environment.kubernetes``: run_metadata with the tools' versions read in the client pod
    (``iperf3 --version``, ``netperf -V``) and ``environment_nodes``, the CPU model from ``cpu_info``
    (the looped k8s_exec results of /proc/cpuinfo, each with its ``item.node``)."""
    records = node_records(list(node_names), nodes, hosts)
    meta = run_metadata(version or {}, records, pods)
    meta["iperf3"] = iperf3_version(iperf3_text)
    meta["netperf"] = netperf_version(netperf_text or "")
    read = {result["item"]["node"]: result.get("stdout") or "" for result in cpu_info or []}
    meta["environment_nodes"] = environment_nodes(records, read)
    return meta


def identify_cni(daemonsets: Any) -> dict[str, Any]:
    """Which CNI the cluster runs, from ``k8s_info`` of its DaemonSets (cni_state.identify_cni)."""
    return cni_state.identify_cni(kube_objects.items(daemonsets))


def cluster_datapath(cni: dict[str, Any], node_names: list[str], nodes: Any, cilium_status: Any = None,
                     mtu_text: str | None = None) -> dict[str, Any]:
    """The datapath as the cluster reports it (``datapath``): per benchmark node Cilium's status (the looped
    k8s_exec results of ``cilium-dbg status -o json``, in node order) or flannel's node annotations; the
    pod MTU as ``cat /sys/class/net/eth0/mtu`` printed it in the client pod."""
    name = cni.get("cni")
    per_node: dict[str, Any] = {}
    if name == "cilium":
        results = (cilium_status or {}).get("results", [])
        for node, result in zip(node_names, results, strict=False):
            status = kube_state.json_or_problem(result, f"cilium-dbg status on {node}")
            per_node[node] = cni_state.cilium_status(status)
    elif name in ("canal", "flannel"):
        by_name = {node["metadata"]["name"]: node for node in kube_objects.items(nodes)}
        per_node = {node: cni_state.flannel_node(by_name[node]) for node in node_names if node in by_name}
    mtu = int(mtu_text.strip()) if mtu_text and mtu_text.strip().isdigit() else None
    return datapath(cni, per_node, mtu)
