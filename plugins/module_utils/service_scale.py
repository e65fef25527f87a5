"""Service lookup at scale on the local lab: kube-proxy's iptables chain against a hash map.

A model of the two lookup structures, not kube-proxy or Cilium themselves. N Services
(ClusterIP, port 80) are translated to one backend either by iptables, as kube-proxy's
iptables mode writes them (a KUBE-SERVICES-like chain with one jump per Service, walked
in order, and one chain per Service holding the DNAT), or by one nftables map lookup
(a hash, as Cilium's eBPF service map). Latency is measured on new connections, the
only packets that walk the NAT rules; conntrack handles the rest of a connection.

Pure functions plus the socket and namespace helpers the lab_service_scale module runs
on a node. Only the standard library: this file also travels to the nodes.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import re
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

SERVICE_PORT = 80
SERVICES_CHAIN = "NETLAB-SERVICES"
SERVICE_CHAIN = "NETLAB-SVC-{index}"
NFT_TABLE = "netlab-services"
NFT_GUARD = "netlab-services-guard"
HOOKS = ("PREROUTING", "OUTPUT")
_OUR_CHAIN = re.compile(r"^:(NETLAB-SERVICES|NETLAB-SVC-\d+) ", re.MULTILINE)
_CLONE_NEWNET = 0x40000000


class ScaleError(ValueError):
    """The requested scenario cannot run on this lab."""


def vip(cidr: str, index: int) -> str:
    """Address of Service number index; the first 256 addresses stay free, as the API server's own."""
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + 256 + index)


def capacity(cidr: str) -> int:
    """How many Services the CIDR holds, keeping one address for the Service added while measuring."""
    return max(ipaddress.ip_network(cidr).num_addresses - 256 - 2, 0)


def check_counts(counts: list[Any], cidr: str, limit: int) -> list[int]:
    """The Service counts to measure, in order, or ScaleError saying what is wrong."""
    if not counts:
        raise ScaleError("service_scale_counts is empty: give the numbers of Services to measure, e.g. [0, 1000]")
    bad = [c for c in counts if isinstance(c, bool) or not isinstance(c, int) or c < 0]
    if bad:
        raise ScaleError(f"service_scale_counts must be non-negative integers, got {bad}")
    ceiling = min(limit, capacity(cidr))
    too_big = [c for c in counts if c > ceiling]
    if too_big:
        why = (f"service_scale_max_services is {limit}" if limit <= capacity(cidr)
               else f"{cidr} holds {capacity(cidr)} Services")
        raise ScaleError(f"service_scale_counts {too_big} exceed what this lab can hold ({why}); "
                         "lower the counts, or raise service_scale_max_services if the nodes have the memory")
    return sorted(set(counts))


def iptables_services(count: int, cidr: str, backend: str, port: int, new_chains: range) -> str:
    """iptables-restore --noflush input that rewrites the Services chain with count Services.

    As kube-proxy's sync: the whole Services chain is written every time (the ``:chain``
    line flushes it), the per-Service chains only when they are new.
    """
    lines = ["*nat", f":{SERVICES_CHAIN} - [0:0]"]
    lines += [f":{SERVICE_CHAIN.format(index=i)} - [0:0]" for i in new_chains]
    lines += [f"-A {SERVICES_CHAIN} -d {vip(cidr, i)}/32 -p tcp -m tcp --dport {SERVICE_PORT} "
              f"-j {SERVICE_CHAIN.format(index=i)}" for i in range(count)]
    lines += [f"-A {SERVICE_CHAIN.format(index=i)} -p tcp -j DNAT --to-destination {backend}:{port}"
              for i in new_chains]
    return "\n".join([*lines, "COMMIT", ""])


def iptables_cleanup(saved: str) -> str | None:
    """iptables-restore --noflush input removing our chains and hooks from ``iptables-save -t nat``, or None."""
    chains = _OUR_CHAIN.findall(saved)
    if not chains:
        return None
    lines = ["*nat"]
    lines += [f"-D {hook} -j {SERVICES_CHAIN}" for hook in HOOKS if f"-A {hook} -j {SERVICES_CHAIN}" in saved]
    lines += [f":{chain} - [0:0]" for chain in chains]
    lines += [f"-X {chain}" for chain in chains]
    return "\n".join([*lines, "COMMIT", ""])


def _nft_element(cidr: str, index: int, backend: str, port: int) -> str:
    return f"{vip(cidr, index)} . {SERVICE_PORT} : {backend} . {port}"


def nft_services(count: int, cidr: str, backend: str, port: int) -> str:
    """nft -f input: one map from (address, port) to backend, looked up in the nat hooks."""
    elements = ", ".join(_nft_element(cidr, i, backend, port) for i in range(count))
    return "\n".join([
        f"table ip {NFT_TABLE} {{",
        "  map services {",
        "    type ipv4_addr . inet_service : ipv4_addr . inet_service",
        *([f"    elements = {{ {elements} }}"] if count else []),
        "  }",
        "  chain prerouting { type nat hook prerouting priority -100; "
        "dnat ip to ip daddr . tcp dport map @services; }",
        "  chain output { type nat hook output priority -100; dnat ip to ip daddr . tcp dport map @services; }",
        "}", ""])


def nft_guard(cidr: str) -> str:
    """nft -f input refusing connections to Service addresses nothing translated.

    A TCP reset answers at once; an unreachable route would answer with ICMP, which the
    kernel rate-limits, so a client trying a new Service in a loop would stall.
    """
    return "\n".join([
        f"table ip {NFT_GUARD} {{",
        "  chain forward { type filter hook forward priority filter;",
        f"    ip daddr {cidr} meta l4proto tcp reject with tcp reset; ip daddr {cidr} drop; }}",
        "}", ""])


def nft_add(cidr: str, index: int, backend: str, port: int) -> str:
    """nft -f input adding Service number index: one map element, nothing else is rewritten."""
    return f"add element ip {NFT_TABLE} services {{ {_nft_element(cidr, index, backend, port)} }}\n"


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50/p90/p99, mean, min and max of latency samples (microseconds)."""
    if not samples:
        return dict.fromkeys(("p50", "p90", "p99", "mean", "min", "max"))
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else [samples[0]] * 99
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "mean": statistics.fmean(samples),
            "min": min(samples), "max": max(samples)}


def connect_latencies(host: str, port: int, count: int, timeout: float = 2.0) -> list[float]:
    """Microseconds per new connection: connect, 1-byte request, 1-byte answer, close (TCP_CRR)."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"x")
            if not sock.recv(1):
                raise ConnectionError(f"{host}:{port} closed without answering")
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def first_answer(host: str, port: int, deadline: float) -> float:
    """Tries host:port until it answers; returns the time.time() it first did, or raises TimeoutError."""
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"x")
                if sock.recv(1):
                    return time.time()
        except OSError:
            time.sleep(0.0005)
    raise TimeoutError(f"{host}:{port} did not answer")


class NetnsTask:
    """func(*args) in a child process inside a network namespace.

    The child writes one line once it is inside the namespace, so the caller can wait
    for that (ready()) before it changes anything the child is meant to observe.
    """

    def __init__(self, netns: str | None, func: Callable[..., Any], *args: Any) -> None:
        read_fd, write_fd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_fd)
            self._child(os.fdopen(write_fd, "w"), netns, func, args)
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "r")
        self._ready = False

    @staticmethod
    def _child(out: Any, netns: str | None, func: Callable[..., Any], args: tuple) -> None:
        try:
            if netns:
                with open(f"/run/netns/{netns}") as ns:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(ns.fileno(), _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {netns}")
            out.write("ready\n")
            out.flush()
            out.write(json.dumps({"result": func(*args)}) + "\n")
        except BaseException as exc:
            out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        finally:
            out.flush()
            os._exit(0)

    def ready(self) -> None:
        """Return once the child is inside the namespace (or has failed to get there)."""
        if not self._ready:
            line = self._reader.readline()
            self._ready = True
            if line != "ready\n":
                self._finish(line)

    def result(self) -> Any:
        """The child's return value; its exception is raised here as RuntimeError."""
        self.ready()
        return self._finish(self._reader.readline())

    def _finish(self, line: str) -> Any:
        self._reader.close()
        os.waitpid(self.pid, 0)
        answer = json.loads(line) if line else {"error": "the measuring process died"}
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]
