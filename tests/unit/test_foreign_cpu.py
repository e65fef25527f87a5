"""The local lab's foreign CPU (foreign_cpu.py): the machine's busy time less the lab's cgroups, on files as the
kernel writes them (cgroup v1 cpuacct and v2 cpu.stat), and on this machine's own."""

import os
import time

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import foreign_cpu

STAT = "cpu  1000 20 300 50000 40 5 6 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"


def test_busy_time_counts_user_nice_system_irq_softirq_steal_not_idle_or_iowait():
    assert foreign_cpu.machine_busy(STAT) == pytest.approx((1000 + 20 + 300 + 5 + 6 + 7) / foreign_cpu.TICKS)


def test_cgroup_usage_v2_and_v1(tmp_path):
    v2 = tmp_path / "machine.slice" / "libpod-a.scope"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    v1 = tmp_path / "cpuacct" / "libpod_parent" / "libpod-b"
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("1500000000\n")
    meter = foreign_cpu.Meter(["/machine.slice/libpod-a.scope", "/libpod_parent/libpod-b"], root=tmp_path)
    assert meter.enabled and meter.sample()["lab"] == pytest.approx(4.0)

    assert not foreign_cpu.Meter(["/machine.slice/libpod-a.scope", "/gone"], root=tmp_path).enabled
    assert foreign_cpu.Meter([], root=tmp_path).sample() is None


def test_the_kernels_threads_are_read_from_their_flag(tmp_path):
    """/proc/<pid>/stat as the kernel writes it: ksoftirqd (PF_KTHREAD) counts, a process does not."""
    for pid, name, flags, utime, stime in ((14, "ksoftirqd/0", 0x04208040, 150, 250), (900, "iperf3 (x)", 0x400100,
                                                                                        7000, 100)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(
            f"{pid} ({name}) S 2 0 0 0 -1 {flags} 0 0 0 0 {utime} {stime} 0 0 20 0 1 0 5 0 0\n")
    (tmp_path / "self").mkdir()
    assert foreign_cpu.kernel_threads(tmp_path) == pytest.approx(400 / foreign_cpu.TICKS)
    assert foreign_cpu.kernel_threads() >= 0


def test_the_figure_is_percent_of_one_core_over_the_window():
    before = {"wall": 10.0, "busy": 100.0, "lab": 50.0}
    after = {"wall": 12.0, "busy": 103.0, "lab": 52.6}  # 3 s busy, 2.6 s of it the lab's: 0.4 s in 2 s
    found = foreign_cpu.figure(before, after, 10)
    assert found["percent"] == 20.0 and found["disturbed"] and found["threshold"] == 10
    assert not foreign_cpu.figure(before, after, 25)["disturbed"]
    calm = foreign_cpu.figure(before, {**after, "lab": 53.5}, 10)  # the lab charged more than the machine's total
    assert calm["percent"] == 0.0 and not calm["disturbed"]
    kernel = foreign_cpu.figure({**before, "kernel": 1.0}, {**after, "kernel": 1.3}, 10)  # 0.3 s of ksoftirqd
    assert kernel["percent"] == 5.0 and kernel["kernel_s"] == 0.3
    assert foreign_cpu.figure(None, after, 10) is None and foreign_cpu.figure(before, before, 10) is None


def test_a_busy_loop_of_this_process_is_foreign_to_a_lab_of_no_process(tmp_path):
    """On this machine: an empty cgroup stands for the lab, and this process burns a core for 0.5 s."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "cpu.stat").write_text("usage_usec 0\n")
    meter = foreign_cpu.Meter(["/lab"], root=tmp_path)
    before = meter.sample()
    cpu = time.process_time()
    while time.process_time() - cpu < 0.5:
        pass
    found = foreign_cpu.figure(before, meter.sample(), 10)
    assert found["disturbed"] and found["percent"] > 40, found
    assert os.path.exists("/proc/stat")
