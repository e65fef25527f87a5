"""What runs a twin's pods: the Runtime contract (processes, addresses, datapath) and CannedRuntime, which
runs nothing and answers execs from tests/data, so the real modules can be driven without podman.

The twin (pods.py, exec.py) owns the Kubernetes side: phases, conditions, the exec status on channel 3,
faults. A runtime owns only processes, addresses and the datapath (the contract is in the project's notes,
k8s-twin-interface.md; lab.py's LabRuntime realises it on the local lab).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import re
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from netlab_twin.kube import cluster

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


class PodStartError(Exception):
    """The runtime cannot start the pod's container: a kubelet waiting reason or a Failed phase.

    phase "Pending": the container waits with ``reason`` (ErrImagePull, CreateContainerConfigError, ...);
    phase "Failed": the kubelet rejected the pod (reason e.g. "NodePorts", "OutOfcpu")."""

    def __init__(self, reason: str, message: str, phase: str = "Pending") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.phase = reason, message, phase


class ExecError(Exception):
    """exec could not run the command (not a non-zero exit): upstream's InternalError on channel 3."""


class ExecProcess(Protocol):
    async def read(self) -> tuple[int, bytes] | None:
        """Next chunk as (channel, data), channel 1 = stdout, 2 = stderr; None at EOF of both."""

    async def wait(self) -> int:
        """The exit code; ExecError if the runtime could not run the command."""

    async def kill(self) -> None:
        """The client went away or the twin stops: kill the in-node process tree."""


class Runtime(Protocol):
    def cluster_objects(self) -> list[dict[str, Any]]:
        """Objects that exist before any client call (Nodes, the CNI's DaemonSet and agent pods, Namespaces)."""

    async def start(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Start the pod's container; returns {"podIP", "hostIP", "imageID"}. Raises PodStartError."""

    async def running(self, pod: dict[str, Any]) -> int | None:
        """None while the container's main process lives, else its exit code."""

    async def exec(self, pod: dict[str, Any], container: str, argv: list[str]) -> ExecProcess:
        """Start argv in the pod's container. Raises ExecError."""

    async def stop(self, pod: dict[str, Any]) -> None:
        """Stop the pod's processes and free what it took. Idempotent."""

    async def service_sync(self, service: dict[str, Any], backends: list[str]) -> None:
        """Make the Service's clusterIP reach backends (pod IPs) on every port. Idempotent."""

    async def service_delete(self, service: dict[str, Any]) -> None:
        """Remove what service_sync made."""

    def service_cidr(self) -> str:
        """Where clusterIPs come from (the twin takes host 10, 11, ... of it)."""

    async def close(self) -> None:
        """Stop everything this runtime started."""


# --- canned answers --------------------------------------------------------------------------------------

Answer = tuple[str, str, int] | tuple[str, str, int, float]
Answerer = Callable[[list[str]], Answer | None]


def _data(name: str) -> str:
    return (DATA / name).read_text()


def iperf3_client(argv: list[str]) -> Answer:
    """iperf3's JSON document for a client run, the sample closest to its options (tests/data, SOURCES.md);
    with a congestion control asked for (--congestion), both ends report it, as iperf3 does."""
    sample = ("iperf3-udp.json" if "--udp" in argv else "iperf3-tcp-reverse.json" if "--reverse" in argv
              else "iperf3-tcp-p4.json" if "--parallel" in argv else "iperf3-tcp-1.json")
    text = _data(sample)
    if "--congestion" in argv[:-1] and "--udp" not in argv:
        doc = json.loads(text)
        pinned = argv[argv.index("--congestion") + 1]
        doc["end"].update({"sender_tcp_congestion": pinned, "receiver_tcp_congestion": pinned})
        text = json.dumps(doc)
    return text, "", 0


def netperf_client(argv: list[str]) -> Answer:
    """netperf's KEY=value lines of the test named by -t (TCP_RR, TCP_CRR, UDP_RR)."""
    test = argv[argv.index("-t") + 1] if "-t" in argv[:-1] else "TCP_RR"
    return _data(f"netperf-{test.lower()}.txt"), "", 0


class CpuClock:
    """/proc/stat-like readings in the shape cpu.py parses (boot id, uptime, the ``cpu`` line), growing with
    the wall clock: 2 CPUs, a third of them busy, so two readings give a window and plausible busy seconds."""

    def __init__(self, boot_id: str = "6f1d0c5e-2b7a-4c1e-9d3f-0123456789ab") -> None:
        self.boot_id, self.start = boot_id, time.monotonic()
        self.samplers: dict[str, tuple[float, float]] = {}  # sampler file -> (wall, monotonic) at its start

    # Each pod's own CPU (cpu.POD: its cgroup's inode, microseconds, per second), growing with the wall clock:
    # the client's and the server's at 0.27 of a CPU each: 0.06 of the 0.6 busy is the nodes' other work.
    POD_SHARE = 0.27
    POD_CGROUPS: ClassVar[dict[str, str]] = {"client": "4101", "server": "4102"}

    def reading(self, at: float | None = None) -> str:
        uptime = 5000 + (time.monotonic() if at is None else at) - self.start
        ticks = uptime * 100 * 2
        user, system, softirq = int(ticks * 0.2), int(ticks * 0.1), int(ticks * 0.03)
        idle = int(ticks) - user - system - softirq
        return f"{self.boot_id} {uptime:.2f} cpu  {user} 0 {system} {idle} 0 0 {softirq} 0 0 0"

    def pod_usage(self, at: float | None = None) -> int:
        """A pod's cgroup usage_usec at a moment (the same for both: they are read around one window)."""
        return int(((time.monotonic() if at is None else at) - self.start) * self.POD_SHARE * 1e6)

    def pod_reading(self, end: str, at: float | None = None) -> str:
        return f"{self.POD_CGROUPS[end]} {self.pod_usage(at)} 1000000"

    def script(self, script: str) -> Answer | None:
        """The answers of cpu.py's shell scripts: one reading (``/proc/stat`` read once), or the server's
        sampler: ``sampler`` starts it (prints ``sampling``), ``sampled`` prints its file: a line
        ``clock <wall> <uptime>`` and the pod's cgroup (``podcg``), then a reading and the pod's own CPU (``pod``)
        every SAMPLE_PERIOD (0.1 s) since it started, and one as it stops."""
        found = re.search(r"f=(/tmp/netlab-cpu-[^;\s]+);", script)
        if found and "echo sampling" in script:
            self.samplers[found.group(1)] = (time.time(), time.monotonic())
            return "sampling\n", "", 0
        if found and 'touch "$f.stop"' in script:
            wall, mono = self.samplers.pop(found.group(1), (0.0, 0.0))
            if not wall:
                return "", f"cat: {found.group(1)}: No such file or directory\n", 1
            steps = int((time.monotonic() - mono) / 0.1) + 1
            lines = [f"clock {wall:.9f} {5000 + mono - self.start:.2f}",
                     f"podcg {self.POD_CGROUPS['server']} 1000000"]
            for at in [mono + i * 0.1 for i in range(steps)] + [time.monotonic()]:
                lines += [self.reading(at), f"pod {self.pod_usage(at)}"]
            return "\n".join(lines) + "\n", "", 0
        if "/proc/stat" in script and "while" not in script:
            return f"{self.reading()}\n", "", 0
        return None


class CannedRuntime:
    """A runtime without processes: pods "start" at once, execs answer from a table of argv prefixes.

    ``answers`` ({argv prefix (tuple or command string): (stdout, stderr, rc[, seconds before EOF])}, or a
    callable of argv) come before the defaults; the longest matching prefix wins. Wrappers are unwrapped as
    the role sends them: ``timeout N ...``, kube_calls.in_pod's ``sh -c '... "$@"' sh ...`` (a program nothing
    answers is then the shell's exit 127) and cpu.around's ``sh -c <script> netlab-cpu ...`` (its clocks and
    readings on stderr); cpu.py's scripts (a reading, the server's sampler) are answered from a CpuClock. An
    argv nothing matches, run directly, fails as containerd does for a missing binary (ExecError:
    upstream's InternalError)."""

    def __init__(self, nodes: tuple[str, ...] = ("netlab-agent-1", "netlab-agent-2"), cni: str = "cilium",
                 answers: Mapping[Any, Answer | Answerer] | None = None, mtu: int = 1500) -> None:
        self.nodes, self.cni, self.clock = tuple(nodes), cni, CpuClock()
        self.answers: list[tuple[tuple[str, ...], Answer | Answerer]] = []
        table: dict[Any, Answer | Answerer] = {
            "iperf3 --version": (_data("iperf3-version-3.18.txt"), "", 0),
            "netperf -V": (_data("netperf-version-2.7.0.txt"), "", 0),
            "cat /proc/cpuinfo": (_data("proc-cpuinfo-2cpu.txt"), "", 0),
            # A stock Debian node's congestion control sysctls (CUBIC built in, BBR a module not loaded).
            "cat /proc/sys/net/ipv4/tcp_congestion_control /proc/sys/net/ipv4/tcp_allowed_congestion_control "
            "/proc/sys/net/ipv4/tcp_available_congestion_control": ("cubic\nreno cubic\nreno cubic\n", "", 0),
            "cat /sys/class/net/eth0/mtu": (f"{mtu}\n", "", 0),
            "cilium-dbg status -o json": (_data("cilium-status-1.18-native.json"), "", 0),
            "iperf3 --client": iperf3_client,
            "netperf": netperf_client,
            "true": ("", "", 0),
            "false": ("", "", 1),
            **(answers or {}),
        }
        for key, value in table.items():
            self.answers.append((tuple(shlex.split(key)) if isinstance(key, str) else tuple(key), value))
        self.answers.sort(key=lambda entry: -len(entry[0]))
        self.started: dict[str, dict[str, Any]] = {}
        self.execs: list[list[str]] = []
        self.killed: list[list[str]] = []
        self.stopped: list[str] = []
        self.services: dict[str, list[str]] = {}
        self.syncs: list[tuple[str, list[str]]] = []  # every service_sync, in order
        self._slots: dict[str, int] = {}

    # The cluster ---------------------------------------------------------------------------------------
    def node_ip(self, node: str) -> str:
        return f"198.18.0.{11 + self.nodes.index(node)}" if node in self.nodes else "198.18.0.254"

    def cluster_objects(self) -> list[dict[str, Any]]:
        return cluster.objects(self.nodes, self.cni, self.node_ip)

    def service_cidr(self) -> str:
        return "10.43.0.0/16"  # RKE2's default service-cidr

    # Pods ---------------------------------------------------------------------------------------------
    async def start(self, pod: dict[str, Any]) -> dict[str, Any]:
        node = pod["spec"].get("nodeName", "")
        host = self.node_ip(node)
        if pod["spec"].get("hostNetwork"):
            ip = host
        else:
            index = self.nodes.index(node) if node in self.nodes else 99
            slot = self._slots[node] = self._slots.get(node, 9) + 1
            ip = str(ipaddress.ip_network(f"10.42.{index}.0/24")[slot])
        image = pod["spec"]["containers"][0].get("image", "")
        image_id = image if "@sha256:" in image else f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
        self.started[_name(pod)] = pod
        return {"podIP": ip, "hostIP": host, "imageID": image_id}

    async def running(self, pod: dict[str, Any]) -> int | None:
        return None

    async def stop(self, pod: dict[str, Any]) -> None:
        if self.started.pop(_name(pod), None) is not None:
            self.stopped.append(_name(pod))

    async def service_sync(self, service: dict[str, Any], backends: list[str]) -> None:
        self.services[_name(service)] = list(backends)
        self.syncs.append((_name(service), list(backends)))

    async def service_delete(self, service: dict[str, Any]) -> None:
        self.services.pop(_name(service), None)

    async def close(self) -> None:
        self.started.clear()
        self.services.clear()

    # Exec ---------------------------------------------------------------------------------------------
    def answer(self, argv: list[str]) -> Answer:
        """The canned (stdout, stderr, rc[, seconds]) of argv; ExecError when nothing matches."""
        for prefix, value in self.answers:
            if tuple(argv[:len(prefix)]) == prefix:
                found = value(argv) if callable(value) else value
                if found is not None:
                    return found
        if argv[:1] == ["timeout"] and len(argv) > 2:
            return self.answer(argv[2:])
        if argv[:2] == ["sh", "-c"] and len(argv) > 3 and argv[3] == "netlab-cpu":
            # cpu.around: the wall clock and a reading before and after the command, on stderr.
            inner = self.answer(argv[4:])
            before = (f"netlab-cpu clock {time.time():.9f}\nnetlab-cpu client {self.clock.reading()}\n"
                      f"netlab-cpu pod {self.clock.pod_reading('client')}\n")
            after = (f"netlab-cpu client {self.clock.reading()}\nnetlab-cpu pod {self.clock.pod_reading('client')}\n"
                     f"netlab-cpu clock {time.time():.9f}\n")
            return (inner[0], before + inner[1] + after, *inner[2:])
        if argv[:2] == ["sh", "-c"] and len(argv) > 3 and '"$@"' in argv[2]:
            # A shell that runs its arguments (kube_calls.in_pod): a missing program is the shell's 127.
            try:
                return self.answer(argv[4:])
            except ExecError:
                return "", f"sh: 1: exec: {argv[4] if len(argv) > 4 else ''}: not found\n", 127
        if argv[:2] == ["sh", "-c"] and len(argv) == 3 and (found := self.clock.script(argv[2])):
            return found
        binary = argv[0] if argv else ""
        raise ExecError(f'OCI runtime exec failed: exec failed: unable to start container process: exec: '
                        f'"{binary}": executable file not found in $PATH: unknown')

    async def exec(self, pod: dict[str, Any], container: str, argv: list[str]) -> ExecProcess:
        self.execs.append(list(argv))
        return CannedProcess(self, argv, *self.answer(argv))


class CannedProcess:
    """A canned answer as a process: stdout then stderr in chunks, EOF after ``seconds``, then rc."""

    CHUNK = 16 * 1024

    def __init__(self, runtime: CannedRuntime, argv: list[str], stdout: str, stderr: str, rc: int,
                 seconds: float = 0) -> None:
        self.runtime, self.argv, self.rc, self.seconds = runtime, argv, rc, seconds
        out, err = stdout.encode(), stderr.encode()
        self.chunks = [(1, out[i:i + self.CHUNK]) for i in range(0, len(out), self.CHUNK)]
        self.chunks += [(2, err[i:i + self.CHUNK]) for i in range(0, len(err), self.CHUNK)]
        self.killed = asyncio.Event()

    async def read(self) -> tuple[int, bytes] | None:
        if self.killed.is_set():
            return None
        if self.chunks:
            await asyncio.sleep(0)
            return self.chunks.pop(0)
        if self.seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.killed.wait(), self.seconds)
            self.seconds = 0
        return None

    async def wait(self) -> int:
        return 137 if self.killed.is_set() else self.rc

    async def kill(self) -> None:
        if not self.killed.is_set():
            self.killed.set()
            self.runtime.killed.append(list(self.argv))


def _name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"
