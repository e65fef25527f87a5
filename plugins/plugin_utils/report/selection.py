"""Which runs a comparison takes: the runs named, or the newest run of each CNI and profile of the newest
run's lab, Canal first and then in the profile chain's order; and which of the compared runs a name means
(the baseline, a run of the step chain). Reads run.json files only; no Ansible imports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files

BASELINE_ORDER = ("canal", "cilium")


def unique_labels(runs: list[dict[str, Any]]) -> list[str]:
    """Each run's label, with its run id appended where two runs share one."""
    labels = [files.run_label(run) for run in runs]
    return [f"{label} ({run['run_id']})" if labels.count(label) > 1 else label
            for label, run in zip(labels, runs, strict=True)]


def _order(path: Path, meta: dict[str, Any], profile_chain: Sequence[str]) -> tuple[Any, ...]:
    """Canal before Cilium before other CNIs; within them the profile chain's order, then by profile."""
    cni, label = meta.get("cni"), files.run_label(meta)
    return (BASELINE_ORDER.index(cni) if cni in BASELINE_ORDER else len(BASELINE_ORDER), str(cni),
            profile_chain.index(label) if label in profile_chain else len(profile_chain),
            str(meta.get("profile") or ""), path.name)


def select_runs(results_dir: str | os.PathLike, names: list[str] | None = None,
                profile_chain: Sequence[str] = ()) -> list[Path]:
    """The runs to compare: the ones named (two or more), or the newest run of each CNI and profile
    of the provider of the newest run overall, Canal first, then in the order of ``profile_chain``
    (labels cni/profile: the profiles' step chain, netlab_profile_chain)."""
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
    return [path for path, _ in sorted(newest.values(), key=lambda run: _order(*run, profile_chain))]


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


