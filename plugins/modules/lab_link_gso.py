"""Set the IPv4 GSO and GRO maximum sizes of host interfaces over rtnetlink (what BIG TCP raises)."""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: lab_link_gso
short_description: Set the IPv4 GSO and GRO maximum sizes of the controller's interfaces (BIG TCP)
version_added: "0.8.0"
description:
  - Sets C(gso_ipv4_max_size) and C(gro_ipv4_max_size) (Linux 6.3+, IFLA_GSO_IPV4_MAX_SIZE and
    IFLA_GRO_IPV4_MAX_SIZE) of interfaces of the network namespace it runs in, by their index, over rtnetlink
    itself, as C(ip link set ... gso_ipv4_max_size) does with an iproute2 of 6.3 or newer (older ones, such
    as Debian 12's 6.1, do not know the keywords).
  - The local lab's nodes reach each other through their links' host-side veths on the lab bridge. With
    BIG TCP (Cilium's C(enableIPv4BIGTCP)) the nodes send IPv4 packets of up to 192 KiB; each device that
    transmits one checks its length against its own GSO maximum and segments it in software when it is
    larger, so the host side must allow them too.
options:
  interfaces:
    description: Indexes of the interfaces (C(/sys/class/net/<name>/ifindex); a veth's peer's C(iflink)).
    type: list
    elements: int
    required: true
  size:
    description: The maximum size in bytes, for both GSO and GRO; 65536 is the kernel's default.
    type: int
    required: true
attributes:
  check_mode:
    support: full
notes:
  - Needs CAP_NET_ADMIN and Linux 6.3 or newer; the kernel refuses a size above the interface's C(tso_max_size).
  - Reports changed only for interfaces whose sizes it changed.
author: netlab
"""

EXAMPLES = r"""
- name: Let the host side of each node's link carry BIG TCP packets
  netlab.lab.lab_link_gso:
    interfaces: [21, 23, 25]
    size: 196608
"""

RETURN = r"""
changed_interfaces:
  description: The indexes whose sizes were (in check mode would be) changed.
  returned: always
  type: list
  elements: int
"""

RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE = 63, 64
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg
_ATTR = struct.Struct("=HH")  # struct rtattr


def _attr(kind: int, value: int) -> bytes:
    return _ATTR.pack(8, kind) + struct.pack("=I", value)


def _message(kind: int, flags: int, index: int, attrs: bytes = b"") -> bytes:
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + attrs
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | flags, 1, 0) + body


def _request(message: bytes) -> bytes:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.sendall(message)
        answer = sock.recv(65536)
    length, kind = _HEADER.unpack_from(answer)[:2]
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", answer, _HEADER.size)
        if code:
            raise OSError(-code, os.strerror(-code))
    return answer[:length]


def attributes(answer: bytes) -> dict[int, bytes]:
    """The top-level attributes of an RTM_NEWLINK answer, by type."""
    found, offset = {}, _HEADER.size + _IFINFO.size
    while offset + _ATTR.size <= len(answer):
        length, kind = _ATTR.unpack_from(answer, offset)
        if length < _ATTR.size:
            break
        found[kind & 0x3FFF] = answer[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def sizes(index: int) -> tuple[int | None, int | None]:
    """The interface's IPv4 GSO and GRO maximum sizes (None where the kernel does not report them)."""
    found = attributes(_request(_message(RTM_GETLINK, 0, index)))
    return tuple(struct.unpack("=I", found[kind])[0] if kind in found else None  # type: ignore[return-value]
                 for kind in (IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE))


def set_sizes(index: int, size: int) -> None:
    _request(_message(RTM_NEWLINK, NLM_F_ACK, index,
                      _attr(IFLA_GSO_IPV4_MAX_SIZE, size) + _attr(IFLA_GRO_IPV4_MAX_SIZE, size)))


def main() -> None:
    module = AnsibleModule(argument_spec={"interfaces": {"type": "list", "elements": "int", "required": True},
                                          "size": {"type": "int", "required": True}},
                           supports_check_mode=True)
    changed: list[int] = []
    try:
        for index in module.params["interfaces"]:
            found = sizes(index)
            if None in found:
                module.fail_json(msg=f"interface {index}: the kernel reports no IPv4 GSO/GRO maximum size "
                                     "(Linux 6.3 or newer has them)")
            if found != (module.params["size"],) * 2:
                changed.append(index)
                if not module.check_mode:
                    set_sizes(index, module.params["size"])
    except OSError as exc:
        why = "no such interface" if exc.errno == errno.ENODEV else exc.strerror
        module.fail_json(msg=f"interface {index}: {why} (size {module.params['size']})")
    result: dict[str, Any] = {"changed": bool(changed), "changed_interfaces": changed}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
