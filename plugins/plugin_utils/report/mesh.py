"""The node-pair mesh of a run (bench_mesh): per cross-node test a matrix of every ordered pair of nodes.

Once there are more than two nodes the question after "which CNI" is "which node or link is slow". Each pair's
figure (median over its repeats, Gbit/s or transactions per second) is held against the median of all pairs of
that test; the slowest pair is named with the machines it runs between, and a pair within one machine (its
packets never reach a wire) is marked. A table in report.md and a heatmap (mesh-<test>.png/.svg, charts.py).
"""

from __future__ import annotations

import statistics
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary


def matrices(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per mesh test, in matrix order: ``{test, unit, nodes, cells: {client: {server: figure}}, median,
    slowest: {client, server, figure, ratio, hosts}, same_host: [[client, server]], missing: [[client, server]]}``.
    """
    hosts = summary.get("node_hosts") or {}
    tests: dict[str, list[dict[str, Any]]] = {}
    for result in summary.get("results") or []:
        if result.get("mesh"):
            tests.setdefault(result["mesh"]["test"], []).append(result)
    found = []
    for test, results in tests.items():
        nodes = list(dict.fromkeys([r["mesh"]["client"] for r in results] + [r["mesh"]["server"] for r in results]))
        cells: dict[str, dict[str, float | None]] = {c: {} for c in nodes}
        for result in results:
            cells[result["mesh"]["client"]][result["mesh"]["server"]] = run_summary.headline(result)[0]
        figures = [v for row in cells.values() for v in row.values() if v is not None]
        median = statistics.median(figures) if figures else None
        slowest = None
        if figures:
            client, server, figure = min(((c, s, v) for c, row in cells.items() for s, v in row.items()
                                          if v is not None), key=lambda item: item[2])
            slowest = {"client": client, "server": server, "figure": figure,
                       "ratio": figure / median if median else None,
                       "hosts": [hosts.get(client), hosts.get(server)]}
        same = [[c, s] for c in nodes for s in nodes
                if c != s and hosts.get(c) and hosts.get(c) == hosts.get(s)]
        missing = [[c, s] for c in nodes for s in nodes if c != s and cells[c].get(s) is None]
        found.append({"test": test, "unit": results[0].get("unit") or "Gbit/s", "nodes": nodes, "cells": cells,
                      "median": median, "slowest": slowest, "same_host": same, "missing": missing})
    return found


def _figure(value: float, unit: str) -> str:
    return f"{value:.0f}" if unit == "trans/s" else f"{value:.2f}"


def _cell(value: float | None, median: float | None, same_host: bool, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{_figure(value, unit)} ({value / median:.2f}x)" if median else _figure(value, unit)
    return text + (" *" if same_host else "")


def markdown(summary: dict[str, Any], charts: bool = False) -> list[str]:
    """report.md's mesh section: per test the matrix (rows the client, columns the server), each pair against
    the median of all pairs, the slowest named; empty for a run without a mesh."""
    lines: list[str] = []
    for found in matrices(summary):
        same = {tuple(pair) for pair in found["same_host"]}
        header = ["client \\ server", *found["nodes"]]
        unit = found["unit"]
        rows = [[client, *("" if client == server else _cell(found["cells"][client].get(server), found["median"],
                                                                (client, server) in same, unit)
                           for server in found["nodes"])] for client in found["nodes"]]
        lines += ["", f"### {found['test']} ({unit}, median of its repeats; x: against the median of all "
                      f"pairs, {_figure(found['median'], unit)})" if found["median"] is not None
                  else f"### {found['test']}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        slow = found["slowest"]
        if slow:
            where = " and ".join(h for h in slow["hosts"] if h) if any(slow["hosts"]) else ""
            lines += ["", f"Slowest pair: {slow['client']} -> {slow['server']}, {_figure(slow['figure'], unit)} {unit}"
                          + (f", {slow['ratio']:.2f}x the median" if slow["ratio"] is not None else "")
                          + (f", between {where}" if where and slow["hosts"][0] != slow["hosts"][1]
                             else f", both on {where}" if where else "") + "."]
        if same:
            lines += ["", "\\* both nodes on one machine: the pair's packets never reach a wire."]
        if found["missing"]:
            lines += ["", "No result: " + ", ".join(f"{c} -> {s}" for c, s in found["missing"]) + "."]
        if charts:
            lines += ["", f"![{found['test']}: every ordered pair of nodes](mesh-{found['test']}.png)"]
    return (["", "## Node-pair mesh", *lines] if lines else [])
