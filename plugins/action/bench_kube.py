"""Action plugin of netlab.lab.bench_kube: the Kubernetes transport's tests, one call for the whole plan.

Runs on the controller, in the worker's own process: one API client for the run (plugin_utils/transport/
kube_stream.py), the CPU sampler of each server pod started before the first test and read after the last,
each test's client exec'd in its pod with its own deadline, busy or refused servers tried again, and each raw
file written before the next test starts, so an interrupted run keeps every finished test. One line per
finished test, with its figure, is all the console shows of it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_lease, kube_state, kube_stream, runner

display = Display()


def _exec(api: Any, call: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One exec of the plan (commands.k8s_exec's arguments: namespace, pod, container, command)."""
    return kube_stream.run(api, call["namespace"], call["pod"], call["container"], shlex.split(call["command"]),
                           seconds)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("tests", "settings", "run_dir", "kubeconfig", "context", "lease"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        tests, settings, run_dir = args.get("tests"), args.get("settings"), args.get("run_dir")
        if not isinstance(tests, list) or not isinstance(settings, dict) or not run_dir:
            raise AnsibleActionFail("bench_kube needs tests (a list from bench_plan), settings and run_dir")
        if self._task.check_mode:
            return {**result, "changed": False, "skipped": True, "msg": "check mode: no test runs"}
        try:
            api = kube_stream.connect({"kubeconfig": args.get("kubeconfig"), "context": args.get("context")})
        except ConnectionError as exc:
            raise AnsibleActionFail(f"the benchmark cannot reach the cluster: {exc}") from None
        raw_dir = Path(run_dir) / "raw"
        samplers = commands.samplers(tests, settings)
        problems = [problem for sampler in samplers
                    if (problem := kube_state.exec_problem(_exec(api, sampler["start"], sampler["task_timeout"]),
                                                           f"the CPU sampler of {sampler['pod']}"))]
        for problem in problems:
            display.warning(f"{problem}: that pod's node is left out of the tests' CPU figures")
        lease, lost = args.get("lease") or {}, []

        def renewed(_test: dict[str, Any]) -> bool:
            """The lab's Lease renewed before each test; lost: another run holds the cluster now."""
            if lease:
                try:
                    kube_lease.renew(api, lease["name"], lease["namespace"], lease)
                except kube_lease.LeaseLost as exc:
                    lost.append(str(exc))
                    return False
            return True

        ran, failed = runner.run_tests(tests, lambda test: _exec(api, test["exec"], test["bounds"]["task_timeout"]),
                                       raw_dir, display.display, renewed)
        self._add_server_cpu(api, samplers, ran, raw_dir)
        done = {**result, "changed": bool(ran), "tests": [test["id"] for test in ran], "failed_tests": failed,
                "sampler_problems": problems}
        # Another run holds the cluster now: its tests would share the pods' nodes with this one's.
        return {**done, "failed": True, "msg": f"{lost[0]}; the finished tests are kept"} if lost else done

    @staticmethod
    def _add_server_cpu(api: Any, samplers: list[dict[str, Any]], ran: list[dict[str, Any]], raw_dir: Path) -> None:
        """Each finished test's raw file with its server's readings, from its server pod's sampler (stopped and
        read once, after the tests). A sampler that cannot be read leaves its tests without the server's CPU."""
        logs = {}
        for sampler in samplers:
            done = _exec(api, sampler["read"], sampler["task_timeout"])
            if problem := kube_state.exec_problem(done, f"the CPU sampler of {sampler['pod']}"):
                display.warning(f"{problem}: its tests are kept without the server's CPU")
            logs[sampler["pod"]] = done["stdout"]
        for test in ran:
            if logs.get(test.get("cpu_pod")):
                path = raw_dir / f"{test['id']}.json"
                files.atomic_write(path, raw.add_server_cpu(path.read_text(), logs[test["cpu_pod"]]) + "\n")
