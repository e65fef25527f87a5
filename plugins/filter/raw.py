"""The raw test file's writer as a filter (plugins/plugin_utils/report/raw.py); documented in its sidecar file."""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import raw


def bench_raw(stdout: str | None, stderr: str | None = None, rc: int | None = None, message: str = "",
              node: str | None = None, tool: str = "iperf3") -> str:
    return raw.document(stdout, stderr, rc, message, node, tool or "iperf3")


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_raw": bench_raw}
