"""Compare benchmark runs: two or more runs of one lab, each against a baseline run, and where the
difference along a chain of runs comes from (the step table).

Pure functions over run summaries (see summary.py), plus the writer of a comparison directory.
A change is called significant by Welch's t-test on the per-repeat figures (stats.py). No Ansible
imports.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw, run_report, stats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

BASELINE_ORDER = ("canal", "cilium")
# The step table's default chain: from Canal's VXLAN overlay to Cilium's native routing with BPF host
# routing, one group of settings at a time (the runs' labels, cni/profile).
DEFAULT_CHAIN = ("canal/vxlan", "cilium/tunnel", "cilium/kube-proxy", "cilium/native-legacy", "cilium/native-bpf")
SIDE_FIELDS = ("gbps_median", "gbps_min", "gbps_max", "repeats", "noisy", "retransmits", "lost_percent",
               "jitter_ms", "cpu_client_percent", "cpu_server_percent",
               "tool", "trans_per_s_median", "trans_per_s_min", "trans_per_s_max", "p50_us", "p90_us", "p99_us",
               "cpu_busy_s", "cpu_per_gbit", "cpu_per_1k_trans", "host_ratio", "host_ratio_p50")
# Each run's entry in a row: its headline figure, its confidence interval, and against the baseline.
RUN_FIELDS = ("median", "ci_low", "ci_high", "ci_confidence", "change_percent", "significant", "p",
              "host_change_percent", *SIDE_FIELDS)
RUN_INFO = ("run_id", "cni", "profile", "profile_settings", "datapath", "provider", "started", "complete")
NO_TOTAL = "no significant total difference"


def unique_labels(runs: list[dict[str, Any]]) -> list[str]:
    """Each run's label, with its run id appended where two runs share one."""
    labels = [files.run_label(run) for run in runs]
    return [f"{label} ({run['run_id']})" if labels.count(label) > 1 else label
            for label, run in zip(labels, runs, strict=True)]


def _order(path: Path, meta: dict[str, Any]) -> tuple[Any, ...]:
    """Canal before Cilium before other CNIs; within them the default chain's order, then by profile."""
    cni, label = meta.get("cni"), files.run_label(meta)
    return (BASELINE_ORDER.index(cni) if cni in BASELINE_ORDER else len(BASELINE_ORDER), str(cni),
            DEFAULT_CHAIN.index(label) if label in DEFAULT_CHAIN else len(DEFAULT_CHAIN),
            str(meta.get("profile") or ""), path.name)


def select_runs(results_dir: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """The runs to compare: the ones named (two or more), or the newest run of each CNI and profile
    of the provider of the newest run overall, Canal first."""
    root = Path(results_dir)
    if names:
        if len(names) < 2 or len(set(names)) != len(names):
            raise files.ResultError(f"name two or more different runs to compare, got {names}")
        dirs = [root / name for name in names]
        missing = [d.name for d in dirs if not (d / "run.json").is_file()]
        if missing:
            raise files.ResultError(f"no run {', '.join(missing)} in {root}")
        return dirs
    runs = files.list_runs(root, "run.json")
    if not runs:
        raise files.ResultError(f"no benchmark runs in {root}")
    provider = runs[-1][1].get("provider")
    # Oldest first, so the newest run of each CNI and profile is the one that stays.
    newest = {(meta.get("cni"), meta.get("profile")): (path, meta) for path, meta in runs
              if meta.get("provider") == provider}
    # Runs from before profiles stand aside once the lab has runs with one.
    if any(profile for _, profile in newest):
        newest = {key: run for key, run in newest.items() if key[1]}
    if len(newest) < 2:
        cnis = {cni for cni, _ in newest}
        absent = [cni for cni in BASELINE_ORDER if cni not in cnis]
        hint = f"cni={absent[0]}" if absent else "another cni or profile"
        what = f"no {' or '.join(absent)} run" if absent else "only one kind of run"
        raise files.ResultError(f"{what} of provider {provider} yet: run the benchmark with {hint}")
    return [path for path, _ in sorted(newest.values(), key=lambda run: _order(*run))]


def find_run(runs: list[dict[str, Any]], name: str) -> int:
    """The index of the run a name means: its run id, its label, or its cni/profile when only one run has it."""
    labels = unique_labels(runs)
    for candidates in ([run["run_id"] for run in runs], labels, [files.run_label(run) for run in runs]):
        hits = [i for i, candidate in enumerate(candidates) if candidate == name]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise files.ResultError(f"{name} names {len(hits)} of the compared runs: name one by its run id")
    raise files.ResultError(f"no run {name} among the compared runs: {', '.join(labels)}")


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
    }
    found = [f"{what}: {vb} vs {vo}" for what, (vb, vo) in checks.items() if vb != vo]
    matrix = _matrix_difference(base.get("matrix") or [], other.get("matrix") or [])
    return found + ([f"matrix: {matrix}"] if matrix else [])


def compare(summaries: list[dict[str, Any]], baseline: int | str = 0,
            chain: list[str] | None = None) -> dict[str, Any]:
    """The comparison of two or more run summaries, each against the baseline run (its index, run id or
    label), test by test, and the step table along ``chain`` (labels or run ids; default DEFAULT_CHAIN)."""
    if len(summaries) < 2:
        raise files.ResultError(f"a comparison needs two or more runs, got {len(summaries)}")
    labels = unique_labels(summaries)
    base = baseline if isinstance(baseline, int) else find_run(summaries, baseline)
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
    comparison["steps"] = steps(comparison, chain)
    return comparison


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


def _chain(runs: list[dict[str, Any]], chain: list[str] | None) -> list[int] | None:
    """The runs of the chain by index: the ones named, or those of DEFAULT_CHAIN present (the first of a label)."""
    if chain:
        picked = [find_run(runs, name) for name in chain]
        if len(picked) < 2 or len(set(picked)) != len(picked):
            raise files.ResultError(f"a chain names two or more different runs, got {chain}")
        return picked
    labels = [files.run_label(run) for run in runs]
    present = [labels.index(label) for label in DEFAULT_CHAIN if label in labels]
    return present if len(present) >= 2 else None


def steps(comparison: dict[str, Any], chain: list[str] | None = None) -> dict[str, Any] | None:
    """Where the difference between the chain's first and last run comes from: per test, the total and
    each step's share of it, each step's significance, and the profile settings each step changes.
    None without a chain (fewer than two of the default chain's runs compared)."""
    runs = comparison["runs"]
    picked = _chain(runs, chain)
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
                      "changes": settings_changes(_cni_and_settings(runs[a]), _cni_and_settings(runs[b]))}
                     for a, b in pairwise(picked)],
        "tests": tests,
    }


def _mark(significant: bool | None) -> str:
    """* significant, nothing when not, ? when it cannot be told (fewer than two repeats)."""
    return {True: "*", False: "", None: "?"}[significant]


def _digits(row: dict[str, Any]) -> int:
    return 2 if row["unit"] == "Gbit/s" else 0


def text_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """Console: the median, and for a run other than the baseline its change: 13.40 (+28.1 %*)."""
    if not entry:
        return "-"
    median = files.fmt(entry["median"], _digits(row))
    if entry["change_percent"] is None:
        return median
    return f"{median} ({entry['change_percent']:+.1f} %{_mark(entry['significant'])})"


def host_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    if not entry or entry["host_change_percent"] is None:
        return "-"
    return f"{entry['host_change_percent']:+.1f} %"


def markdown_cell(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """Markdown: median [confidence interval], change (significance), host-normalised change; netperf: p50/p99."""
    if not entry:
        return "-"
    digits = _digits(row)
    parts = [f"{files.fmt(entry['median'], digits)} [{run_report.ci_label(entry, digits)}]"]
    if entry["change_percent"] is not None:
        parts.append(f"{entry['change_percent']:+.1f} %{_mark(entry['significant'])}")
    if entry["host_change_percent"] is not None:
        parts.append(f"host-norm. {entry['host_change_percent']:+.1f} %")
    if row["tool"] == "netperf":
        parts.append(f"p50/p99 {files.fmt(entry['p50_us'], 0)}/{files.fmt(entry['p99_us'], 0)} us")
    return ", ".join(parts)


def _test_name(row: dict[str, Any]) -> str:
    return row["scenario"] + (" (same host)" if row.get("same_host") else "")


def run_table(comparison: dict[str, Any], tool: str | None, cell: Callable[[dict[str, Any], Any], str],
              markdown: bool = False) -> tuple[list[str], list[list[str]]]:
    """One row per test of ``tool`` (every test when None), one column per run, cells by ``cell(row, entry)``.
    The console's header says the unit; markdown's, under a titled section, which run is the baseline."""
    labels = [run["label"] + (" (baseline)" if markdown and i == comparison["baseline"] else "")
              for i, run in enumerate(comparison["runs"])]
    header = ["test" + (f" ({'Gbit/s' if tool == 'iperf3' else 'trans/s'})" if tool and not markdown else ""),
              *labels]
    rows = [[_test_name(row), *(cell(row, entry) for entry in row["runs"])]
            for row in comparison["rows"] if tool is None or row["tool"] == tool]
    return header, rows


def detail_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Every test of every run, one row each: the figures beside the headline one."""
    header = ["test", "run", "p", "retrans", "UDP loss %", "jitter ms", "CPU client %", "CPU s/Gbit",
              "CPU s/1k trans", "vs host", "noisy"]
    rows = []
    for row in comparison["rows"]:
        for run, entry in zip(comparison["runs"], row["runs"], strict=True):
            if not entry:
                continue
            fmt = files.fmt
            rows.append([_test_name(row), run["label"], fmt(entry["p"], 3), fmt(entry["retransmits"], 0),
                         fmt(entry["lost_percent"], 3), fmt(entry["jitter_ms"], 3),
                         fmt(entry["cpu_client_percent"], 0), fmt(entry["cpu_per_gbit"], 3),
                         fmt(entry["cpu_per_1k_trans"], 3), run_report.ratio(entry["host_ratio"]),
                         "yes" if entry["noisy"] else ""])
    return header, rows


def step_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The step table: per test the total along the chain and each step's share of it (* significant step)."""
    chain = comparison["steps"]
    header = ["test", "total", *(f"step {i}" for i in range(1, len(chain["chain"])))]
    rows = []
    for test in chain["tests"]:
        digits = 2 if test["unit"] == "Gbit/s" else 0
        total = "-" if test["total"] is None else f"{test['total']:+.{digits}f} {test['unit']}"
        if test["total_percent"] is not None:
            total += f" ({test['total_percent']:+.1f} %{_mark(test['total_significant'])})"
        if test["shares"] is None:
            cells = [test["verdict"], *[""] * (len(header) - 3)]
        else:
            cells = [f"{share:+.0f} %{_mark(sig)}"
                     for share, sig in zip(test["shares"], test["step_significant"], strict=True)]
        rows.append([test["scenario"], total, *cells])
    return header, rows


def step_legend(comparison: dict[str, Any]) -> list[str]:
    """What each step of the chain changes."""
    lines = []
    for i, step in enumerate(comparison["steps"]["settings"], 1):
        changes = step["changes"]
        said = ("settings not recorded" if changes is None else "; ".join(changes) or "no profile setting differs")
        lines.append(f"step {i}: {step['from']} -> {step['to']}: {said}")
    return lines


STEP_NOTE = ("total: the last run of the chain against the first; step i: (figure of run i - figure of run i-1) "
             "/ total, in percent. The shares sum to 100 %; a negative share is a step that goes against the "
             "total (another step then has more than 100 %). * the step's change (or the total) is significant, "
             f"? cannot be told. When the total is not significant, \"{NO_TOTAL}\" stands instead of shares.")


def _notes(comparison: dict[str, Any], markdown: bool = False) -> list[str]:
    """What the tables say; the markdown tables also give each median's confidence interval."""
    level = comparison["significance_level"]
    notes = [f"Each run against the baseline: the median (Gbit/s, or transactions per second for netperf tests) "
             f"and its change in percent; * the change is significant (Welch's t-test on the repeats' figures, "
             f"p < {level:g}), ? it cannot be told (fewer than two repeats), no mark: within the noise. "
             + ("In brackets the confidence interval of the median, 95 % unless its coverage is given (too few "
                "repeats for 95 %), - where the run has none. " if markdown else "")
             + "host-normalised (host-norm.): the change of each run's pod/host ratio (the pod test against its "
             "own host test), so a drift of the machine between runs cancels out."]
    if "local" in comparison["providers"]:
        notes.append(run_report.LOCAL_LAB_NOTE)
    notes += run_report.same_host_note([r["scenario"] for r in comparison["rows"] if r.get("same_host")])
    notes += [f"WARNING: {w}" for w in comparison["warnings"]]
    return notes


def _title(comparison: dict[str, Any]) -> str:
    runs = comparison["runs"]
    if len(runs) == 2:
        return " vs ".join(run["label"] for run in runs)
    return f"{len(runs)} runs against {runs[comparison['baseline']]['label']}"


def render_text(comparison: dict[str, Any]) -> str:
    lines = [_title(comparison)]
    lines += [f"  {run['label']}{' (baseline)' if i == comparison['baseline'] else ''}: run {run['run_id']}"
              for i, run in enumerate(comparison["runs"])]
    tables = [run_table(comparison, "iperf3", text_cell), run_table(comparison, "netperf", text_cell)]
    host = run_table(comparison, None, host_cell)
    tables.append((["host-normalised change", *host[0][1:]],
                   [row for row in host[1] if any(cell != "-" for cell in row[1:])]))
    for table in tables:
        if table[1]:
            lines += ["", *files.text_table(*table)]
    if comparison["steps"]:
        lines += ["", "Where the difference comes from (steps along the chain below):",
                  *files.text_table(*step_rows(comparison)), *step_legend(comparison)]
    return "\n".join([*lines, "", *_notes(comparison)])


def render_markdown(comparison: dict[str, Any], chart: str | None = None) -> str:
    lines = [f"# {_title(comparison)}", ""]
    for i, run in enumerate(comparison["runs"]):
        baseline = " (baseline)" if i == comparison["baseline"] else ""
        lines.append(f"- {run['label']}{baseline}: run `{run['run_id']}`, {run['datapath'] or 'datapath unknown'}")
    for title, tool in (("Throughput (iperf3, Gbit/s)", "iperf3"),
                        ("Latency and transaction rate (netperf, trans/s)", "netperf")):
        table = run_table(comparison, tool, markdown_cell, markdown=True)
        if table[1]:
            lines += ["", f"## {title}", "", *files.markdown_table(*table)]
    if chart:
        lines += ["", f"![Headline figure per test and run]({chart})"]
    lines += ["", "## Where the difference comes from", ""]
    if comparison["steps"]:
        lines += [" -> ".join(f"{label} (`{run_id}`)" for label, run_id in
                              zip(comparison["steps"]["chain"], comparison["steps"]["run_ids"], strict=True)), "",
                  *files.markdown_table(*step_rows(comparison)), "",
                  *(f"- {line}" for line in step_legend(comparison)), "", f"> {STEP_NOTE}"]
    else:
        lines.append(f"No chain: fewer than two of {', '.join(DEFAULT_CHAIN)} are compared "
                     "(name one with -e compare_chain=...).")
    lines += ["", "## Details per run", "", *files.markdown_table(*detail_rows(comparison)), ""]
    lines += [f"> {note}" for note in _notes(comparison, markdown=True)]
    return "\n".join(lines).rstrip() + "\n"


CSV_FIELDS = ("run_id", "label", "baseline", "scenario", "placement", "same_host", "protocol", "streams", "unit")


def render_csv(comparison: dict[str, Any]) -> str:
    """One line per test and run."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*CSV_FIELDS, *RUN_FIELDS], extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in comparison["rows"]:
        for i, (run, entry) in enumerate(zip(comparison["runs"], row["runs"], strict=True)):
            if entry:
                writer.writerow({**row, **entry, "run_id": run["run_id"], "label": run["label"],
                                 "baseline": i == comparison["baseline"]})
    return out.getvalue()


def comparison_name(comparison: dict[str, Any]) -> str:
    """The comparison's folder: <baseline>_vs_<other> for two runs, <baseline>_vs_<n>-runs for more."""
    runs, base = comparison["runs"], comparison["baseline"]
    others = [run["run_id"] for i, run in enumerate(runs) if i != base]
    return f"{runs[base]['run_id']}_vs_{others[0] if len(others) == 1 else f'{len(others)}-runs'}"


def write_comparison(results_dir: str | os.PathLike, names: list[str] | None = None,
                     noisy_cv_percent: float = run_summary.NOISY_CV_PERCENT, charts: bool = True,
                     baseline: str | None = None, chain: list[str] | None = None) -> tuple[dict[str, Any], Path]:
    """Compare runs from their raw files and write comparisons/<name>/ (comparison_name)."""
    summaries = [run_summary.read_summary(run, noisy_cv_percent)[0] for run in select_runs(results_dir, names)]
    comparison = compare(summaries, baseline or 0, chain)
    out = Path(results_dir) / "comparisons" / comparison_name(comparison)
    out.mkdir(parents=True, exist_ok=True)
    files.atomic_write(out / "comparison.json", json.dumps(comparison, indent=2, sort_keys=True) + "\n")
    files.atomic_write(out / "comparison.csv", render_csv(comparison))
    if charts:
        from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts as charts_module

        charts_module.comparison_chart(comparison, out / "comparison")
    chart = "comparison.png" if charts else None
    files.atomic_write(out / "comparison.md", render_markdown(comparison, chart))
    return comparison, out
