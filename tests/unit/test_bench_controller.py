"""The bench_controller lookup: this host, and the ansible-playbook process above the one it runs in."""

import os
import socket
import subprocess
import sys

from ansible_collections.netlab.lab.plugins.lookup import bench_controller


def test_the_playbook_above_is_found_and_a_process_without_one_is_itself():
    # No ansible-playbook above pytest: the lookup's own process stands in.
    assert bench_controller.playbook_pid() == os.getpid()
    assert bench_controller.LookupModule().run([]) == [{"host": socket.gethostname(), "pid": os.getpid()}]
    # A process whose command line names ansible-playbook, with a child: the child finds its parent.
    code = ("import subprocess, sys; child = subprocess.run([sys.executable, '-c', "
            "'import os; print(os.getppid())'], capture_output=True, text=True); print(child.stdout.strip())")
    parent = subprocess.Popen([sys.executable, "-c", code, "ansible-playbook"], stdout=subprocess.PIPE, text=True)
    out, _ = parent.communicate(timeout=30)
    assert int(out) == parent.pid
    assert not bench_controller.is_playbook(parent.pid), "gone once it exited"


def test_is_playbook_reads_the_command_line():
    proc = subprocess.Popen([sys.executable, "-c", "print(1, flush=True); import time; time.sleep(30)",
                             "ansible-playbook"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "1\n"  # exec'd: its command line is its own now
        assert bench_controller.is_playbook(proc.pid)
        assert bench_controller.playbook_pid(proc.pid) == proc.pid
        assert not bench_controller.is_playbook(os.getpid())
    finally:
        proc.kill()
        proc.wait()
