"""Filters that expose the benchmark planner and the iperf3 parser to playbooks.

Each filter is documented in its sidecar file of the same name (bench_plan.yml, ...).
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.module_utils import kube, matrix, results


def bench_plan(matrix_entries: list[dict[str, Any]], nodes: list[dict[str, Any]],
               settings: dict[str, Any], transport: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    try:
        return matrix.build_plan(matrix_entries, nodes, settings, transport or None)
    except matrix.MatrixError as exc:
        raise AnsibleFilterError(f"bench_plan: {exc}") from exc


def iperf3_record(doc: str | dict[str, Any]) -> dict[str, Any]:
    try:
        return results.parse_iperf3(json.loads(doc) if isinstance(doc, str) else doc)
    except ValueError as exc:
        raise AnsibleFilterError(f"iperf3_record: {exc}") from exc


def spread(values: list[Any]) -> dict[str, float | None]:
    try:
        return results.spread([float(v) for v in values])
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"spread: {exc}") from exc


def bench_manifests(run_id: str, nodes: list[str], matrix_entries: list[dict[str, Any]], image: str,
                    port: int) -> list[dict[str, Any]]:
    try:
        placements = [e["placement"] for e in matrix.normalize_matrix(matrix_entries)]
        return kube.manifests(run_id, list(nodes), placements, image, int(port))
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_manifests: {exc}") from exc


def bench_k8s_nodes(nodes: list[dict[str, Any]], pods_json: str | dict[str, Any],
                    services_json: str | dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return kube.bench_nodes(nodes, _json(pods_json), _json(services_json))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_nodes: {exc}") from exc


def bench_k8s_meta(version_json: str | dict[str, Any], nodes_json: str | dict[str, Any],
                   pods_json: str | dict[str, Any], node_names: list[str], iperf3_version: str) -> dict[str, Any]:
    try:
        meta = kube.run_metadata(_json(version_json), _json(nodes_json), _json(pods_json), list(node_names))
        meta["iperf3"] = kube.iperf3_version(iperf3_version)
        return meta
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"bench_k8s_meta: {exc}") from exc


def _json(doc: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(doc) if isinstance(doc, str) else doc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_plan": bench_plan, "iperf3_record": iperf3_record, "spread": spread,
                "bench_manifests": bench_manifests, "bench_k8s_nodes": bench_k8s_nodes,
                "bench_k8s_meta": bench_k8s_meta}
