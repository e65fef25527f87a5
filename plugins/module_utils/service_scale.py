"""Service lookup at scale on the local lab: kube-proxy's iptables chain, its nftables verdict map, a BPF hash map.

A model of the three lookup structures, not kube-proxy or Cilium themselves. N Services
(ClusterIP, port 80) are translated to one backend either by iptables, as kube-proxy's
iptables mode writes them (a KUBE-SERVICES-like chain with one jump per Service, walked
in order, and one chain per Service holding the DNAT), by nftables as its nftables mode
writes them (one verdict map keyed by address . protocol . port, looked up once, and one
chain per Service holding the DNAT), or by the Cilium model's BPF hash
map behind its cgroup connect() hook (roles/lab_cni/files/bpf/sock_lb.c), as Cilium's
kube-proxy replacement: the socket gets the backend's address before any packet exists.
Latency is measured on new connections, the only ones either structure is looked up for.

Pure functions plus the socket and namespace helpers the lab_service_scale module runs on a node;
the socket LB maps' layout and bpf(2) are sock_lb's.
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

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb

SERVICE_PORT = 80
SERVICES_CHAIN = "NETLAB-SERVICES"
SERVICE_CHAIN = "NETLAB-SVC-{index}"
NFT_GUARD = "netlab-services-guard"
# The nftables model's own table (kube-proxy's is ip kube-proxy; the lab's benchmark Services may be in it).
NFT_SERVICES = "netlab-services"
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


def nftables_services(cidr: str, backend: str, port: int, new_services: range) -> str:
    """nft -f input adding Services ``new_services`` (indexes) to the nftables model, with its table first when
    the first of them is number 0.

    As kube-proxy's nftables mode syncs: a new Service is one chain (its DNAT) and one element of the service-ips
    verdict map, in one transaction, however many Services are there already; the packet's lookup is one map
    lookup (``services`` chain, from the NAT hooks of prerouting and output).
    """
    table = f"ip {NFT_SERVICES}"
    lines = []
    if new_services and new_services.start == 0:
        lines += [f"add table {table}",
                  f"add chain {table} nat-prerouting {{ type nat hook prerouting priority dstnat ; }}",
                  f"add chain {table} nat-output {{ type nat hook output priority -100 ; }}",
                  f"add chain {table} services",
                  f"add map {table} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
                  f"add rule {table} nat-prerouting jump services",
                  f"add rule {table} nat-output jump services",
                  f"add rule {table} services ip daddr . meta l4proto . th dport vmap @service-ips"]
    for i in new_services:
        chain = SERVICE_CHAIN.format(index=i)
        lines += [f"add chain {table} {chain}",
                  f"add rule {table} {chain} meta l4proto tcp dnat to {backend}:{port}",
                  f"add element {table} service-ips {{ {vip(cidr, i)} . tcp . {SERVICE_PORT} : goto {chain} }}"]
    return "\n".join([*lines, ""])


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


def nft_guard(cidr: str) -> str:
    """nft -f input refusing connections to Service addresses nothing translated.

    Both models need it: an address the iptables chain or the socket hook did not translate
    leaves the pod as a packet to the Service address. The lab's own ``unreachable`` route
    covers its Service CIDR only, not this scenario's, so without the guard the packet would
    follow the node's default route out of the lab; and even with such a route the answer
    would be ICMP, which the kernel rate-limits, so a client trying a new Service in a loop
    would stall (that made "answers after" a flat 500 ms). A TCP reset answers at once.
    """
    return "\n".join([
        f"table ip {NFT_GUARD} {{",
        "  chain forward { type filter hook forward priority filter;",
        f"    ip daddr {cidr} meta l4proto tcp reject with tcp reset; ip daddr {cidr} drop; }}",
        "}", ""])


class ServiceMaps:
    """The socket LB's Service and backend maps, each Service with one backend in slot 0."""

    def __init__(self, pins: str = sock_lb.BPF_PINS) -> None:
        if not self.present(pins):
            raise ScaleError(f"no {sock_lb.SERVICES_MAP} in {pins}: the node does not run the Cilium model's socket LB")
        self.services = sock_lb.BpfMap.pinned(pins, sock_lb.SERVICES_MAP)
        try:
            self.backends = sock_lb.BpfMap.pinned(pins, sock_lb.BACKENDS_MAP)
        except BaseException:
            self.services.close()
            raise

    @staticmethod
    def present(pins: str = sock_lb.BPF_PINS) -> bool:
        return os.path.exists(os.path.join(pins, sock_lb.SERVICES_MAP))

    def close(self) -> None:
        self.services.close()
        self.backends.close()

    def __enter__(self) -> ServiceMaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, cidr: str, index: int, backend: str, port: int) -> None:
        """Service number index: its backend slot first, so the hook never finds a Service without one."""
        sid = sock_lb.service_id(index)
        self.backends.update(sock_lb.backend_key(sid, 0), sock_lb.address_value(backend, port))
        self.services.update(sock_lb.service_key(vip(cidr, index), SERVICE_PORT), sock_lb.service_value(sid, 1))

    def remove_scenario(self) -> int:
        """Delete every entry with a scenario id, this run's or an interrupted one's; returns how many."""
        services = [k for k in self.services.all_keys()
                    if sock_lb.is_scenario_id(sock_lb.service_value_id(self.services.lookup(k)))]
        backends = [k for k in self.backends.all_keys() if sock_lb.is_scenario_id(sock_lb.backend_key_id(k))]
        # Services first: the hook must never find a Service whose backend is gone.
        for key in services:
            self.services.delete(key)
        for key in backends:
            self.backends.delete(key)
        return len(services) + len(backends)


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
