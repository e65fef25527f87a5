"""Enough repeats, not a fixed three: ``bench_repeats: auto``.

A run with ``repeats: auto`` plans ``max_repeats`` rounds (matrix.build_plan) and runs every test's first
``MIN_ROUNDS``; a later round of a test runs only while the median of its earlier repeats is not known to
``target_ci_percent`` of itself. The interval is the distribution-free one of stats.median_ci at the
confidence three repeats give ([min, max]: 75 %), as the 95 % one is [min, max] up to 8 repeats and would
only widen with each repeat; at this confidence it trims the extremes from 6 repeats on, so a test whose
spread is one outlier can still reach the target. The decision is taken again from the raw files (the
runner before a round's test, the summary when it counts what is missing), so a resumed run decides the
same. Pure functions, no Ansible imports.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import stats

AUTO = "auto"
# The rounds every test of an auto run has, and the least max_repeats may be.
MIN_ROUNDS = 3
# The interval's confidence: what three repeats' [min, max] has.
STOP_CONFIDENCE = 0.75


def usable(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a test's statistics use: those that succeeded and were not disturbed, or, when every one
    that succeeded was disturbed, all of those."""
    succeeded = [record for record in records if record.get("ok")]
    return [record for record in succeeded if not record.get("disturbed")] or succeeded


def figure(record: dict[str, Any]) -> float:
    """A record's headline figure: Gbit/s (iperf3) or transactions per second (netperf)."""
    return record["trans_per_s"] if record.get("tool") == "netperf" else record["gbps"]


def is_auto(settings: dict[str, Any]) -> bool:
    return settings.get("repeats") == AUTO


def rounds(settings: dict[str, Any]) -> int:
    """The rounds a run plans: its repeats, or an auto run's max_repeats."""
    return int(settings["max_repeats"]) if is_auto(settings) else int(settings["repeats"])


def width_percent(values: Sequence[float]) -> float | None:
    """The width of the median's interval (STOP_CONFIDENCE) in percent of the median; None below 2 values."""
    interval = stats.median_ci(values, STOP_CONFIDENCE)
    median = statistics.median(values) if values else None
    if interval["low"] is None or not median:
        return None
    return (interval["high"] - interval["low"]) / abs(median) * 100


def needed(repeat: int, earlier: Sequence[float], settings: dict[str, Any]) -> bool:
    """Whether round ``repeat`` of a test runs, given the figures of its earlier repeats."""
    if not is_auto(settings) or repeat <= MIN_ROUNDS:
        return True
    width = width_percent(earlier)
    return width is None or width > float(settings["target_ci_percent"])


def verdict(values: Sequence[float], settings: dict[str, Any]) -> dict[str, Any] | None:
    """An auto run's test: the width it reached, the target, and whether it reached it (else it stopped at
    max_repeats, or was cut short); None for a fixed-repeat run."""
    if not is_auto(settings):
        return None
    width = width_percent(values)
    target = float(settings["target_ci_percent"])
    return {"width_percent": None if width is None else round(width, 2), "target_percent": target,
            "reached": width is not None and width <= target, "repeats": len(values),
            "max_repeats": int(settings["max_repeats"])}


def span(plan: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """How long a plan's tests take at least and at most (their duration and omitted seconds; the engine adds
    about a second to each): an auto run's later rounds may all run, or none; with the line the plan prints."""
    per_test = int(settings["duration"]) + int(settings["omit"])
    certain = [test for test in plan if not test.get("stop")]
    shortest, longest = len(certain) * per_test, len(plan) * per_test
    if shortest == longest:
        said = f"The plan: {len(plan)} tests, {_minutes(longest)} of tests."
    else:
        said = (f"The plan: {len(certain)} to {len(plan)} tests (bench_repeats auto: {MIN_ROUNDS} to "
                f"{rounds(settings)} rounds, as each test's median needs), {_minutes(shortest)} to "
                f"{_minutes(longest)} of tests.")
    meshed = {(t["mesh"]["client"], t["mesh"]["server"]) for t in plan if t.get("mesh")}
    if meshed:
        # It grows with the square of the nodes: n nodes, n(n-1) ordered pairs per cross-node test.
        nodes = {node for pair in meshed for node in pair}
        said += (f" The mesh of {len(nodes)} nodes runs each cross-node test for {len(meshed)} ordered pairs "
                 f"({len([t for t in plan if t.get('mesh')])} of the tests).")
    return {"tests": len(plan), "certain": len(certain), "shortest_s": shortest, "longest_s": longest, "msg": said}


def _minutes(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds / 60:.0f} min"
