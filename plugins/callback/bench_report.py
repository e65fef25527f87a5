"""Write and print the benchmark reports and comparisons a playbook asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.plugins.callback import CallbackBase

from ansible_collections.netlab.lab.plugins.plugin_utils import compare, results, scale_report

DOCUMENTATION = r"""
name: bench_report
type: aggregate
short_description: Report iperf3 benchmark runs and compare them at the end of the playbook
version_added: "1.0.0"
description:
  - Plays announce work with C(ansible.builtin.set_stats), as aggregated lists.
    C(netlab_run_dirs) holds run directories to report, C(netlab_compare) items
    C({results_dir, runs}) where C(runs) names two runs or is empty for the newest
    Canal and Cilium runs of the lab, C(netlab_scale_dirs) Service scale runs.
  - At the end of the playbook it rebuilds each run's C(summary.json),
    C(summary.csv), C(report.md) and charts from the raw iperf3 JSON files alone,
    writes each comparison to C(results/comparisons/<run a>_vs_<run b>/), and
    prints the tables.
  - For a Service scale run it writes C(scale.md), C(scale.csv) and C(scale.png)/C(.svg) (latency and
    update time against the number of Services) in the run, and the newest run of each CNI together
    in C(results/comparisons/service-scale/).
  - A raw file that is corrupt or not part of the run's plan is reported and
    skipped; a run with tests missing is marked incomplete, never dropped.
  - Last, where the cluster's admin kubeconfig was kept (C(netlab_kubeconfig), set by the rke2 role).
requirements:
  - Enable it in ansible.cfg with C(callbacks_enabled = netlab.lab.bench_report).
options:
  noisy_cv_percent:
    description: A test whose repeats have a larger coefficient of variation is flagged noisy.
    type: float
    default: 10.0
    ini:
      - section: callback_bench_report
        key: noisy_cv_percent
    env:
      - name: NETLAB_NOISY_CV_PERCENT
  charts:
    description: Draw the PNG and SVG charts.
    type: bool
    default: true
    ini:
      - section: callback_bench_report
        key: charts
    env:
      - name: NETLAB_CHARTS
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netlab.lab.bench_report"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats: Any) -> None:
        custom = stats.custom.get("_run") or {}
        for run_dir in dict.fromkeys(custom.get("netlab_run_dirs") or []):
            self._report(run_dir)
        for run_dir in dict.fromkeys(custom.get("netlab_scale_dirs") or []):
            self._scale(run_dir)
        seen = set()
        for request in custom.get("netlab_compare") or []:
            key = (request["results_dir"], tuple(request.get("runs") or ()))
            if key not in seen:
                seen.add(key)
                self._compare(request["results_dir"], list(key[1]))
        if custom.get("netlab_kubeconfig"):
            self._display.display(f"kubeconfig: {custom['netlab_kubeconfig']} (mode 0600; export KUBECONFIG=... "
                                  "to use it)")

    def _report(self, run_dir: str) -> None:
        def build() -> tuple[str, list[str], list[str]]:
            summary, problems = results.write_reports(
                run_dir, self.get_option("noisy_cv_percent"), self.get_option("charts")
            )
            return (results.render_text(summary), [f"{run_dir}: {p}" for p in problems],
                    [f"reports: {run_dir}/report.md, summary.json, summary.csv, throughput.png/.svg"])

        self._publish("BENCHMARK SUMMARY", f"the report of {run_dir}", build)

    def _scale(self, run_dir: str) -> None:
        def build() -> tuple[str, list[str], list[str]]:
            text, problems, both = scale_report.write_reports(run_dir, self.get_option("charts"))
            outputs = [f"report: {run_dir}/scale.md, scale.csv, scale.png/.svg"]
            if both:
                outputs.append(f"all CNIs: {both}/scale.md, scale.csv, scale.png/.svg")
            return text, problems, outputs

        self._publish("SERVICE SCALE", f"the Service scale report of {run_dir}", build)

    def _publish(self, title: str, what: str, build: Callable[[], tuple[str, list[str], list[str]]]) -> None:
        """Write a run's reports with build(), then print its problems, its table and where the files are."""
        try:
            text, problems, outputs = build()
        except (OSError, ValueError) as exc:
            self._display.warning(f"bench_report: cannot build {what}: {exc}")
            return
        for problem in problems:
            self._display.warning(f"bench_report: {problem}")
        self._display.banner(title)
        self._display.display(text)
        for line in outputs:
            self._display.display(line)

    def _compare(self, results_dir: str, runs: list[str]) -> None:
        try:
            comparison, out = compare.write_comparison(
                results_dir, runs, self.get_option("noisy_cv_percent"), self.get_option("charts")
            )
        except (OSError, ValueError) as exc:
            self._display.display(f"comparison skipped: {exc}")
            return
        self._display.banner("CNI COMPARISON")
        self._display.display(compare.render_text(comparison))
        for warning in comparison["warnings"]:
            self._display.warning(f"bench_report: {warning}")
        self._display.display(f"comparison: {out}/comparison.md, comparison.json, comparison.csv, comparison.png/.svg")
