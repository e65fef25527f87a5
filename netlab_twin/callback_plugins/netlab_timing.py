"""The timing lock of make test's lanes, taken by the playbooks themselves (netlab_twin.lanes)."""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.callback import CallbackBase

from netlab_twin.lanes import ROLE_ENV, TimingLock

DOCUMENTATION = r"""
name: netlab_timing
type: aggregate
short_description: Pause lane B's playbooks while lane A measures (make test's lanes)
description:
  - Test support, enabled by scripts/test_lanes.py for both lanes. With NETLAB_TIMING_ROLE=measure (lane A's
    timing-sensitive runs) the playbook holds the lock named in NETLAB_TIMING_LOCK exclusively while a
    benchmark task (netlab.lab.bench_local, netlab.lab.bench_kube) runs; with NETLAB_TIMING_ROLE=yield (every
    playbook of lane B) it holds the lock shared for each task, so it pauses between two tasks while lane A
    measures.
  - Without NETLAB_TIMING_LOCK or NETLAB_TIMING_ROLE it does nothing.
"""

# The tasks that measure: the local transport's tests of one client node, the Kubernetes transport's whole plan.
MEASURING = frozenset({"bench_local", "bench_kube"})


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netlab_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._role = os.environ.get(ROLE_ENV, "")
        self._lock = TimingLock()

    def _task(self, task: Any) -> None:
        self._lock.give_back()
        if self._role == "yield":
            self._lock.take(shared=True)
        elif self._role == "measure" and str(task.action).rsplit(".", 1)[-1] in MEASURING:
            self._lock.take(shared=False)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._task(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._task(task)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._lock.give_back()
