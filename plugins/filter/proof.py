"""Filters of the proof of path (plugins/plugin_utils/transport/proof.py); each is documented in its sidecar file."""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof


def bench_raw(stdout: str | None, stderr: str | None = None, rc: int | None = None, message: str = "",
              node: str | None = None, tool: str = "iperf3", server_cpu: list[str] | None = None) -> str:
    return proof.raw_document(stdout, stderr, rc, message, node, tool or "iperf3", server_cpu or None)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"bench_raw": bench_raw}
