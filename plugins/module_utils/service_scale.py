"""Service lookup at scale on the local lab: kube-proxy's iptables chain against a BPF hash map.

A model of the two lookup structures, not kube-proxy or Cilium themselves. N Services
(ClusterIP, port 80) are translated to one backend either by iptables, as kube-proxy's
iptables mode writes them (a KUBE-SERVICES-like chain with one jump per Service, walked
in order, and one chain per Service holding the DNAT), or by the Cilium model's BPF hash
map behind its cgroup connect() hook (roles/lab_cni/files/bpf/sock_lb.c), as Cilium's
kube-proxy replacement: the socket gets the backend's address before any packet exists.
Latency is measured on new connections, the only ones either structure is looked up for.

Pure functions plus the socket, namespace and bpf(2) helpers the lab_service_scale module
runs on a node. Only the standard library: this file also travels to the nodes.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import ipaddress
import json
import os
import platform
import re
import socket
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

SERVICE_PORT = 80
SERVICES_CHAIN = "NETLAB-SERVICES"
SERVICE_CHAIN = "NETLAB-SVC-{index}"
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


# The Cilium model's socket LB maps, pinned by roles/lab_cni (files/bpf/sock_lb.c). This is the one
# encoder of their keys and values: this module writes the scenario's Services with it, and on the
# nodes roles/lab_cni's netlab-svcmap writes the benchmark's (netlab-datapath service-add) with it.
# Each struct of sock_lb.c, field by field in order, as struct formats: addresses and ports are bytes
# in network order ("4s", "2s"), the rest host order, no padding between fields ("=");
# tests/unit/test_sock_lb_layout.py reads the C and fails when the two disagree.
BPF_PINS = "/sys/fs/bpf"
SOCK_LB_STRUCTS: dict[str, tuple[tuple[str, str], ...]] = {
    "service_key": (("address", "4s"), ("port", "2s"), ("protocol", "B"), ("pad", "x")),
    "service": (("id", "I"), ("backends", "I")),
    "backend_key": (("id", "I"), ("slot", "I")),
    "address": (("address", "4s"), ("port", "2s"), ("pad", "2x")),
}
# Each map's key and value struct.
SOCK_LB_MAPS = {
    "netlab_services": ("service_key", "service"),
    "netlab_backends": ("backend_key", "address"),
    # The reverse entry for UDP replies: a backend's address to its Service's.
    "netlab_revnat": ("address", "address"),
}
SERVICES_MAP, BACKENDS_MAP, REVNAT_MAP = SOCK_LB_MAPS


def _layout(name: str) -> struct.Struct:
    return struct.Struct("=" + "".join(fmt for _, fmt in SOCK_LB_STRUCTS[name]))


_SERVICE_KEY, _SERVICE = _layout("service_key"), _layout("service")
_BACKEND_KEY, _ADDRESS = _layout("backend_key"), _layout("address")
# Each map's key and value size, which BpfMap checks against the pinned map before writing to it.
MAP_SIZES = {name: (_layout(key).size, _layout(value).size) for name, (key, value) in SOCK_LB_MAPS.items()}
PROTOCOLS = {"tcp": 6, "udp": 17}
IPPROTO_TCP = PROTOCOLS["tcp"]
# Ids of the benchmark's Services (netlab-datapath service-add) have the top bit set; the scenario's
# have it clear, so neither can overwrite or remove the other's backends (sock_lb.c: BENCHMARK_ID_BIT).
BENCHMARK_ID_BIT = 0x80000000

# bpf(2): its number per architecture, the commands used and union bpf_attr's member structs
# (linux/bpf.h): BPF_MAP_*_ELEM {u32 map_fd; pad; u64 key; u64 value or next_key; u64 flags},
# BPF_OBJ_GET {u64 pathname; u32 bpf_fd; u32 file_flags}, BPF_OBJ_GET_INFO_BY_FD {u32 bpf_fd;
# u32 info_len; u64 info}. Pointers are passed as 64-bit integers.
_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY = 1, 2, 3, 4
BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD = 7, 15
_ELEM_ATTR = struct.Struct("=I4xQQQ")
_OBJ_ATTR = struct.Struct("=QII")
_INFO_ATTR = struct.Struct("=IIQ")
# struct bpf_map_info up to map_flags: type, id, key_size, value_size, max_entries, map_flags.
_MAP_INFO = struct.Struct("=IIIIII")


def service_id(index: int) -> int:
    """Map id of Service number index: from 1, as Cilium's (0 is no Service), top bit clear."""
    sid = index + 1
    if not 0 < sid < BENCHMARK_ID_BIT:
        raise ScaleError(f"Service number {index} has no id outside the benchmark's")
    return sid


def benchmark_service_id(name: str, port: str | int, protocol: str) -> int:
    """Map id of a benchmark Service's port: the first 32 bits of sha256("NAME/PORT/PROTO"), top bit set.

    A stable id from what netlab-datapath service-add is given (the port as given), as the datapath
    script names kube-proxy's chains from the same digest.
    """
    digest = hashlib.sha256(f"{name}/{port}/{protocol}".encode()).hexdigest()
    return int(digest[:8], 16) | BENCHMARK_ID_BIT


def is_scenario_id(sid: int) -> bool:
    return not sid & BENCHMARK_ID_BIT


def protocol_number(protocol: str) -> int:
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol}") from None


def _network_order(address: str, port: int) -> tuple[bytes, bytes]:
    return ipaddress.IPv4Address(address).packed, port.to_bytes(2, "big")


def service_key(address: str, port: int, protocol: int = IPPROTO_TCP) -> bytes:
    """netlab_services key, struct service_key: address (be32), port (be16), protocol, pad."""
    return _SERVICE_KEY.pack(*_network_order(address, port), protocol)


def service_value(sid: int, backends: int) -> bytes:
    """netlab_services value, struct service: id, number of backend slots (host order)."""
    return _SERVICE.pack(sid, backends)


def service_value_id(value: bytes) -> int:
    return _SERVICE.unpack(value)[0]


def backend_key(sid: int, slot: int) -> bytes:
    """netlab_backends key, struct backend_key: Service id, slot (host order)."""
    return _BACKEND_KEY.pack(sid, slot)


def backend_key_id(key: bytes) -> int:
    return _BACKEND_KEY.unpack(key)[0]


def address_value(address: str, port: int) -> bytes:
    """struct address: address (be32), port (be16), pad. netlab_backends' value, netlab_revnat's key and value."""
    return _ADDRESS.pack(*_network_order(address, port))


def elem_attr(map_fd: int, key: int, value: int = 0, flags: int = 0) -> bytes:
    """union bpf_attr for BPF_MAP_*_ELEM and BPF_MAP_GET_NEXT_KEY (value is then next_key)."""
    return _ELEM_ATTR.pack(map_fd, key, value, flags)


def obj_get_attr(pathname: int) -> bytes:
    """union bpf_attr for BPF_OBJ_GET: the pinned path (a NUL-terminated string's address)."""
    return _OBJ_ATTR.pack(pathname, 0, 0)


def info_attr(fd: int, info: int, info_len: int) -> bytes:
    """union bpf_attr for BPF_OBJ_GET_INFO_BY_FD."""
    return _INFO_ATTR.pack(fd, info_len, info)


def map_sizes(info: bytes) -> tuple[int, int]:
    """Key and value size from the start of a struct bpf_map_info."""
    _, _, key_size, value_size, _, _ = _MAP_INFO.unpack_from(info)
    return key_size, value_size


@functools.lru_cache(maxsize=1)
def _syscall() -> Any:
    """libc's syscall(), looked up once: a Service added is timed, and dlopen() is no part of it."""
    function = ctypes.CDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    return function


def bpf(cmd: int, attr: bytes) -> int:
    """The bpf(2) system call; raises OSError with its errno."""
    try:
        number = _BPF_SYSCALL[platform.machine()]
    except KeyError:
        raise OSError(f"no bpf(2) number known for {platform.machine()}") from None
    buf = ctypes.create_string_buffer(attr, len(attr))
    result = _syscall()(ctypes.c_long(number), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return result


class BpfMap:
    """A pinned BPF map, read and written with bpf(2) from this process, as Cilium's agent does."""

    def __init__(self, path: str, key_size: int, value_size: int) -> None:
        name = ctypes.create_string_buffer(os.fsencode(path))
        self.fd = bpf(BPF_OBJ_GET, obj_get_attr(ctypes.addressof(name)))
        self.key_size, self.value_size = key_size, value_size
        info = ctypes.create_string_buffer(_MAP_INFO.size)
        bpf(BPF_OBJ_GET_INFO_BY_FD, info_attr(self.fd, ctypes.addressof(info), _MAP_INFO.size))
        # A map of another layout would be written with garbage the hook then reads.
        if map_sizes(info.raw) != (key_size, value_size):
            self.close()
            raise ScaleError(f"{path} has {map_sizes(info.raw)} byte keys and values, "
                             f"not the ({key_size}, {value_size}) of the Cilium model's map")

    @classmethod
    def pinned(cls, pins: str, name: str) -> BpfMap:
        """One of the socket LB's maps (SOCK_LB_MAPS), pinned in pins, checked for its layout's sizes."""
        return cls(os.path.join(pins, name), *MAP_SIZES[name])

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _elem(self, cmd: int, key: bytes, value: ctypes.Array | None = None, flags: int = 0) -> None:
        key_buf = ctypes.create_string_buffer(key, self.key_size)
        value_address = 0 if value is None else ctypes.addressof(value)
        bpf(cmd, elem_attr(self.fd, ctypes.addressof(key_buf), value_address, flags))

    def update(self, key: bytes, value: bytes) -> None:
        self._elem(BPF_MAP_UPDATE_ELEM, key, ctypes.create_string_buffer(value, self.value_size))

    def lookup(self, key: bytes) -> bytes:
        value = ctypes.create_string_buffer(self.value_size)
        self._elem(BPF_MAP_LOOKUP_ELEM, key, value)
        return value.raw

    def delete(self, key: bytes) -> None:
        self._elem(BPF_MAP_DELETE_ELEM, key)

    def all_keys(self) -> list[bytes]:
        """Every key, collected before anything is deleted (deleting while walking a hash restarts the walk)."""
        keys: list[bytes] = []
        next_key = ctypes.create_string_buffer(self.key_size)
        while True:
            key = ctypes.create_string_buffer(keys[-1], self.key_size) if keys else None
            try:
                bpf(BPF_MAP_GET_NEXT_KEY, elem_attr(self.fd, ctypes.addressof(key) if key else 0,
                                                    ctypes.addressof(next_key)))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return keys
                raise
            keys.append(next_key.raw)


class ServiceMaps:
    """The socket LB's Service and backend maps, each Service with one backend in slot 0."""

    def __init__(self, pins: str = BPF_PINS) -> None:
        if not self.present(pins):
            raise ScaleError(f"no {SERVICES_MAP} in {pins}: the node does not run the Cilium model's socket LB")
        self.services = BpfMap.pinned(pins, SERVICES_MAP)
        try:
            self.backends = BpfMap.pinned(pins, BACKENDS_MAP)
        except BaseException:
            self.services.close()
            raise

    @staticmethod
    def present(pins: str = BPF_PINS) -> bool:
        return os.path.exists(os.path.join(pins, SERVICES_MAP))

    def close(self) -> None:
        self.services.close()
        self.backends.close()

    def __enter__(self) -> ServiceMaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, cidr: str, index: int, backend: str, port: int) -> None:
        """Service number index: its backend slot first, so the hook never finds a Service without one."""
        sid = service_id(index)
        self.backends.update(backend_key(sid, 0), address_value(backend, port))
        self.services.update(service_key(vip(cidr, index), SERVICE_PORT), service_value(sid, 1))

    def remove_scenario(self) -> int:
        """Delete every entry with a scenario id, this run's or an interrupted one's; returns how many."""
        services = [k for k in self.services.all_keys() if is_scenario_id(service_value_id(self.services.lookup(k)))]
        backends = [k for k in self.backends.all_keys() if is_scenario_id(backend_key_id(k))]
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
