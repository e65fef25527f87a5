"""The Cilium model's socket LB maps: their layout, the one encoder of their keys and values, bpf(2).

roles/lab_cni pins the maps (files/bpf/sock_lb.c: cilium_lb4_services_v2, cilium_lb4_backends_v3 and
cilium_lb4_reverse_nat as the model has them). Two writers share this module: the Service scale
scenario (service_scale.ServiceMaps, in the lab_service_scale module) and, on the nodes, roles/lab_cni's
netlab-svcmap (netlab-datapath service-add, the benchmark's Services). A unit test reads sock_lb.c's
structs against SOCK_LB_STRUCTS (tests/unit/test_sock_lb_layout.py).

Only the standard library: this file also travels to the nodes, installed as netlab_sock_lb.py.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import ipaddress
import os
import platform
import struct
from typing import Any


class MapError(ValueError):
    """A map or an id that does not fit the layout."""


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
        raise MapError(f"Service number {index} has no id outside the benchmark's")
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
            raise MapError(f"{path} has {map_sizes(info.raw)} byte keys and values, "
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
