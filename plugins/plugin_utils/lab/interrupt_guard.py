"""A Ctrl-C ends ansible-playbook within a bound, as a second Ctrl-C of a patient user would.

On SIGINT ansible-core's TaskQueueManager passes the signal to its workers and raises KeyboardInterrupt;
the strategy's cleanup then joins its results thread. When a worker died while it wrote to the results
queue, that thread reads a pipe no one will write again and ansible-playbook waits for ever (the hang of
ansible/ansible#29124, seen here once in five runs of the kill test on a loaded 2-core machine). While it
waits, the run's watchdogs (transport/watchdog.py) wait too (they act when the process ends), so the run's
servers stay up on the nodes and its lab lock stays taken.

``arm`` wraps the SIGINT handler in place (ansible-core's, installed before the callbacks load): the
wrapped handler still runs first, and a daemon thread ends the process ``GRACE_SECONDS`` later if it is
still there. A run that ends by itself in time is not touched. No Ansible imports.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# An interrupted run that is not hung has ended well within this (it runs no more tasks; the watchdogs
# clean the nodes after it). The kill test's bound for everything of the run to be gone is 10 s.
GRACE_SECONDS = 3.0
# The exit status of a process ended by SIGINT, as a shell reports it.
EXIT_STATUS = 130
_MARK = "_netlab_interrupt_guard"


def _end_after(grace: float, exit_status: int) -> None:
    time.sleep(grace)
    sys.stderr.write(f"[netlab] ansible-playbook had not stopped {grace:g} s after the interrupt (its results "
                     "thread waits for a worker the interrupt ended, ansible/ansible#29124); ending it now, "
                     "as a second Ctrl-C would. The run's watchdogs clean up the nodes.\n")
    sys.stderr.flush()
    os._exit(exit_status)


def arm(grace: float = GRACE_SECONDS, exit_status: int = EXIT_STATUS) -> bool:
    """Wrap this process's SIGINT handler (main thread only); False when it is wrapped already or cannot be."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if getattr(current, _MARK, False):
        return False
    started = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        if not started.is_set():
            started.set()
            threading.Thread(target=_end_after, args=(grace, exit_status), name="netlab-interrupt-guard",
                             daemon=True).start()
        if isinstance(current, Callable):
            current(signum, frame)
        elif current == signal.SIG_IGN:
            return
        else:
            raise KeyboardInterrupt

    setattr(on_interrupt, _MARK, True)
    signal.signal(signal.SIGINT, on_interrupt)
    return True
