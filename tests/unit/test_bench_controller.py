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


def test_a_fork_of_ansible_playbook_names_its_parent():
    """ansible-core's workers are forks (the same command line): the run is the process they were forked from."""
    code = ("import os, sys\n"
            "sys.path[:0] = [p for p in sys.argv[2:] if p]\n"
            "from ansible_collections.netlab.lab.plugins.lookup import bench_controller\n"
            "r, w = os.pipe()\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    os.write(w, f'{os.getpid()} {bench_controller.playbook_pid()}'.encode())\n"
            "    os._exit(0)\n"
            "os.waitpid(child, 0)\n"
            "print(os.getpid(), os.read(r, 64).decode())\n")
    proc = subprocess.run([sys.executable, "-c", code, "ansible-playbook", *sys.path], capture_output=True,
                          text=True, timeout=60)
    parent, child, found = (int(word) for word in proc.stdout.split())
    assert child != parent and found == parent, proc.stderr
