"""Node CPU during each test, from /proc/stat read right before and right after it, on both ends.

A reading is one line: the kernel's boot id, the seconds since boot (/proc/uptime) and the ``cpu``
line of /proc/stat (time of all CPUs in USER_HZ ticks by mode). The client's node is read by the
wrapper the test runs in (``around``, or proof.around on the local transport), on stderr lines that
start with MARKER. The server's node is read by its own reader: on the local transport a small server
started with the run's servers (``reader_command``) that answers each connection with one reading,
asked by the client's wrapper; on Kubernetes a sampler in each server pod (/proc/stat is not
namespaced: a pod reads its node's), started by one exec before the run's tests and read by one after
them. An exec has a start-up of its own (a WebSocket, the API server's and the runtime's work): readings
taken by an exec around each test would give the server a longer window than the client's, and cost each
test two more execs. The sampler reads every SAMPLE_PERIOD instead, and each test's server readings are
those that bracket the client's, matched on the wall clock the client's wrapper prints beside its
readings (``server_readings``; raw.add_server_cpu). Two readings with the same boot id come from one
kernel (the local lab's nodes are containers of one machine): that CPU is counted once. Pure functions.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "netlab-cpu "
# Linux reports /proc/stat in USER_HZ ticks, 100 per second on every architecture it runs on
# (include/asm-generic/param.h; sysconf(_SC_CLK_TCK)).
USER_HZ = 100
# The fields of the cpu line (proc(5)), in order.
FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_READING = ('"$(cat /proc/sys/kernel/random/boot_id) $(cut -d " " -f 1 /proc/uptime) '
            '$(head -n 1 /proc/stat)"')
# Shell function of the wrappers: one reading of this node on stderr, marked with the end it is.
SAMPLE = f'sample() {{ echo "{MARKER}$1 "{_READING} >&2; }}'
# The wall clock beside the Kubernetes client's readings, to find the server's readings around them.
CLOCK = f'clock() {{ echo "{MARKER}clock $(date +%s.%N)" >&2; }}'
# The server sampler's period: its readings bracket the client's within this (sleep is its only fork).
SAMPLE_PERIOD = 0.1
# Asks the server node's reader (local transport) for one reading, marked as the server's.
REMOTE = ('remote() { [ -z "$1" ] || echo "' + MARKER + 'server $(python3 -c "import socket, sys; '
          'host, port = sys.argv[1].rsplit(\':\', 1); '
          'print(socket.create_connection((host, int(port)), 2).makefile().read().strip())" "$1")" >&2; }')


# The CPU a pod's own processes were charged, where its container's cgroup can be read from inside it: cgroup
# v2 (in the pod's cgroup namespace the container's cgroup is /sys/fs/cgroup, cpu.stat's first line is
# usage_usec; without one, /proc/self/cgroup names a path and the root's cpu.stat would be the node's) or v1
# (runc mounts the container's cpuacct cgroup there: cpuacct.usage in ns). Each cgroup path in turn; the first
# readable one is the pod's. ``$pf`` the file, ``$ps`` its count per second, ``$pi`` the cgroup's inode (which
# cgroup it is: two pods that are one cgroup are counted once); none without an inode.
_POD_FILE = ('pf= ps= pi=; for c in /sys/fs/cgroup/cpu.stat /sys/fs/cgroup/cpuacct/cpuacct.usage '
             '/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage; do if [ -r "$c" ]; then '
             'case $c in *cpu.stat) grep -qx "0::/" /proc/self/cgroup || break; ps=1000000 ;; *) ps=1000000000 ;; '
             'esac; pi=$(stat -L -c %i "${c%/*}" 2>/dev/null); [ -z "$pi" ] || pf=$c; break; fi; done')
# One reading of it by shell builtins: ``$pu``, the count (v2: the second word of ``usage_usec N``).
_POD_READ = 'pu=; if [ -n "$pf" ]; then read -r pa pb < "$pf"; pu=${pb:-$pa}; fi'
# The client pod's reading beside its node's, on stderr: ``<inode> <count> <count per second>``.
POD = f'pod() {{ {_POD_READ}; [ -z "$pu" ] || echo "{MARKER}pod $pi $pu $ps" >&2; }}'

_CLOCKED = (f'{SAMPLE}; {CLOCK}; {POD}; {_POD_FILE}; clock; sample client; pod; "$@"; rc=$?; sample client; pod; '
            'clock; exit $rc')


def around(argv: list[str]) -> list[str]:
    """argv run between two readings of its node's /proc/stat (printed on stderr), each beside the wall
    clock (Kubernetes: the server's sampler is matched to it)."""
    return ["sh", "-c", _CLOCKED, "netlab-cpu", *argv]


def _sample_file(name: str) -> str:
    return f"/tmp/netlab-cpu-{name}"


# One reading of the sampler, by shell builtins, appended to its file ``$f`` (``$boot``: the kernel's boot id),
# and the server pod's own CPU after it (``pod <count>``) where its cgroup can be read.
_APPEND = ('read -r up _ < /proc/uptime; read -r stat < /proc/stat; echo "$boot $up $stat" >> "$f"; '
           f'{_POD_READ}; [ -z "$pu" ] || echo "pod $pu" >> "$f"')


def sampler(name: str, seconds: int) -> list[str]:
    """Kubernetes, in a server pod before the run's tests: read this node's /proc/stat every SAMPLE_PERIOD
    into a file of its own, for at most ``seconds`` or until ``sampled`` stops it, in the background (the
    exec returns at once, after the first reading: every test's client starts later). The file starts with
    one line ``clock <wall> <uptime>`` that ties the two clocks, then, where the pod's cgroup can be read, a
    line ``podcg <inode> <count per second>``; each reading is taken by shell builtins, so the sampler's own
    cost is one ``sleep`` per period (about 1 % of one CPU)."""
    f = _sample_file(name)
    loops = int(seconds / SAMPLE_PERIOD)
    script = (f'f={f}; rm -f "$f" "$f.stop"; boot=$(cat /proc/sys/kernel/random/boot_id); {_POD_FILE}; '
              'echo "clock $(date +%s.%N) $(cut -d " " -f 1 /proc/uptime)" > "$f"; '
              '[ -z "$pf" ] || echo "podcg $pi $ps" >> "$f"; '
              f'{_APPEND}; ( n=0; while [ $n -lt {loops} ] && [ ! -e "$f.stop" ]; do sleep {SAMPLE_PERIOD}; '
              f'{_APPEND}; n=$((n + 1)); done ) < /dev/null > /dev/null 2>&1 & echo sampling')
    return ["sh", "-c", script]


def sampled(name: str) -> list[str]:
    """Kubernetes, in a server pod after the run's tests: stop its sampler, take one last reading (after every
    test's client ended, however soon this runs), and print what it read."""
    f = _sample_file(name)
    return ["sh", "-c", f'f={f}; touch "$f.stop"; sleep {SAMPLE_PERIOD * 3}; '
            f'boot=$(cat /proc/sys/kernel/random/boot_id); {_POD_FILE}; {_APPEND}; cat "$f"; rm -f "$f" "$f.stop"']


def _samples(sampler_log: str) -> list[tuple[float, str, str | None]] | None:
    """A sampler's log as (wall clock, reading, the pod's reading beside it or None); None when it has no clock."""
    log = (sampler_log or "").strip().splitlines()
    head = log[0].split() if log else []
    if len(head) != 3 or head[0] != "clock":
        return None
    try:
        offset = float(head[1]) - float(head[2])
    except ValueError:
        return None
    cgroup = next((line.split()[1:] for line in log[1:3] if line.startswith("podcg ")), None)
    samples: list[tuple[float, str, str | None]] = []
    after_reading = False  # a pod line belongs to the reading right before it, none other
    for line in log[1:]:
        if reading := parse_reading(line):
            samples.append((reading["uptime"] + offset, line.strip(), None))
            after_reading = True
            continue
        if after_reading and line.startswith("pod ") and cgroup and len(cgroup) == 2 and len(line.split()) == 2:
            samples[-1] = (*samples[-1][:2], f"{cgroup[0]} {line.split()[1]} {cgroup[1]}")
        after_reading = False
    return samples


def _around(samples: list[tuple[float, str, str | None]], clocks: list[float]) -> list[tuple[float, str, str | None]]:
    """The last sample at or before the client's first clock and the first at or after its last; [] if none."""
    before = [sample for sample in samples if sample[0] <= clocks[0]]
    after = [sample for sample in samples if sample[0] >= clocks[-1]]
    return [before[-1], after[0]] if before and after and len(clocks) >= 2 else []


def server_pair(sampler_log: str, clocks: list[float]) -> tuple[list[str] | None, list[str] | None]:
    """The server's two readings for a test from its sampler's log (``sampled``'s output): the last reading at
    or before the client's first clock and the first at or after its last (None when the log has no pair); and
    the server pod's own CPU beside them (``<inode> <count> <count per second>``; None when its cgroup was not
    read)."""
    pair = _around(_samples(sampler_log) or [], clocks)
    if not pair:
        return None, None
    return [pair[0][1], pair[1][1]], ([pair[0][2], pair[1][2]] if pair[0][2] and pair[1][2] else None)


def server_readings(sampler_log: str, clocks: list[float]) -> list[str] | None:
    """The server's two readings alone (server_pair)."""
    return server_pair(sampler_log, clocks)[0]


def server_pod_readings(sampler_log: str, clocks: list[float]) -> list[str] | None:
    """The server pod's own CPU readings alone (server_pair)."""
    return server_pair(sampler_log, clocks)[1]


def reader_command(port: int) -> str:
    """The local transport's reader of a server node's /proc/stat: answers each connection on ``port``
    with one reading (a shell word: single-quoted Python without a single quote inside)."""
    code = (
        "import socket\n"
        f"server = socket.create_server((\"\", {port}))\n"
        "while True:\n"
        "    conn = server.accept()[0]\n"
        "    boot = open(\"/proc/sys/kernel/random/boot_id\").read().strip()\n"
        "    up = open(\"/proc/uptime\").read().split()[0]\n"
        "    stat = open(\"/proc/stat\").readline().strip()\n"
        "    conn.sendall(f\"{boot} {up} {stat}\\n\".encode())\n"
        "    conn.close()\n"
    )
    return f"python3 -c '{code}'"


def split_stderr(stderr: str | None) -> tuple[dict[str, list[str]], list[float], str]:
    """(readings per end in order, the client's wall clocks, the rest of stderr) of a test run between
    readings; the client pod's own CPU is the end ``client_pod``."""
    readings: dict[str, list[str]] = {}
    clocks: list[float] = []
    rest = []
    for line in (stderr or "").splitlines():
        if line.startswith(MARKER):
            end, _, reading = line[len(MARKER):].partition(" ")
            if end in ("client", "server") and parse_reading(reading):
                readings.setdefault(end, []).append(reading)
                continue
            if end == "pod" and parse_pod(reading):
                readings.setdefault("client_pod", []).append(reading)
                continue
            if end == "clock" and re.fullmatch(r"\d+(\.\d+)?", reading.strip()):
                clocks.append(float(reading))
                continue
        rest.append(line)
    return readings, clocks, "\n".join(rest)


def parse_reading(text: str | None) -> dict[str, Any] | None:
    """One reading: ``{boot_id, uptime, ticks: {field: n}}``, or None when it is not one."""
    parts = (text or "").split()
    if len(parts) < 3 + len(FIELDS) or parts[2] != "cpu":
        return None
    try:
        return {"boot_id": parts[0], "uptime": float(parts[1]),
                "ticks": {field: int(value) for field, value in zip(FIELDS, parts[3:], strict=False)}}
    except ValueError:
        return None


def _end(pair: dict[str, str]) -> dict[str, Any] | None:
    before, after = parse_reading(pair.get("before")), parse_reading(pair.get("after"))
    if not before or not after or before["boot_id"] != after["boot_id"]:
        return None
    grown = {field: (after["ticks"][field] - before["ticks"][field]) / USER_HZ for field in FIELDS}
    seconds = {
        "user_s": grown["user"] + grown["nice"],
        "system_s": grown["system"],
        "softirq_s": grown["softirq"],
        # Every CPU-second not idle or waiting for I/O: user, nice, system, irq, softirq, steal.
        "busy_s": sum(grown[f] for f in FIELDS if f not in ("idle", "iowait")),
    }
    return {"boot_id": before["boot_id"], "window_s": round(after["uptime"] - before["uptime"], 2),
            **{key: round(value, 2) for key, value in seconds.items()}}


def usage(cpu: dict[str, Any] | None) -> dict[str, Any] | None:
    """CPU-seconds each end spent during a test, and their total over distinct kernels.

    ``shared_kernel``: both ends were read from one kernel (same boot id): the total counts it once;
    None when the server's end was not read (a test within one node, or a failed reading): the client's
    alone. None without a usable client reading.
    """
    if not cpu or "client" not in cpu:
        return None
    client = _end(cpu["client"])
    if client is None:
        return None
    server = _end(cpu["server"]) if "server" in cpu else None
    shared = None if server is None else server["boot_id"] == client["boot_id"]
    keys = ("user_s", "system_s", "softirq_s", "busy_s")
    total = {key: client[key] + server[key] for key in keys} if shared is False else dict(client)
    return {"shared_kernel": shared, "client": client, "server": server,
            "total": {key: round(total[key], 2) for key in keys}}


def parse_pod(text: str | None) -> tuple[str, int, int] | None:
    """A pod's own CPU reading: (its cgroup's inode, count, count per second), or None when it is not one."""
    parts = (text or "").split()
    if len(parts) != 3 or not all(part.isdigit() for part in parts) or int(parts[2]) == 0:
        return None
    return parts[0], int(parts[1]), int(parts[2])


# A node's CPU spent in tasks (proc(5)): user, nice, system, and steal (a VM's CPU its hypervisor gave other
# guests: charged to no pod, and a disturbance as much as another pod's). Its interrupt work (irq, softirq, and
# ksoftirqd, which the kernel accounts as softirq) is left out: on a benchmark node that is mostly the
# test's own packets. A kernel with CONFIG_IRQ_TIME_ACCOUNTING (Debian's, Ubuntu's) charges that work to no
# task; one without it (this machine's) charges what interrupted a task to the task's cgroup, and so to the
# pods: there the pods' CPU includes some of it and the figure is a lower bound (never below 0).
TASK_FIELDS = ("user", "nice", "system", "steal")


def _task_seconds(pair: dict[str, str]) -> tuple[str, float, float] | None:
    """(boot id, task CPU-seconds, window) of one end's two node readings."""
    before, after = parse_reading(pair.get("before")), parse_reading(pair.get("after"))
    if not before or not after or before["boot_id"] != after["boot_id"] or after["uptime"] <= before["uptime"]:
        return None
    grown = sum(after["ticks"][field] - before["ticks"][field] for field in TASK_FIELDS) / USER_HZ
    return before["boot_id"], grown, after["uptime"] - before["uptime"]


def _pod_seconds(pair: dict[str, str]) -> tuple[str, float] | None:
    before, after = parse_pod(pair.get("before")), parse_pod(pair.get("after"))
    if not before or not after or before[0] != after[0] or before[2] != after[2]:
        return None
    return before[0], (after[1] - before[1]) / before[2]


def beside_pods(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """Kubernetes: the CPU a test's nodes spent beside its two pods, as a percentage of one core: per kernel (a
    boot id), its task CPU over the window less the test's pods' own (each cgroup once), the largest of the
    test's nodes. Other pods, the kubelet, the CNI agent and the kernel's workers are in it; the kernel's
    interrupt work is not (TASK_FIELDS: a lower bound). None unless both ends' nodes and pods were read: a
    server pod not read would count as its node's other work, the client's node's on a same-node test."""
    kernels: dict[str, dict[str, Any]] = {}
    for end in ("client", "server"):
        node = _task_seconds((section or {}).get(end) or {})
        pod = _pod_seconds((section or {}).get(f"{end}_pod") or {})
        if node is None or pod is None:
            return None
        # One kernel read by both ends (a same-node test, or the local lab's nodes): the client's window.
        kernel = kernels.setdefault(node[0], {"end": end, "busy": node[1], "window": node[2], "pods": {}})
        kernel["pods"][pod[0]] = pod[1]
    nodes = {kernel["end"]: round(max(0.0, kernel["busy"] - sum(kernel["pods"].values())) / kernel["window"] * 100, 1)
             for kernel in kernels.values()}
    return {"percent": max(nodes.values()), "nodes": nodes}
