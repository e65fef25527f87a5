"""The regression gate: a run against a baseline run of the same lab, within a tolerance.

Each test's headline figure (Gbit/s for iperf3, transactions per second for netperf; higher is
better) is held against the baseline's: a run whose median falls more than the tolerance below the
baseline's median fails, as k8s-netperf's --tcp-tolerance does, and so does a run that lost a test
the baseline has. Latency percentiles are not gated: the transaction rate already carries them.
The role keeps the verdict with the run as gate.json. Pure functions (reading the run folders aside);
no Ansible imports.
"""

from __future__ import annotations

import os
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, stats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

# What makes two results the same test besides their name.
DEFINITION = ("placement", "protocol", "streams", "size", "tool")


def tolerance(value: Any) -> float:
    """The tolerance in percent, 0 < t < 100; a number in a string too (-e bench_tolerance=10 gives one)."""
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not 0 < number < 100:
        raise ValueError(f"the gate's tolerance must be a number of percent above 0 and below 100, got {value!r}")
    return number


def _measured(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tests of a run with at least one successful repeat, by name."""
    return {r["scenario"]: r for r in summary["results"] if run_summary.headline(r)[0] is not None}


def _definition(result: dict[str, Any]) -> str:
    return ", ".join(f"{key} {result.get(key)}" for key in DEFINITION if result.get(key) is not None)


def _row(name: str, base: dict[str, Any] | None, run: dict[str, Any] | None, allowed: float) -> dict[str, Any]:
    """One test's row. ``reason`` says why a test is missing: it has no successful repeat in the run,
    or the run defines it otherwise (another protocol, streams, size or placement is another test)."""
    first = base or run or {}
    row: dict[str, Any] = {"scenario": name, "unit": "trans/s" if first.get("tool") == "netperf" else "Gbit/s",
                           "baseline": run_summary.headline(base)[0] if base else None,
                           "run": run_summary.headline(run)[0] if run else None,
                           "change_percent": None, "limit": -allowed, "outcome": "new", "reason": None,
                           # Welch's p, for information: the verdict is the tolerance alone (see check).
                           "p": None}
    if base is None:
        return row
    if run is None or _definition(run) != _definition(base):
        reason = ("no successful repeat in the run" if run is None
                  else f"defined otherwise in the run ({_definition(run)}; baseline {_definition(base)})")
        return {**row, "run": None, "outcome": "missing", "reason": reason}
    if row["baseline"]:
        row["change_percent"] = (row["run"] - row["baseline"]) / row["baseline"] * 100
    row["outcome"] = "fail" if row["change_percent"] is not None and row["change_percent"] < -allowed else "pass"
    row["p"] = stats.welch(base.get("values") or [], run.get("values") or [])["p"]
    return row


def check(baseline: dict[str, Any], run: dict[str, Any], tolerance_percent: float | str) -> dict[str, Any]:
    """Gate run summary ``run`` against run summary ``baseline``.

    Per test (by name): ``pass``, ``fail`` (the run's median is more than ``tolerance_percent`` below
    the baseline's), ``missing`` (a baseline test without a successful repeat in the run, or defined
    otherwise there: it fails too, a run that lost a test must not pass) or ``new`` (only in the run,
    not gated). Each compared row also carries Welch's p of the two runs' repeats (stats.welch), for
    information only: with 3 repeats a side a real 10 % loss is often not significant, and a
    significant 1 % one is no regression, so the verdict is the tolerance alone.

    Raises ValueError for a tolerance outside (0, 100) and for runs of two providers: a lab's
    baseline is a run of that lab.
    """
    allowed = tolerance(tolerance_percent)
    if baseline.get("provider") != run.get("provider"):
        raise ValueError(f"baseline {baseline.get('run_id')} is a run of provider {baseline.get('provider')}, "
                         f"run {run.get('run_id')} of {run.get('provider')}: gate a run against a baseline "
                         "of the same lab")
    base_tests, run_tests = _measured(baseline), _measured(run)
    names = list(base_tests) + [name for name in run_tests if name not in base_tests]
    rows = [_row(name, base_tests.get(name), run_tests.get(name), allowed) for name in names]
    failed = [row["scenario"] for row in rows if row["outcome"] in ("fail", "missing")]
    return {"passed": not failed, "baseline": baseline.get("run_id"), "run": run.get("run_id"),
            "tolerance_percent": allowed, "rows": rows, "failed": failed, "warnings": warnings(baseline, run)}


def warnings(baseline: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """What makes the verdict weigh less without changing it: the two runs' TCP tests used different congestion
    control (the baseline's figures may differ from the run's by that alone)."""
    used = run_summary.congestion_used(baseline), run_summary.congestion_used(run)
    if used[0] == used[1]:
        return []
    return [f"TCP congestion control differs: baseline {baseline.get('run_id')} used {used[0]}, run "
            f"{run.get('run_id')} {used[1]}; TCP figures may differ by that alone (bench_congestion pins it)"]


def _figure(value: float | None, unit: str) -> str:
    return files.fmt(value, 2 if unit == "Gbit/s" else 0)


def render(result: dict[str, Any]) -> list[str]:
    """The gate's verdict as console lines: a header, one line per failed or missing test, the verdict."""
    percent = f"{result['tolerance_percent']:g}"
    rows = result["rows"]
    gated = [row for row in rows if row["outcome"] != "new"]
    lines = [f"Regression gate: run {result['run']} against baseline {result['baseline']}, "
             f"{len(gated)} test(s), tolerance {percent} %"]
    for row in rows:
        base = f"{_figure(row['baseline'], row['unit'])} {row['unit']}"
        if row["outcome"] == "fail":
            lines.append(f"{row['scenario']}: {_figure(row['run'], row['unit'])} {row['unit']} vs "
                         f"{_figure(row['baseline'], row['unit'])} baseline, {row['change_percent']:+.1f} % "
                         f"(limit -{percent} %)")
        elif row["outcome"] == "missing":
            lines.append(f"{row['scenario']}: MISSING, {row['reason']} (baseline {base})")
    new = [row["scenario"] for row in rows if row["outcome"] == "new"]
    if new:
        lines.append(f"not in the baseline, not gated: {', '.join(new)}")
    lines += [f"WARNING: {warning}" for warning in result.get("warnings") or []]
    if result["passed"]:
        lines.append(f"PASSED: none of {len(gated)} test(s) fell more than {percent} % below the baseline")
    else:
        lines.append(f"FAILED: {len(result['failed'])} of {len(gated)} test(s) fell more than {percent} % "
                     f"below the baseline or are missing: {', '.join(result['failed'])}")
    return lines


def gate_runs(run_dir: str | os.PathLike, baseline_dir: str | os.PathLike,
              tolerance_percent: float | str) -> dict[str, Any]:
    """Gate a run folder against a baseline run folder, both read from their raw files; writes nothing.
    Returns check()'s result plus ``lines`` (render)."""
    result = check(run_summary.read_summary(baseline_dir)[0], run_summary.read_summary(run_dir)[0], tolerance_percent)
    result["lines"] = render(result)
    return result
