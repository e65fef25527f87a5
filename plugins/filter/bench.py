"""Filters that expose the benchmark planner, the Kubernetes transport and the regression gate to
playbooks.

Each filter is documented in its sidecar file of the same name (bench_plan.yml, ...).
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import inputs, matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.report import gate
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube


def bench_plan(matrix_entries: list[dict[str, Any]], nodes: list[dict[str, Any]],
               settings: dict[str, Any], transport: dict[str, Any] | None = None,
               hosts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    try:
        return matrix.build_plan(matrix_entries, nodes, settings, transport or None, hosts or None)
    except matrix.MatrixError as exc:
        raise AnsibleFilterError(f"bench_plan: {exc}") from exc


def bench_segments(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return matrix.segments(plan)


def bench_servers(plan: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return matrix.servers(plan, settings)


def bench_retryable(stdout: str | None, stderr: str | None = None) -> bool:
    return matrix.retryable(stdout, stderr)


def bench_input_problems(values: dict[str, Any]) -> list[str]:
    return inputs.problems(dict(values))


def bench_iperf3_version(text: str) -> str:
    try:
        return kube.iperf3_version(text)
    except kube.KubeError as exc:
        raise AnsibleFilterError(f"bench_iperf3_version: {exc}") from exc


def bench_netperf_version(text: str) -> str | None:
    try:
        return kube.netperf_version(text or "")
    except kube.KubeError as exc:
        raise AnsibleFilterError(f"bench_netperf_version: {exc}") from exc


def bench_gate(run_dir: str, baseline_dir: str, tolerance: Any = 10) -> dict[str, Any]:
    """The regression gate of a run folder against a baseline run folder (the role keeps it as gate.json)."""
    try:
        return gate.gate_runs(run_dir, baseline_dir, tolerance)
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_gate: {exc}") from exc


def _placements(matrix_entries: list[dict[str, Any]]) -> list[str]:
    return [e["placement"] for e in matrix.normalize_matrix(matrix_entries)]


def _netperf_port(matrix_entries: list[dict[str, Any]], netperf_port: Any) -> int | None:
    """netserver's control port when the matrix has netperf tests, else None."""
    netperf = any(matrix.tool(e["protocol"]) == "netperf" for e in matrix.normalize_matrix(matrix_entries))
    return int(netperf_port or matrix.NETPERF_PORT) if netperf else None


def bench_ports(matrix_entries: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return kube.ports(int(settings["port"]), _netperf_port(matrix_entries, settings.get("netperf_port")))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_ports: {exc}") from exc


def bench_manifests(run_id: str, nodes: list[str], matrix_entries: list[dict[str, Any]], image: str,
                    port: int, overrides: dict[str, Any] | None = None,
                    netperf_port: int | None = None) -> list[dict[str, Any]]:
    try:
        return kube.manifests(run_id, list(nodes), _placements(matrix_entries), image, int(port), overrides,
                              _netperf_port(matrix_entries, netperf_port))
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_manifests: {exc}") from exc


def bench_k8s_nodes(node_names: list[str], nodes: Any = None, pods: Any = None, services: Any = None,
                    matrix_entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The planner's nodes from k8s_info results; without pods (render-only) with named placeholders."""
    try:
        if pods is None:
            return kube.placeholder_nodes(list(node_names), _placements(matrix_entries or []))
        return kube.bench_nodes(list(node_names), nodes, pods, services)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_nodes: {exc}") from exc


def bench_k8s_meta(version: dict[str, Any], node_names: list[str], nodes: Any, pods: Any, iperf3_version: str,
                   hosts: dict[str, Any] | None = None, netperf_version: str | None = None,
                   cpu_info: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    try:
        records = kube.node_records(list(node_names), nodes, hosts)
        meta = kube.run_metadata(version or {}, records, pods)
        meta["iperf3"] = kube.iperf3_version(iperf3_version)
        meta["netperf"] = kube.netperf_version(netperf_version or "")
        read = {r["item"]["node"]: r.get("stdout") or "" for r in cpu_info or []}
        meta["environment_nodes"] = kube.environment_nodes(records, read)
        return meta
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_meta: {exc}") from exc


def bench_k8s_calls(node_names: list[str], docs: list[dict[str, Any]] | None = None, pod_timeout: int = 0,
                    delete_timeout: int = 0, plan: list[dict[str, Any]] | None = None,
                    cni_namespace: str = "kube-system") -> dict[str, Any]:
    try:
        out = kube.cluster_calls(list(node_names), cni_namespace or "kube-system")
        if docs:
            out.update(kube.calls(docs, int(pod_timeout), int(delete_timeout), plan))
        return out
    except (ValueError, KeyError, IndexError) as exc:
        raise AnsibleFilterError(f"bench_k8s_calls: {exc}") from exc


def _cni_state() -> Any:
    # Imported when used: the readers of the CNIs' own outputs (plugins/plugin_utils/transport/cni_state.py).
    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state

    return cni_state


def bench_k8s_cni(daemonsets: Any) -> dict[str, Any]:
    try:
        return _cni_state().identify_cni(kube._items(daemonsets))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_cni: {exc}") from exc


def bench_k8s_datapath(cni: dict[str, Any], node_names: list[str], nodes: Any, cilium_status: Any = None,
                       mtu_text: str | None = None) -> dict[str, Any]:
    """The datapath as the cluster reports it: Cilium's status per node, flannel's node annotations."""
    try:
        readers = _cni_state()
        name = cni.get("cni")
        per_node: dict[str, Any] = {}
        if name == "cilium":
            outputs = [r.get("stdout", "") for r in (cilium_status or {}).get("results", [])]
            for node, text in zip(node_names, outputs, strict=False):
                per_node[node] = readers.cilium_status(json.loads(text)) if text.strip() else {"state": "not read"}
        elif name in ("canal", "flannel"):
            by_name = {n["metadata"]["name"]: n for n in kube._items(nodes)}
            per_node = {node: readers.flannel_node(by_name[node]) for node in node_names if node in by_name}
        mtu = int(mtu_text.strip()) if mtu_text and mtu_text.strip().isdigit() else None
        return kube.datapath(cni, per_node, mtu)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_datapath: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_plan": bench_plan, "bench_segments": bench_segments, "bench_servers": bench_servers,
                "bench_ports": bench_ports,
                "bench_retryable": bench_retryable,
                "bench_iperf3_version": bench_iperf3_version, "bench_netperf_version": bench_netperf_version,
                "bench_input_problems": bench_input_problems, "bench_gate": bench_gate,
                "bench_manifests": bench_manifests, "bench_k8s_nodes": bench_k8s_nodes,
                "bench_k8s_meta": bench_k8s_meta, "bench_k8s_calls": bench_k8s_calls,
                "bench_k8s_cni": bench_k8s_cni, "bench_k8s_datapath": bench_k8s_datapath}
