#!/usr/bin/env python3
"""How provisioning scales: 1 VM, then N VMs, against fakepve with tasks that take time.

Each API answer takes --latency PVE seconds and each VM start --start PVE seconds, scaled by
--time-scale into real time. Concurrent VMs (one Ansible fork each) should take far less than
N times one VM. Prints both times and their ratio. Each VM boots a real node container (the Proxmox
twin, netlab_twin, installed by `make setup`), and the playbook waits for its SSH.

    .venv/bin/python scripts/proxmox_scale.py --vms 12
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from netlab_twin import Twin, playbook, serve, session_key


def provision(count: int, args: argparse.Namespace, key: tuple[str, str]) -> float:
    """Seconds for site.yml --tags provision to bring up count VMs on a fresh fake and twin."""
    with tempfile.TemporaryDirectory() as tmp, serve(tmp, args.time_scale, args.latency) as (pve, cafile), \
            Twin(pve) as twin:
        twin.add_template(agent=True)
        twin.start_secs = args.start
        hosts = list(twin.subnet.hosts())
        vms = [{"name": f"netlab-node-{i}", "vmid": 9101 + i, "role": "server" if i == 0 else "agent",
                "ip": str(hosts[10 + i])} for i in range(count)]
        started = time.monotonic()
        proc = playbook(pve.url, cafile, twin, key, vms, "provision", args=("--forks", str(max(count, 5))),
                        known_hosts=str(Path(tmp) / "known_hosts"))
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"provisioning {count} VMs failed:\n{proc.stdout[-4000:]}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=12)
    parser.add_argument("--time-scale", type=float, default=0.05, help="real seconds per PVE second")
    parser.add_argument("--latency", type=float, default=1.0, help="PVE seconds per API answer")
    parser.add_argument("--start", type=float, default=100.0, help="PVE seconds a VM start task takes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = session_key(tmp)
        one = provision(1, args, key)
        many = provision(args.vms, args, key)
    print(f"API answer {args.latency * args.time_scale:.2f} s, VM start {args.start * args.time_scale:.1f} s")
    print(f"1 VM: {one:.1f} s; {args.vms} VMs: {many:.1f} s; ratio {many / one:.2f} "
          f"(serial would be {args.vms})")


if __name__ == "__main__":
    main()
