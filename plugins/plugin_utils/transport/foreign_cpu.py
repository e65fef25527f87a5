"""What else ran on the machine during a test of the local lab: its foreign CPU.

All the local lab's nodes are containers on one kernel, so anything else the machine runs (a build, a
browser, another lane of tests) takes CPU from the datapath under test and moves its figure. Over a test's
window the machine's busy time (/proc/stat: user, nice, system, irq, softirq, steal) less the CPU the lab's
containers were charged (their cgroups: cgroup v2 ``cpu.stat`` usage_usec, or v1 ``cpuacct.usage``) and less
the kernel's threads' (ksoftirqd, kworkers: /proc/<pid>/stat of the tasks flagged PF_KTHREAD) is what ran
beside it; as a percentage of one core over the window it is the repeat's foreign CPU. A repeat above
the run's threshold (``bench_disturbed_percent``) is disturbed: kept aside and run again (runner.py).

The kernel's threads are left out because on the lab they are mostly its own packets' processing, charged to
no container: counted in, a 4-stream test read 17 to 19 % of a core on a quiet machine. Measured on this
machine, the floor is then a few percent of a core (the nodes' sshd is the lab's; the controller's ssh and
Ansible worker are not) (docs/methodology.md).

Only where the controller is the lab's machine (the local lab: the nodes' cgroups are found on it); a
Proxmox lab's or a cluster's repeats are not measured (None), and never rerun for it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal (guest is inside user).
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
# include/linux/sched.h: a kernel thread's flag in /proc/<pid>/stat (field 9).
PF_KTHREAD = 0x00200000
TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy(stat: str | None = None) -> float:
    """Seconds of CPU the machine has been busy since boot, all cores (/proc/stat's first line, BUSY_FIELDS)."""
    line = (stat if stat is not None else Path("/proc/stat").read_text()).splitlines()[0]
    fields = [int(value) for value in line.split()[1:]]
    return sum(fields[i] for i in BUSY_FIELDS if i < len(fields)) / TICKS


def kernel_threads(proc: Path = Path("/proc")) -> float:
    """Seconds of CPU the kernel's threads have used (utime + stime of every task flagged PF_KTHREAD)."""
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[6]) & PF_KTHREAD:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / TICKS


def usage_file(cgroup: str, root: Path = CGROUP_ROOT) -> Path | None:
    """The file that counts a cgroup's CPU: v2's cpu.stat, else v1's cpuacct.usage; None when neither is there."""
    relative = cgroup.strip("/")
    for path in (root / relative / "cpu.stat", root / "cpuacct" / relative / "cpuacct.usage",
                 root / "cpu,cpuacct" / relative / "cpuacct.usage"):
        if path.is_file():
            return path
    return None


def usage_seconds(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpu.stat":
        usec = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("usage_usec "))
        return usec / 1e6
    return int(text) / 1e9


class Meter:
    """Reads the machine's busy time and the lab's cgroups around each test."""

    def __init__(self, cgroups: list[str], root: Path = CGROUP_ROOT) -> None:
        self.files = [usage_file(cgroup, root) for cgroup in cgroups]
        # Only with every node's cgroup found: a node missing would count as foreign.
        self.enabled = bool(self.files) and all(self.files)

    def sample(self) -> dict[str, float] | None:
        if not self.enabled:
            return None
        lab = sum(usage_seconds(path) for path in self.files if path)
        return {"wall": time.monotonic(), "busy": machine_busy(), "lab": lab, "kernel": kernel_threads()}


def figure(before: dict[str, float] | None, after: dict[str, float] | None, threshold: float) -> dict[str, Any] | None:
    """The foreign CPU between two samples, as a percentage of one core, and whether it is above threshold;
    None when the lab's machine was not measured."""
    if not before or not after or after["wall"] <= before["wall"]:
        return None
    wall = after["wall"] - before["wall"]
    busy, lab = after["busy"] - before["busy"], after["lab"] - before["lab"]
    kernel = after.get("kernel", 0.0) - before.get("kernel", 0.0)
    percent = max(0.0, busy - lab - kernel) / wall * 100
    return {"percent": round(percent, 1), "threshold": threshold, "disturbed": percent > threshold,
            "busy_s": round(busy, 3), "lab_s": round(lab, 3), "kernel_s": round(kernel, 3), "wall_s": round(wall, 3)}
