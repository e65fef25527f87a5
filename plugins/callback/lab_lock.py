"""Release the lab's locks this playbook took (netlab.lab.lab_lock) when it ends, failed or not; bound the end
of an interrupted run (interrupt_guard)."""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.callback import CallbackBase

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import interrupt_guard, run_lock

DOCUMENTATION = r"""
name: lab_lock
type: aggregate
short_description: Release the lab's locks of this playbook run at its end; bound an interrupted run's end
version_added: "0.8.0"
description:
  - At the end of the playbook (its stats, whether its tasks failed or not) it removes every lock of
    C(netlab.lab.lab_lock) that this ansible-playbook process holds, in C($NETLAB_LOCK_DIR) or
    C($XDG_STATE_HOME/netlab/locks).
  - A run that is killed has no end; its lock stays, and the next run takes it over (its holder is gone).
  - A run interrupted by Ctrl-C (SIGINT) that has not ended 3 s later is ended (exit status 130), as a second
    Ctrl-C would end it, since ansible-core can wait for ever for a worker the interrupt killed (ansible/ansible#29124),
    and the run's watchdogs, which clean up the nodes, act only once the process has ended.
requirements:
  - enable in ansible.cfg (callbacks_enabled = netlab.lab.lab_lock), as the project's ansible.cfg does
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netlab.lab.lab_lock"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook: Any) -> None:
        # ansible-core's TaskQueueManager has installed its SIGINT handler by now; the guard wraps it.
        interrupt_guard.arm()

    def v2_playbook_on_stats(self, stats: Any) -> None:
        # The callback runs in ansible-playbook itself: its pid is the holder's.
        holder = {"host": run_lock.me(pid=os.getpid())["host"], "pid": os.getpid()}
        for key in run_lock.release_all(run_lock.lock_dir(), holder):
            self._display.vv(f"released the lab's lock {key}")
