"""Action plugin of netlab.lab.bench_local: the local transport's tests, one call for a run of them.

Runs on the client's node (the task is delegated there, with become): each test's client command
goes through the node's connection, busy or refused servers are tried again, and its raw file is
written on the controller before the next test starts, so an interrupted run keeps every finished
test. One line per finished test, with its figure, is all the console shows of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import foreign_cpu, runner

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("tests", "run_dir", "disturbance"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        tests = self._task.args.get("tests")
        run_dir = self._task.args.get("run_dir")
        if not isinstance(tests, list) or not run_dir:
            raise AnsibleActionFail("bench_local needs tests (a list from bench_plan) and run_dir")
        if self._task.check_mode:
            return {**result, "changed": False, "skipped": True, "msg": "check mode: no test runs"}
        raw_dir = Path(run_dir) / "raw"
        ran, failed = runner.run_tests(tests, lambda test: self._run_client(test, task_vars), raw_dir,
                                       display.display, disturbance=self._disturbance())
        return {**result, "changed": bool(ran), "tests": [test["id"] for test in ran], "failed_tests": failed}

    def _disturbance(self) -> runner.Disturbance | None:
        """The local lab's foreign CPU meter (its nodes' cgroups on this machine), threshold and reruns; None
        without cgroups (nodes that are not this machine's containers) or with a threshold of 0: not measured."""
        given = self._task.args.get("disturbance") or {}
        if not isinstance(given, dict):
            raise AnsibleActionFail("bench_local: disturbance must be a dict {cgroups, percent, reruns}")
        cgroups = [str(path) for path in given.get("cgroups") or []]
        percent = float(given.get("percent", 10))
        if not cgroups or percent <= 0:
            return None
        meter = foreign_cpu.Meter(cgroups)
        if not meter.enabled:
            display.warning("bench_local: the lab nodes' cgroups are not on this machine; foreign CPU not measured")
            return None
        return runner.Disturbance(meter, percent, int(given.get("reruns", 2)))

    def _run_client(self, test: dict[str, Any], task_vars: dict[str, Any] | None) -> dict[str, Any]:
        """The command module's result for the client command, run as a task would run it (become, pipelining),
        marked as the run's (what the watchdog stops on the node if ansible-playbook dies meanwhile)."""
        return self._execute_module(module_name="ansible.builtin.command",
                                    module_args={"argv": commands.marked(test["client_cmd"])}, task_vars=task_vars)
