"""The interrupt guard (interrupt_guard.py) with real processes and real signals: a Ctrl-C'd process that hangs
in its cleanup as ansible-playbook does in ansible/ansible#29124 ends within the grace; one that ends by itself
keeps its own exit status."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import interrupt_guard

# The interrupted process, after ansible-core's shape: its SIGINT handler (the TaskQueueManager's) raises
# KeyboardInterrupt, and its cleanup joins a thread that reads a pipe only the process itself holds open.
CHILD = textwrap.dedent("""
    import os, signal, sys, threading
    from ansible_collections.netlab.lab.plugins.plugin_utils.lab import interrupt_guard

    def tqm_handler(signum, frame):
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt()

    signal.signal(signal.SIGINT, tqm_handler)
    assert interrupt_guard.arm(grace=1.0)
    assert not interrupt_guard.arm(grace=1.0)  # once per process
    read_end, write_end = os.pipe()
    results = threading.Thread(target=os.read, args=(read_end, 1), daemon=True)
    results.start()
    try:
        print("ready", flush=True)  # inside the try: the interrupt may come at once
        threading.Event().wait(60)
    except KeyboardInterrupt:
        if sys.argv[1] == "hangs":
            results.join()  # what the strategy's cleanup does
        sys.exit(99)  # ansible-playbook's status for a user interrupt
""")


def interrupt(mode: str) -> tuple[int, str, float]:
    # pytest's pythonpath setting is this process's sys.path, not the environment's: the child gets it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=20)[1]
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return proc.returncode, err, time.monotonic() - sent


def test_a_process_hung_after_the_interrupt_is_ended_after_the_grace():
    status, err, seconds = interrupt("hangs")
    assert status == interrupt_guard.EXIT_STATUS, err
    assert "ansible/ansible#29124" in err and "had not stopped 1 s after the interrupt" in err
    assert seconds >= 1.0


def test_a_process_that_ends_by_itself_keeps_its_status():
    status, err, _ = interrupt("ends")
    assert status == 99, err
    assert "had not stopped" not in err


# ansible-playbook itself, with the project's callbacks, its strategy's cleanup made to hang as in the issue
# (a sitecustomize that replaces StrategyBase.cleanup by a wait for ever), interrupted during a task.
HANG = textwrap.dedent("""
    import builtins, sys, threading
    _import = builtins.__import__

    def _hang_cleanup(name, *args, **kwargs):
        module = _import(name, *args, **kwargs)
        base = getattr(sys.modules.get("ansible.plugins.strategy"), "StrategyBase", None)
        if base is not None and not getattr(base, "hung", False):
            base.cleanup, base.hung = (lambda self: threading.Event().wait()), True
        return module

    builtins.__import__ = _hang_cleanup
""")
PLAYBOOK = "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sh -c 'sleep 30' {}\n"


def running(word: str) -> bool:
    """Some process's command line holds word."""
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if word.encode() in path.read_bytes():
                return True
        except OSError:
            continue
    return False


def test_ansible_playbook_hung_in_its_cleanup_ends_after_the_grace(tmp_path, request):
    root = request.config.rootpath
    word = f"guard-{uuid.uuid4().hex}"  # names the task's sleep among the machine's processes
    (tmp_path / "sitecustomize.py").write_text(HANG)
    (tmp_path / "play.yml").write_text(PLAYBOOK.format(word))
    env = {**os.environ, "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                             "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
                            env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not running(word):
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == interrupt_guard.EXIT_STATUS, out[-2000:]
    assert "ansible/ansible#29124" in out
    assert time.monotonic() - sent >= interrupt_guard.GRACE_SECONDS
