"""Who runs this playbook: the controller's host name and the ansible-playbook process, so that a run's
objects on a cluster can say which run made them, and a later run can tell an interrupted one (its
process gone) from one that still runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: bench_controller
short_description: This controller's host name and the ansible-playbook process that runs the play
version_added: "0.7.0"
description:
  - Returns one mapping, C(host) (the controller's host name) and C(pid) (the process id of the ansible-playbook
    that runs the play, found by walking up from the process the lookup runs in; its own if none is found).
  - The Kubernetes transport writes both on its run's namespace (C(netlab.io/controller)); a later run on this
    controller removes a namespace whose ansible-playbook is gone (a run stopped by Ctrl-C or kill skips its
    cleanup), and refuses one whose run may still be going.
"""

EXAMPLES = r"""
- name: Name this controller
  ansible.builtin.set_fact:
    controller: "{{ lookup('netlab.lab.bench_controller') }}"
"""

RETURN = r"""
_raw:
  description: One mapping, C(host) and C(pid).
  type: list
  elements: dict
"""


def _parent(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text.rsplit(")", 1)[1].split()[1])


def is_playbook(pid: int) -> bool:
    """Whether pid is a live ansible-playbook process on this host."""
    try:
        return b"ansible-playbook" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def playbook_pid(start: int | None = None) -> int:
    """The ansible-playbook process above start (this process by default), or start itself.

    ansible-core's workers are forks of ansible-playbook (utils/multiprocessing.py: the 'fork' context), with
    its command line: the run's process is the topmost of a chain of processes with the same command line
    (an ansible-playbook started by another one has a command line of its own)."""
    pid = start or os.getpid()
    current = pid
    try:
        while current > 1:
            if is_playbook(current):
                while (parent := _parent(current)) > 1 and _cmdline(parent) == _cmdline(current):
                    current = parent
                return current
            current = _parent(current)
    except (OSError, ValueError, IndexError):
        pass
    return pid


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"host": socket.gethostname(), "pid": playbook_pid()}]
