"""Filters that expose the benchmark planner, the Kubernetes transport and the regression gate to
playbooks.

Each filter is documented in its sidecar file of the same name (bench_plan.yml, ...).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.lookup import bench_controller
from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, inputs, matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import gate
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import (
    congestion,
    kube_calls,
    kube_objects,
    kube_read,
    kube_state,
)


def bench_plan(matrix_entries: list[dict[str, Any]], nodes: list[dict[str, Any]],
               settings: dict[str, Any], transport: dict[str, Any] | None = None,
               hosts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    try:
        return commands.plan(matrix_entries, nodes, settings, transport or None, hosts or None)
    except matrix.MatrixError as exc:
        raise AnsibleFilterError(f"bench_plan: {exc}") from exc


def bench_segments(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return matrix.segments(plan)


def bench_servers(plan: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return commands.servers(plan, settings)


def bench_plan_span(plan: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    return repeats.span(list(plan), settings)


def bench_watched(hosts: list[str], also: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return commands.watched(list(hosts), also)


def bench_samplers(plan: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return commands.samplers(list(plan), settings)


def bench_local_service(nodes: list[dict[str, Any]], matrix_entries: list[dict[str, Any]],
                        settings: dict[str, Any]) -> dict[str, Any]:
    try:
        return commands.local_service(list(nodes), matrix_entries, settings)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_local_service: {exc}") from exc


def bench_input_problems(values: dict[str, Any]) -> list[str]:
    return inputs.problems(dict(values))


def bench_iperf3_version(text: str) -> str:
    try:
        return kube_read.iperf3_version(text)
    except kube_read.KubeError as exc:
        raise AnsibleFilterError(f"bench_iperf3_version: {exc}") from exc


def bench_netperf_version(text: str) -> str | None:
    try:
        return kube_read.netperf_version(text or "")
    except kube_read.KubeError as exc:
        raise AnsibleFilterError(f"bench_netperf_version: {exc}") from exc


def bench_congestion_reads(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return commands.congestion_reads(nodes)


def bench_congestion(results: list[dict[str, Any]], pinned: str, transport: str = "local") -> dict[str, Any]:
    """The nodes' congestion control from a loop's results (each ``item`` ``{node, read_in}`` and its stdout),
    and the problems of the pinned one there (the Kubernetes transport's pods run as an unprivileged user)."""
    readings = [{**(one.get("item") or {}), "stdout": one.get("stdout")} for one in results]
    try:
        nodes = congestion.environment(readings)
    except congestion.CongestionError as exc:
        raise AnsibleFilterError(f"bench_congestion: {exc}") from exc
    user = kube_objects.UID if transport == "kubernetes" else None
    return {"nodes": nodes, "problems": congestion.problems(pinned, nodes, user)}


def bench_gate(run_dir: str, baseline_dir: str, tolerance: Any = 10) -> dict[str, Any]:
    """The regression gate of a run folder against a baseline run folder (the role keeps it as gate.json)."""
    try:
        return gate.gate_runs(run_dir, baseline_dir, tolerance)
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_gate: {exc}") from exc


def bench_ports(matrix_entries: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return kube_objects.server_ports(matrix_entries, settings)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_ports: {exc}") from exc


def bench_manifests(run_id: str, nodes: list[str], matrix_entries: list[dict[str, Any]], image: str,
                    port: int, overrides: dict[str, Any] | None = None,
                    netperf_port: int | None = None, controller: dict[str, Any] | None = None,
                    mesh: bool = False) -> list[dict[str, Any]]:
    try:
        return kube_objects.run_objects(run_id, nodes, matrix_entries, image, port, overrides, netperf_port,
                                        controller, mesh)
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_manifests: {exc}") from exc


def bench_k8s_nodes(node_names: list[str], nodes: Any = None, pods: Any = None, services: Any = None,
                    matrix_entries: list[dict[str, Any]] | None = None, mesh: bool = False) -> list[dict[str, Any]]:
    try:
        return kube_read.planner_nodes(node_names, nodes, pods, services, matrix_entries, mesh)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_nodes: {exc}") from exc


def bench_k8s_meta(version: dict[str, Any], node_names: list[str], nodes: Any, pods: Any, iperf3_version: str,
                   hosts: dict[str, Any] | None = None, netperf_version: str | None = None,
                   cpu_info: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    try:
        return kube_read.run_meta(version, node_names, nodes, pods, iperf3_version, hosts, netperf_version, cpu_info)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_meta: {exc}") from exc


def bench_k8s_calls(node_names: list[str], docs: list[dict[str, Any]] | None = None, pod_timeout: int = 0,
                    delete_timeout: int = 0, plan: list[dict[str, Any]] | None = None,
                    cni_namespace: str = "kube-system", lease: dict[str, Any] | None = None,
                    exec_timeout: int = kube_calls.EXEC_TASK_SECONDS) -> dict[str, Any]:
    try:
        return kube_calls.all_calls(node_names, docs, pod_timeout, delete_timeout, plan, cni_namespace, lease,
                                    int(exec_timeout))
    except (ValueError, KeyError, IndexError) as exc:
        raise AnsibleFilterError(f"bench_k8s_calls: {exc}") from exc


def bench_k8s_cni(daemonsets: Any) -> dict[str, Any]:
    try:
        return kube_read.identify_cni(daemonsets)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_cni: {exc}") from exc


def bench_k8s_datapath(cni: dict[str, Any], node_names: list[str], nodes: Any, cilium_status: Any = None,
                       mtu_text: str | None = None) -> dict[str, Any]:
    try:
        return kube_read.cluster_datapath(cni, node_names, nodes, cilium_status, mtu_text)
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_datapath: {exc}") from exc


def bench_k8s_pods_state(result: Any, names: list[str]) -> dict[str, Any]:
    return kube_state.pods_state(result, list(names))


def bench_pair(candidates: list[str], hosts: dict[str, Any] | None, servers: list[str] | None = None,
               mesh: bool = False) -> list[str]:
    return matrix.lab_nodes(list(candidates), list(servers or []), hosts, bool(mesh))


def bench_k8s_choose(nodes: Any, host_label: str = "", mesh: bool = False) -> dict[str, Any]:
    try:
        return kube_read.choose_nodes(nodes, host_label or "", bool(mesh))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_choose: {exc}") from exc


def bench_k8s_agents(results: Any, node_names: list[str]) -> list[str]:
    try:
        return kube_state.agents(results, list(node_names))
    except kube_objects.KubeError as exc:
        raise AnsibleFilterError(f"bench_k8s_agents: {exc}") from exc


def bench_k8s_stale(result: Any, own: str, controller: dict[str, Any] | None = None) -> dict[str, Any]:
    # Whether an earlier run's ansible-playbook still runs is this host's to say (the lookup's own test).
    return kube_state.stale_namespaces(result, own, controller, bench_controller.is_playbook)


def bench_k8s_exec_problems(results: list[Any]) -> list[str]:
    return kube_state.exec_problems([(one[0], one[1]) for one in results])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_plan": bench_plan, "bench_segments": bench_segments, "bench_servers": bench_servers,
                "bench_samplers": bench_samplers, "bench_watched": bench_watched,
                "bench_plan_span": bench_plan_span, "bench_pair": bench_pair,
                "bench_local_service": bench_local_service, "bench_ports": bench_ports,
                "bench_iperf3_version": bench_iperf3_version, "bench_netperf_version": bench_netperf_version,
                "bench_input_problems": bench_input_problems, "bench_gate": bench_gate,
                "bench_congestion_reads": bench_congestion_reads, "bench_congestion": bench_congestion,
                "bench_manifests": bench_manifests, "bench_k8s_nodes": bench_k8s_nodes,
                "bench_k8s_meta": bench_k8s_meta, "bench_k8s_calls": bench_k8s_calls,
                "bench_k8s_cni": bench_k8s_cni, "bench_k8s_datapath": bench_k8s_datapath,
                "bench_k8s_pods_state": bench_k8s_pods_state, "bench_k8s_agents": bench_k8s_agents,
                "bench_k8s_choose": bench_k8s_choose,
                "bench_k8s_stale": bench_k8s_stale, "bench_k8s_exec_problems": bench_k8s_exec_problems}
