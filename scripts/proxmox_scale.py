#!/usr/bin/env python3
"""How provisioning scales: 1 VM, then N VMs, against fakepve with tasks that take time.

Each API answer takes --latency PVE seconds and each VM start --start PVE seconds, scaled by
--time-scale into real time. Concurrent VMs (one Ansible fork each) should take far less than
N times one VM. Prints both times and their ratio.

--nodes spreads the lab over that many fake PVE nodes (proxmox_vm_placement spread; each node has a
template of the lab's name on its local storage, so every clone stays on its node). --guests twin boots a
real node container for each VM (the Proxmox twin, netlab_twin, installed by `make setup`) and the playbook
waits for its SSH; --guests api measures the API and Ansible alone: each VM's address is a loopback address
whose port answers with an SSH banner, which is all the provision play waits for.

    .venv/bin/python scripts/proxmox_scale.py --vms 12 --nodes 3 --guests twin
    .venv/bin/python scripts/proxmox_scale.py --vms 12 --nodes 3 --guests api
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlab_twin import TEMPLATE_VMID, Twin, add_template, playbook, serve, session_key

# The API-alone lab's addresses (all of 127/8 is this machine's) and the port its banners answer on.
LOOPBACK = "127.0.8.0/24"
BANNER_PORT = 2222


@dataclass
class Banners:
    """What the provision play needs of a guest when only the API is measured: an SSH banner at its address."""

    subnet: ipaddress.IPv4Network
    gateway: str

    @classmethod
    @contextlib.contextmanager
    def serving(cls, addresses: list[str]) -> Iterator[Banners]:
        stop = threading.Event()
        sockets = []
        for address in addresses:
            listener = socket.create_server((address, BANNER_PORT))
            listener.settimeout(0.2)
            sockets.append(listener)

        def answer(listener: socket.socket) -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError, OSError):
                    conn, _ = listener.accept()
                    with conn:
                        conn.sendall(b"SSH-2.0-netlab-scale\r\n")

        threads = [threading.Thread(target=answer, args=(s,), daemon=True) for s in sockets]
        for thread in threads:
            thread.start()
        subnet = ipaddress.ip_network(LOOPBACK)
        try:
            yield cls(subnet, str(subnet[1]))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            for listener in sockets:
                listener.close()


def lab(count: int, subnet: Any) -> list[dict[str, Any]]:
    hosts = list(subnet.hosts())
    return [{"name": f"netlab-node-{i}", "vmid": 9101 + i, "role": "server" if i == 0 else "agent",
             "ip": str(hosts[10 + i])} for i in range(count)]


def provision(count: int, args: argparse.Namespace, key: tuple[str, str]) -> float:
    """Seconds for site.yml --tags provision to bring up count VMs on a fresh fake (and twin)."""
    with tempfile.TemporaryDirectory() as tmp, serve(tmp, args.time_scale, args.latency) as (pve, cafile):
        for index in range(1, args.nodes + 1):  # pve1 is fakepve's own
            add_template(pve, agent=True, vmid=TEMPLATE_VMID + index - 1, node=f"pve{index}")
        guests: contextlib.AbstractContextManager[Any]
        extra: tuple[str, ...] = ()
        if args.guests == "twin":
            guests = Twin(pve)
        else:
            guests = Banners.serving([vm["ip"] for vm in lab(count, ipaddress.ip_network(LOOPBACK))])
            extra = ("-e", f"proxmox_vm_ssh_port={BANNER_PORT}")
        with guests as guest:
            if args.guests == "twin":
                guest.start_secs = args.start
            vms = lab(count, guest.subnet)
            started = time.monotonic()
            proc = playbook(pve.url, cafile, guest, key, vms, "provision",
                            args=("--forks", str(max(count, 5)), *extra), known_hosts=str(Path(tmp) / "known_hosts"))
            elapsed = time.monotonic() - started
            if proc.returncode != 0:
                sys.exit(f"provisioning {count} VMs failed:\n{proc.stdout[-4000:]}")
            spread = sorted({vm.node for vm in pve.vms if not vm.template})
            print(f"  {count} VM(s) on {', '.join(spread)}: {elapsed:.1f} s", flush=True)
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=12)
    parser.add_argument("--nodes", type=int, default=1, help="fake PVE nodes the lab is spread over")
    parser.add_argument("--guests", choices=("twin", "api"), default="twin",
                        help="twin: a node container per VM; api: the API and Ansible alone")
    parser.add_argument("--time-scale", type=float, default=0.05, help="real seconds per PVE second")
    parser.add_argument("--latency", type=float, default=1.0, help="PVE seconds per API answer")
    parser.add_argument("--start", type=float, default=100.0, help="PVE seconds a VM start task takes (twin)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = session_key(tmp)
        one = provision(1, args, key)
        many = provision(args.vms, args, key)
    print(f"guests {args.guests}, {args.nodes} PVE node(s), API answer {args.latency * args.time_scale:.2f} s"
          + (f", VM start {args.start * args.time_scale:.1f} s" if args.guests == "twin" else ""))
    print(f"1 VM: {one:.1f} s; {args.vms} VMs: {many:.1f} s; ratio {many / one:.2f} (serial would be {args.vms})")


if __name__ == "__main__":
    main()
