"""Filters that expose the benchmark planner and the iperf3 parser to playbooks.

Each filter is documented in its sidecar file (bench_plan.yml, iperf3_record.yml, spread.yml).
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.module_utils import matrix, results


def bench_plan(matrix_entries: list[dict[str, Any]], nodes: list[dict[str, Any]],
               settings: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return matrix.build_plan(matrix_entries, nodes, settings)
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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_plan": bench_plan, "iperf3_record": iperf3_record, "spread": spread}
