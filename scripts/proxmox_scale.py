#!/usr/bin/env python3
"""How provisioning scales: 1 VM, then N VMs, against fakepve with tasks that take time.

Each API answer takes --latency PVE seconds and each VM start --start PVE seconds, scaled by
--time-scale into real time. Concurrent VMs (one Ansible fork each) should take far less than
N times one VM. Prints both times and their ratio.

    .venv/bin/python scripts/proxmox_scale.py --vms 12
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

from fakepve import FakePve
from fakepve.certs import make_cert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from fakepve_lab import SUBNET, Guests, add_template, playbook


def provision(count: int, args: argparse.Namespace, pki: tuple[str, str]) -> float:
    """Seconds for site.yml --tags provision to bring up count VMs on a fresh fake."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    pve = FakePve(user="root@pam", password="secret", host="127.0.0.1", port=0)
    pve.time_scale = args.time_scale
    pve.slow_network(args.latency)
    add_template(pve)
    asyncio.run_coroutine_threadsafe(pve.start(*pki), loop).result(30)
    guests = Guests(pve)
    guests.start_secs = args.start
    hosts = list(SUBNET.hosts())
    vms = [{"name": f"netlab-node-{i}", "vmid": 9101 + i, "role": "server" if i == 0 else "agent",
            "ip": str(hosts[10 + i])} for i in range(count)]
    try:
        started = time.monotonic()
        proc = playbook(pve.url, pki[0], vms, "provision", args=("--forks", str(max(count, 5))))
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"provisioning {count} VMs failed:\n{proc.stdout[-4000:]}")
        return elapsed
    finally:
        guests.close()
        asyncio.run_coroutine_threadsafe(pve.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=12)
    parser.add_argument("--time-scale", type=float, default=0.05, help="real seconds per PVE second")
    parser.add_argument("--latency", type=float, default=1.0, help="PVE seconds per API answer")
    parser.add_argument("--start", type=float, default=100.0, help="PVE seconds a VM start task takes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_cert(tmp, hosts=("127.0.0.1",))[:2]
        one = provision(1, args, pki)
        many = provision(args.vms, args, pki)
    print(f"API answer {args.latency * args.time_scale:.2f} s, VM start {args.start * args.time_scale:.1f} s")
    print(f"1 VM: {one:.1f} s; {args.vms} VMs: {many:.1f} s; ratio {many / one:.2f} "
          f"(serial would be {args.vms})")


if __name__ == "__main__":
    main()
