"""TCP congestion control: what each benchmark node's kernel offers, and whether the run's pinned one can be used.

The client pins the congestion control of every TCP test (iperf3 ``-C``, netperf ``-K``: commands.py), so
two machines whose kernels default to different ones (this lab's host: BBR; stock RKE2 nodes: CUBIC) measure
the same thing. Each node's three sysctls are read where the tests' sockets live (a pod's network namespace:
``tcp_congestion_control`` is per namespace since Linux 4.15, the other two are the kernel's) and kept in
run.json. A kernel without the pinned one refuses the run before anything changes; so does one that has it
but does not allow it to an unprivileged socket, when the tests run as one (the Kubernetes transport's pods,
kube_objects.UID). Pure functions; no Ansible imports.
"""

from __future__ import annotations

from typing import Any

# What bench_congestion accepts: the kernel's built-in ones stock distributions ship (Debian, Ubuntu, SLES).
CHOICES = ("cubic", "bbr", "reno")
DEFAULT = "cubic"
SYSCTLS = ("tcp_congestion_control", "tcp_allowed_congestion_control", "tcp_available_congestion_control")
KEYS = ("default", "allowed", "available")


class CongestionError(ValueError):
    """A reading of the sysctls that is not theirs."""


def read_argv() -> list[str]:
    """The command that prints the three sysctls, one line each, in SYSCTLS order."""
    return ["cat", *(f"/proc/sys/net/ipv4/{name}" for name in SYSCTLS)]


def parse(text: str, read_in: str | None = None) -> dict[str, Any]:
    """read_argv's output as ``{default, allowed: [...], available: [...], read_in}`` (``read_in``: the network
    namespace or pod it was read in, where the default holds)."""
    lines = [line.strip() for line in (text or "").strip().splitlines()]
    if len(lines) != len(SYSCTLS) or not lines[0] or " " in lines[0] or not lines[2]:
        raise CongestionError(f"not the three congestion control sysctls ({', '.join(SYSCTLS)}): {text!r}")
    return {"default": lines[0], "allowed": lines[1].split(), "available": lines[2].split(), "read_in": read_in}


def environment(readings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per node, its parsed reading: ``readings`` are ``{node, stdout, read_in}``."""
    found = {}
    for one in readings:
        try:
            found[str(one["node"])] = parse(one.get("stdout") or "", one.get("read_in"))
        except CongestionError as exc:
            raise CongestionError(f"node {one['node']}: {exc}") from exc
    return found


def problems(pinned: str, nodes: dict[str, dict[str, Any]], user: int | None = None) -> list[str]:
    """Why the pinned congestion control cannot be used on each node that cannot use it, in words.

    ``user``: the unprivileged user the tests' sockets belong to (None: root, which may set any available
    one; others only those in tcp_allowed_congestion_control, or the socket option fails with EPERM).
    """
    found = []
    for node, reading in nodes.items():
        available, allowed = reading.get("available") or [], reading.get("allowed") or []
        if pinned not in available:
            found.append(f"bench_congestion {pinned} is not available on node {node}: its kernel has "
                         f"{' '.join(available) or 'none'} (tcp_available_congestion_control); pin one of those")
        elif user is not None and pinned not in allowed:
            found.append(f"bench_congestion {pinned} is available on node {node} but not allowed for the pods' "
                         f"user {user}: an unprivileged socket may only pick one of tcp_allowed_congestion_control "
                         f"({' '.join(allowed) or 'none'}); pin one of those, or add {pinned} to "
                         f"net.ipv4.tcp_allowed_congestion_control on the node")
    return found


def describe(nodes: dict[str, dict[str, Any]] | None) -> str | None:
    """The nodes' default congestion control in one phrase (``bbr``, or ``bbr (a), cubic (b)``); None unread."""
    defaults = {node: (reading or {}).get("default") for node, reading in (nodes or {}).items()}
    distinct = sorted({value for value in defaults.values() if value})
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    return ", ".join(f"{value} ({node})" for node, value in defaults.items() if value)


def used(values: list[str | None]) -> str | None:
    """What sockets used, from their reports (each end of each repeat, or tests' own ``used``): one name, or
    several joined by "/"; None when none reported (UDP, or a run from before the pin)."""
    distinct = sorted({name for value in values if value for name in str(value).split("/")})
    return "/".join(distinct) if distinct else None
