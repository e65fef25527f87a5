"""Compare benchmark runs: two or more runs of one lab, each against a baseline run, and where the
difference along a chain of runs comes from (the step table).

Pure functions over run summaries (summary.py); compare_render.py renders and writes a comparison,
selection.py picks its runs. A change is called significant by Welch's t-test on the per-repeat figures
(stats.py). No Ansible imports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw, selection, stats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

SIDE_FIELDS = ("gbps_median", "gbps_min", "gbps_max", "repeats", "noisy", "retransmits", "lost_percent",
               "jitter_ms", "cpu_client_percent", "cpu_server_percent",
               "tool", "trans_per_s_median", "trans_per_s_min", "trans_per_s_max", "p50_us", "p90_us", "p99_us",
               "cpu_busy_s", "cpu_per_gbit", "cpu_per_1k_trans", "host_ratio", "host_ratio_p50")
# Each run's entry in a row: its headline figure, its confidence interval, and against the baseline.
RUN_FIELDS = ("median", "ci_low", "ci_high", "ci_confidence", "change_percent", "significant", "p",
              "host_change_percent", *SIDE_FIELDS)
RUN_INFO = ("run_id", "cni", "profile", "profile_settings", "datapath", "provider", "started", "complete",
            "congestion")
NO_TOTAL = "no significant total difference"


def _change(value: float | None, base: float | None) -> float | None:
    return (value - base) / base * 100 if base and value is not None else None


def significance(base: dict[str, Any] | None, result: dict[str, Any] | None) -> tuple[bool | None, float | None]:
    """Whether a test's figure differs between two runs beyond their repeats' noise (Welch's t-test on the
    per-repeat figures, stats.significant), and its p value; (None, None) below two repeats on either side."""
    if not base or not result:
        return None, None
    a, b = base.get("values") or [], result.get("values") or []
    return stats.significant(a, b), stats.welch(a, b)["p"]


def _entry(result: dict[str, Any] | None, base: dict[str, Any] | None, is_base: bool) -> dict[str, Any] | None:
    """One run's figures of a test, and for a run other than the baseline its change against it."""
    if not result:
        return None
    entry = {key: result.get(key) for key in (*SIDE_FIELDS, "ci_low", "ci_high", "ci_confidence", "values")}
    entry["median"] = run_summary.headline(result)[0]
    against = None if is_base else base
    entry["change_percent"] = _change(entry["median"], run_summary.headline(against)[0] if against else None)
    entry["significant"], entry["p"] = significance(against, result)
    # Each run's pod test over its own host test: the machine's state on the day cancels out.
    entry["host_change_percent"] = _change(result.get("host_ratio"), against.get("host_ratio") if against else None)
    return entry


def _env_key(summary: dict[str, Any], field: str) -> list[Any]:
    return sorted({str(node.get(field)) for node in summary.get("environment", {}).get("nodes", [])})


def _matrix_difference(base: list[dict[str, Any]], other: list[dict[str, Any]]) -> str:
    """The tests two matrices do not share or define differently, by name; empty when they agree."""
    by_base, by_other = {e["name"]: e for e in base}, {e["name"]: e for e in other}
    only_base = [name for name in by_base if name not in by_other]
    only_other = [name for name in by_other if name not in by_base]
    changed = [name for name in by_base if name in by_other and by_base[name] != by_other[name]]
    parts = [f"{label}: {', '.join(names)}" for label, names in (
        ("only in the baseline", only_base), ("only in this run", only_other), ("defined otherwise", changed))
        if names]
    return "; ".join(parts)


def mismatches(base: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """What differs between a run and the baseline in a way that breaks their comparison: "<what>: <baseline's>
    vs <the run's>"."""
    checks = {
        "provider": (base.get("provider"), other.get("provider")),
        "kernel": (_env_key(base, "kernel"), _env_key(other, "kernel")),
        "node vCPUs": (_env_key(base, "vcpus"), _env_key(other, "vcpus")),
        "node memory (MB)": (_env_key(base, "memtotal_mb"), _env_key(other, "memtotal_mb")),
        "iperf3 version": (base.get("iperf3_versions"), other.get("iperf3_versions")),
        "duration (s)": (base["settings"].get("duration"), other["settings"].get("duration")),
        "omit (s)": (base["settings"].get("omit"), other["settings"].get("omit")),
        "TCP congestion control": (run_summary.congestion_used(base), run_summary.congestion_used(other)),
    }
    found = [f"{what}: {vb} vs {vo}" for what, (vb, vo) in checks.items() if vb != vo]
    matrix = _matrix_difference(base.get("matrix") or [], other.get("matrix") or [])
    return found + ([f"matrix: {matrix}"] if matrix else [])


def compare(summaries: list[dict[str, Any]], baseline: int | str = 0, chain: list[str] | None = None,
            profile_chain: Sequence[str] = (), side_steps: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """The comparison of two or more run summaries, each against the baseline run (its index, run id or
    label), test by test, and the step table along ``chain`` (labels or run ids), by default along those
    runs of ``profile_chain`` (labels cni/profile: the profiles' step chain) that were compared; and each of
    ``side_steps`` (pairs of labels: one setting changed against a profile of the chain) whose two runs were."""
    if len(summaries) < 2:
        raise files.ResultError(f"a comparison needs two or more runs, got {len(summaries)}")
    labels = selection.unique_labels(summaries)
    base = baseline if isinstance(baseline, int) else selection.find_run(summaries, baseline)
    if not 0 <= base < len(summaries):
        raise files.ResultError(f"baseline {baseline}: there are {len(summaries)} runs")
    by_name = [{r["scenario"]: r for r in s["results"]} for s in summaries]
    names = list(dict.fromkeys(name for tests in by_name for name in tests))
    rows = []
    for name in names:
        found = [tests.get(name) for tests in by_name]
        first = next(r for r in found if r)
        rows.append({
            "scenario": name,
            "placement": first["placement"],
            "same_host": any(bool(r and r.get("same_host")) for r in found),
            "protocol": first["protocol"],
            "streams": first["streams"],
            "tool": first.get("tool") or "iperf3",
            "unit": "trans/s" if first.get("tool") == "netperf" else "Gbit/s",
            "runs": [_entry(r, found[base], i == base) for i, r in enumerate(found)],
        })
    warnings = [f"{labels[i]} differs from the baseline {labels[base]} in {text}"
                for i, summary in enumerate(summaries) if i != base
                for text in mismatches(summaries[base], summary)]
    warnings += [f"run {s['run_id']} is incomplete" for s in summaries if not s["complete"]]
    comparison = {
        "schema_version": raw.SCHEMA_VERSION,
        "baseline": base,
        "significance_level": stats.SIGNIFICANCE,
        "runs": [{**{key: s.get(key) for key in RUN_INFO}, "label": label} for s, label in zip(summaries, labels,
                                                                                                strict=True)],
        "providers": sorted({s.get("provider") for s in summaries} - {None}),
        "warnings": warnings,
        "rows": rows,
    }
    comparison["steps"] = steps(comparison, chain, profile_chain)
    comparison["side_steps"] = side(comparison, side_steps)
    return comparison


def side(comparison: dict[str, Any], pairs: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The side steps whose two runs were compared (the first run of a label), each a two-run step table
    (``steps``): per test the change from one to the other, its significance, and the settings it changes."""
    runs = comparison["runs"]
    labels = [files.run_label(run) for run in runs]
    present = [[runs[labels.index(label)]["run_id"] for label in pair] for pair in pairs
               if len(pair) == 2 and pair[0] != pair[1] and all(label in labels for label in pair)]
    return [found for pair in present if (found := steps(comparison, pair))]


def step_shares(figures: list[float]) -> tuple[float, list[float] | None]:
    """The total difference along a chain of figures (last - first) and each step's share of it in percent.

    The shares sum to 100; a step that goes against the total has a negative share, and then another
    step has more than 100. None when the total is zero (there is nothing to share).
    """
    if len(figures) < 2:
        raise ValueError(f"a chain needs two or more figures, got {len(figures)}")
    total = figures[-1] - figures[0]
    if total == 0:
        return total, None
    return total, [(after - before) / total * 100 for before, after in pairwise(figures)]


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def settings_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str] | None:
    """The profile settings (and the CNI) that differ between two runs, "key: before -> after"; None when
    either run does not record its settings (runs from before profiles)."""
    if before is None or after is None:
        return None
    return [f"{key}: {_shown(before[key]) if key in before else 'unset'} -> "
            f"{_shown(after[key]) if key in after else 'unset'}"
            for key in sorted(set(before) | set(after)) if before.get(key, ...) != after.get(key, ...)]


def _cni_and_settings(run: dict[str, Any]) -> dict[str, Any] | None:
    """What a step can change: the CNI itself, then its profile's settings (None without settings)."""
    return None if run["profile_settings"] is None else {"cni": run["cni"], **run["profile_settings"]}


def _step_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str] | None:
    """What a step changes (settings_changes), led by the TCP congestion control where the two runs' differ: a
    profile setting of its own (congestion) or not, it moves every TCP figure, so it is said first, as the tests
    used it (a profile's congestion setting is then not said twice)."""
    changes = settings_changes(_cni_and_settings(before), _cni_and_settings(after))
    used = run_summary.congestion_used(before), run_summary.congestion_used(after)
    if used[0] == used[1]:
        return changes
    return [f"TCP congestion control: {used[0]} -> {used[1]}",
            *(change for change in changes or [] if not change.startswith("congestion:"))]


def _chain(runs: list[dict[str, Any]], chain: list[str] | None, profile_chain: Sequence[str]) -> list[int] | None:
    """The runs of the chain by index: the ones named, or those of the profile chain present (the first of
    a label)."""
    if chain:
        picked = [selection.find_run(runs, name) for name in chain]
        if len(picked) < 2 or len(set(picked)) != len(picked):
            raise files.ResultError(f"a chain names two or more different runs, got {chain}")
        return picked
    labels = [files.run_label(run) for run in runs]
    present = [labels.index(label) for label in profile_chain if label in labels]
    return present if len(present) >= 2 else None


def steps(comparison: dict[str, Any], chain: list[str] | None = None,
          profile_chain: Sequence[str] = ()) -> dict[str, Any] | None:
    """Where the difference between the chain's first and last run comes from: per test, the total and
    each step's share of it, each step's significance, and the profile settings each step changes.
    None without a chain (none named, and fewer than two of the profile chain's runs compared)."""
    runs = comparison["runs"]
    picked = _chain(runs, chain, profile_chain)
    if picked is None:
        return None
    tests = []
    for row in comparison["rows"]:
        entries = [row["runs"][i] for i in picked]
        test: dict[str, Any] = {"scenario": row["scenario"], "unit": row["unit"], "total": None,
                                "total_percent": None, "total_significant": None, "shares": None,
                                "step_significant": None, "verdict": None}
        tests.append(test)
        missing = [runs[i]["label"] for i, entry in zip(picked, entries, strict=True)
                   if not entry or entry["median"] is None]
        if missing:
            test["verdict"] = f"no figure in {', '.join(missing)}"
            continue
        figures = [entry["median"] for entry in entries]
        test["total"], shares = step_shares(figures)
        test["total_percent"] = _change(figures[-1], figures[0])
        test["total_significant"] = significance(entries[0], entries[-1])[0]
        test["step_significant"] = [significance(a, b)[0] for a, b in pairwise(entries)]
        if test["total_significant"] is False or shares is None:
            test["verdict"] = NO_TOTAL
        else:
            test["shares"] = shares
    return {
        "chain": [runs[i]["label"] for i in picked],
        "run_ids": [runs[i]["run_id"] for i in picked],
        "settings": [{"from": runs[a]["label"], "to": runs[b]["label"],
                      "changes": _step_changes(runs[a], runs[b])}
                     for a, b in pairwise(picked)],
        "tests": tests,
    }

