#!/usr/bin/env python3
"""Two runs of the same matrix side by side, test by test: each one's figure, the repeats' range, the unit and
the ratio of the second to the first. Made for one lab measured through both transports (the local one and
the Kubernetes one), it reads any two run folders.

Usage: python scripts/compare_transports.py RUN_A RUN_B   (run folders with summary.json and run.json)

Only the standard library: a user runs it on result folders without the project's virtualenv.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The figure of each tool, as the report's summary names it (plugins/plugin_utils/report/summary.py headline).
FIGURE = {"iperf3": "gbps", "netperf": "trans_per_s"}


@dataclass
class Run:
    """A run folder's summary and its label: the transport and CNI it was measured with, and its id."""

    path: Path
    summary: dict[str, Any]
    label: str

    def results(self) -> dict[str, dict[str, Any]]:
        return {r["scenario"]: r for r in self.summary.get("results") or []}


@dataclass
class Row:
    """One test in both runs; None where a run lacks the test or its figure."""

    scenario: str
    tool: str
    unit: str
    a: float | None
    b: float | None
    a_values: list[float]
    b_values: list[float]

    @property
    def ratio(self) -> float | None:
        return self.b / self.a if self.a and self.b is not None else None


def load(path: str | Path) -> Run:
    path = Path(path)
    summary = json.loads((path / "summary.json").read_text())
    meta_file = path / "run.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    transport = meta.get("transport") or summary.get("provider") or "?"
    label = f"{transport} {summary.get('cni') or '?'} {summary.get('run_id') or path.name}"
    return Run(path, summary, label)


def _figure(result: dict[str, Any] | None) -> tuple[float | None, list[float]]:
    if not result:
        return None, []
    return result.get(f"{FIGURE.get(result.get('tool', 'iperf3'), 'gbps')}_median"), list(result.get("values") or [])


def rows(a: Run, b: Run) -> list[Row]:
    """Every test of either run, in A's order, then B's tests that A lacks."""
    found_a, found_b = a.results(), b.results()
    out = []
    for scenario in [*found_a, *(s for s in found_b if s not in found_a)]:
        result = found_a.get(scenario) or found_b[scenario]
        tool = result.get("tool", "iperf3")
        (fig_a, values_a), (fig_b, values_b) = _figure(found_a.get(scenario)), _figure(found_b.get(scenario))
        unit = result.get("unit") or ("Gbit/s" if tool == "iperf3" else "trans/s")
        out.append(Row(scenario, tool, unit, fig_a, fig_b, values_a, values_b))
    return out


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"


def _spread(values: list[float]) -> str:
    return f"{_number(min(values))}-{_number(max(values))}" if len(values) > 1 else ""


def table(a: Run, b: Run) -> str:
    """Plain text: a header naming both runs, then one line per test (the figure is the repeats' median, the
    range their min-max when there was more than one)."""
    lines = [f"A: {a.label} ({a.path})", f"B: {b.label} ({b.path})", ""]
    header = ("test", "A", "A range", "B", "B range", "unit", "B/A")
    body = [(r.scenario, _number(r.a), _spread(r.a_values), _number(r.b), _spread(r.b_values), r.unit,
             f"{r.ratio:.2f}" if r.ratio is not None else "-") for r in rows(a, b)]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    for line in [header, *body]:
        cells = [cell.ljust(width) if i in (0, 5) else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(line, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        a, b = load(argv[0]), load(argv[1])
    except (OSError, ValueError) as exc:
        print(f"compare_transports: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(table(a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
