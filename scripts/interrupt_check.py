"""Stop a test run with SIGTERM part-way and check that it left nothing behind for the next one.

    python scripts/interrupt_check.py [--wait-for NAME] [--after SECONDS] [--signal-to pytest] -- COMMAND...

Starts COMMAND (e.g. `make lanes`) in a session of its own, waits until a podman container whose name
contains NAME exists (default: any new container) and SECONDS more, sends SIGTERM to COMMAND (or, with
--signal-to pytest, to the first pytest process COMMAND started) and waits for it to end. Then no
container, podman network or process of the run may remain: what podman lists that was not there before
is printed, and the exit status is 1 if anything remains. Run it under the lab lock, alone on podman.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def podman_names(kind: str) -> set[str]:
    args = ["ps", "-a", "--format", "{{.Names}}"] if kind == "container" else ["network", "ls", "--format",
                                                                               "{{.Name}}"]
    return set(subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout.split())


def session_pids(sid: int) -> list[int]:
    """Processes of the session COMMAND started (its descendants that did not start their own session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except ProcessLookupError:
                continue
    return pids


def descendants(root: int) -> list[int]:
    """root's descendants, whatever their session (lanes.run starts each playbook in a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wait-for", default="", help="part of a container name to wait for")
    parser.add_argument("--after", type=float, default=0, help="seconds to wait after it appeared")
    parser.add_argument("--signal-to", choices=("command", "pytest"), default="command")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the container")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()

    containers, networks = podman_names("container"), podman_names("network")
    started = time.monotonic()
    proc = subprocess.Popen(args.command, start_new_session=True)
    print(f"interrupt_check: started {args.command} (pid {proc.pid})", flush=True)
    while not any(args.wait_for in name for name in podman_names("container") - containers):
        if proc.poll() is not None or time.monotonic() - started > args.timeout:
            print("interrupt_check: the run ended or timed out before its containers appeared", flush=True)
            proc.kill()
            return 2
        time.sleep(1)
    time.sleep(args.after)
    target = proc.pid
    if args.signal_to == "pytest":
        target = next((pid for pid in sorted(descendants(proc.pid)) if "pytest" in command_line(pid)), 0)
        if not target:
            print("interrupt_check: no pytest process to stop", flush=True)
            proc.kill()
            return 2
    running = sorted(podman_names("container") - containers)
    print(f"interrupt_check: SIGTERM to {target} ({command_line(target)}) after {time.monotonic() - started:.0f} s;"
          f" running: {running}", flush=True)
    # Every process of the run now, playbooks in sessions of their own included: none may outlive it.
    tree = {pid: command_line(pid) for pid in descendants(proc.pid)}
    os.kill(target, signal.SIGTERM)
    try:
        code = proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        print("interrupt_check: the run did not end within 600 s of SIGTERM", flush=True)
        os.killpg(proc.pid, signal.SIGKILL)
        return 1
    time.sleep(2)  # podman's own cleanup of a removed container
    left_containers = sorted(podman_names("container") - containers)
    left_networks = sorted(podman_names("network") - networks)
    left = set(session_pids(proc.pid)) | {pid for pid, line in tree.items() if line and command_line(pid) == line}
    left_processes = [f"{pid} {command_line(pid)}" for pid in sorted(left)]
    print(f"interrupt_check: the run ended with {code} after {time.monotonic() - started:.0f} s", flush=True)
    print(f"  containers left: {left_containers}\n  networks left: {left_networks}\n"
          f"  processes left: {left_processes}", flush=True)
    return 1 if left_containers or left_networks or left_processes else 0


if __name__ == "__main__":
    sys.exit(main())
