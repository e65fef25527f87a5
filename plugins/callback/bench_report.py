"""Write and print the benchmark reports and comparisons a playbook asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase

from ansible_collections.netlab.lab.plugins.plugin_utils.report import compare_render, history, run_report, scale_report

DOCUMENTATION = r"""
name: bench_report
type: aggregate
short_description: Report benchmark runs, compare them and keep their history at the end of the playbook
version_added: "0.1.0"
description:
  - Plays announce work with C(ansible.builtin.set_stats), as aggregated lists.
    C(netlab_run_dirs) holds run directories to report, C(netlab_compare) items
    C({results_dir, runs, baseline, chain, profile_chain, side_steps}) where C(runs) names two or more runs or is empty
    for the newest run of each CNI and profile of the lab, C(baseline) names the run (run id or
    label such as C(canal/vxlan)) the others are held against (default the first, Canal first),
    C(chain) the runs of the step table (labels or run ids), and C(profile_chain) the profiles' step
    chain as labels cni/profile (the report play passes C(netlab_profile_chain) of
    C(playbooks/vars/profiles.yml)). The compared runs follow the profile chain's order after Canal
    first, and without C(chain) the step table goes along those of its runs that were compared.
    C(side_steps) (pairs of labels, C(netlab_profile_side_steps)) are the side steps, each priced where both its
    runs were compared.
    C(netlab_scale_dirs) holds Service scale runs. A request asked twice is written once.
  - At the end of the playbook it rebuilds each run's C(summary.json),
    C(summary.csv), C(report.md) and charts from the raw iperf3 JSON files alone,
    writes each comparison to C(results/comparisons/<baseline run>_vs_<other run>/) (two runs) or
    C(results/comparisons/<baseline run>_vs_<N>-runs/), with the step table ("where the difference
    comes from"), and prints the tables.
  - After a run's reports it rebuilds the history of its results directory, C(results/index.json)
    (one entry per run with its lab, CNI, profile, environment and each test's headline median) and
    C(results/history/) (C(history.md) and C(trend.png)/C(.svg), each test over time in the lab of the
    newest run).
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
        reported = [run_dir for run_dir in dict.fromkeys(custom.get("netlab_run_dirs") or []) if self._report(run_dir)]
        for run_dir in dict.fromkeys(custom.get("netlab_scale_dirs") or []):
            self._scale(run_dir)
        seen = set()
        for request in custom.get("netlab_compare") or []:
            key = (request["results_dir"], tuple(request.get("runs") or ()), request.get("baseline") or None,
                   tuple(request.get("chain") or ()), tuple(request.get("profile_chain") or ()),
                   tuple(tuple(pair) for pair in request.get("side_steps") or ()))
            if key not in seen:
                seen.add(key)
                self._compare(request["results_dir"], list(key[1]), key[2], list(key[3]), list(key[4]),
                              [list(pair) for pair in key[5]])
        for results_dir in dict.fromkeys(str(Path(run_dir).parent) for run_dir in reported):
            self._history(results_dir)
        if custom.get("netlab_kubeconfig"):
            self._display.display(f"kubeconfig: {custom['netlab_kubeconfig']} (mode 0600; export KUBECONFIG=... "
                                  "to use it)")

    def _report(self, run_dir: str) -> bool:
        def build() -> tuple[str, list[str], list[str]]:
            summary, problems = run_report.write_reports(
                run_dir, self.get_option("noisy_cv_percent"), self.get_option("charts")
            )
            return (run_report.render_text(summary), [f"{run_dir}: {p}" for p in problems],
                    [f"reports: {run_dir}/report.md, summary.json, summary.csv, throughput.png/.svg"])

        return self._publish("BENCHMARK SUMMARY", f"the report of {run_dir}", build)

    def _scale(self, run_dir: str) -> None:
        def build() -> tuple[str, list[str], list[str]]:
            text, problems, both = scale_report.write_reports(run_dir, self.get_option("charts"))
            outputs = [f"report: {run_dir}/scale.md, scale.csv, scale.png/.svg"]
            if both:
                outputs.append(f"all CNIs: {both}/scale.md, scale.csv, scale.png/.svg")
            return text, problems, outputs

        self._publish("SERVICE SCALE", f"the Service scale report of {run_dir}", build)

    def _publish(self, title: str, what: str, build: Callable[[], tuple[str, list[str], list[str]]]) -> bool:
        """Write a run's reports with build(), then print its problems, its table and where the files are;
        False when they could not be built."""
        try:
            text, problems, outputs = build()
        except (OSError, ValueError) as exc:
            self._display.warning(f"bench_report: cannot build {what}: {exc}")
            return False
        for problem in problems:
            self._display.warning(f"bench_report: {problem}")
        self._display.banner(title)
        self._display.display(text)
        for line in outputs:
            self._display.display(line)
        return True

    def _compare(self, results_dir: str, runs: list[str], baseline: str | None, chain: list[str],
                 profile_chain: list[str], side_steps: list[list[str]]) -> None:
        try:
            comparison, out = compare_render.write_comparison(
                results_dir, runs, self.get_option("noisy_cv_percent"), self.get_option("charts"), baseline, chain,
                profile_chain, side_steps,
            )
        except (OSError, ValueError) as exc:
            self._display.display(f"comparison skipped: {exc}")
            return
        self._display.banner("CNI COMPARISON")
        self._display.display(compare_render.render_text(comparison))
        for warning in comparison["warnings"]:
            self._display.warning(f"bench_report: {warning}")
        self._display.display(f"comparison: {out}/comparison.md, comparison.json, comparison.csv, comparison.png/.svg")

    def _history(self, results_dir: str) -> None:
        try:
            index, out, charts = history.write_history(results_dir, self.get_option("charts"))
        except (OSError, ValueError) as exc:
            self._display.warning(f"bench_report: cannot build the history of {results_dir}: {exc}")
            return
        self._display.display(f"history: {results_dir}/index.json (runs: {len(index['runs'])}), "
                              f"{out}/history.md{', trend.png/.svg' if charts else ''}")
