"""Write and print the benchmark reports of the runs a playbook produced."""

from __future__ import annotations

from typing import Any

from ansible.plugins.callback import CallbackBase

from ansible_collections.netlab.lab.plugins.module_utils import results

DOCUMENTATION = r"""
name: bench_report
type: aggregate
short_description: Summarise iperf3 benchmark runs at the end of the playbook
version_added: "1.0.0"
description:
  - Collects the run directories that plays announce with
    C(ansible.builtin.set_stats) under the key C(netlab_run_dirs) (a list).
  - At the end of the playbook it rebuilds each run's C(summary.json),
    C(summary.csv) and C(report.md) from the raw iperf3 JSON files alone, and
    prints the summary table.
  - A raw file that is corrupt or not part of the run's plan is reported and
    skipped; a run with tests missing is marked incomplete, never dropped.
requirements:
  - Enable it in ansible.cfg with C(callbacks_enabled = netlab.lab.bench_report).
"""

STATS_KEY = "netlab_run_dirs"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netlab.lab.bench_report"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats: Any) -> None:
        run_dirs = (stats.custom.get("_run") or {}).get(STATS_KEY) or []
        for run_dir in dict.fromkeys(run_dirs):
            self._report(run_dir)

    def _report(self, run_dir: str) -> None:
        try:
            summary, problems = results.write_reports(run_dir)
        except (OSError, ValueError) as exc:
            self._display.warning(f"bench_report: cannot build the report of {run_dir}: {exc}")
            return
        for problem in problems:
            self._display.warning(f"bench_report: {run_dir}: {problem}")
        self._display.banner("BENCHMARK SUMMARY")
        self._display.display(results.render_text(summary))
        self._display.display(f"reports: {run_dir}/report.md, summary.json, summary.csv")
