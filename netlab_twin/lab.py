"""Running site.yml against a fakepve + twin lab: shared by the integration tests and scripts/proxmox_scale.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fakepve import FakePve
from fakepve.certs import make_cert

from netlab_twin import lanes
from netlab_twin.twin import ROOT, Twin


@contextmanager
def serve(directory: str | Path, time_scale: float = 0, latency: float = 0) -> Iterator[tuple[Any, str]]:
    """A FakePve served over TLS on 127.0.0.1 for as long as the block runs: (the fake, its CA file).

    For a lab that lives longer than one test (pytest's fakepve fixture is per test) and for scripts.
    ``time_scale`` turns PVE seconds into real ones; ``latency`` PVE seconds are added to every answer.
    """
    cafile, keyfile = make_cert(str(directory), hosts=("127.0.0.1",))[:2]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fakepve", daemon=True)
    thread.start()
    pve = FakePve(user="root@pam", password="secret", host="127.0.0.1", port=0)
    pve.time_scale = time_scale
    if latency:
        pve.slow_network(latency)
    try:
        asyncio.run_coroutine_threadsafe(pve.start(cafile, keyfile), loop).result(30)
        yield pve, cafile
    finally:
        try:
            asyncio.run_coroutine_threadsafe(pve.stop(), loop).result(30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)


def session_key(directory: str | Path) -> tuple[str, str]:
    """A fresh ed25519 key pair in directory, as a lab controller's login key: (private key path, public key)."""
    path = Path(directory) / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab@controller", "-f", str(path)],
                   check=True, capture_output=True)
    return str(path), path.with_suffix(".pub").read_text().strip()


def login(key: str, address: str, known_hosts: str | Path, command: str, timeout: float = 60,
          ) -> subprocess.CompletedProcess:
    """command on a node over SSH as the cloud user, as a lab user's controller would run it: the login key,
    a known_hosts of the test's own (a new key accepted, a changed one refused), no password prompt."""
    return subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
                           "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=5",
                           f"debian@{address}", command], capture_output=True, text=True, timeout=timeout, check=False)


def playbook(url: str, cafile: str, twin: Twin, key: tuple[str, str], vms: list, tags: str, disk_size: str = "",
             args: Iterable[str] = (), env: Mapping[str, str] | None = None, known_hosts: str = "",
             ) -> subprocess.CompletedProcess:
    """site.yml on the proxmox inventory against the fake at url and the twin's network: password login to the
    API, the key pair as the VMs' login, the lab's known_hosts in known_hosts (if given), short waits."""
    api = urlparse(url)
    extra = {"proxmox_vm_api_host": api.hostname, "proxmox_vm_api_port": api.port, "proxmox_vm_ca_file": cafile,
             "proxmox_vm_subnet": str(twin.subnet), "proxmox_vm_gateway": twin.gateway,
             "proxmox_vm_nameservers": [twin.gateway], "proxmox_vm_vms": vms,
             "proxmox_vm_ssh_keys": [key[1]], "ansible_ssh_private_key_file": key[0],
             "proxmox_vm_retry_delay": 1, "proxmox_vm_disk_size": disk_size, "proxmox_vm_clone_timeout": 5,
             "proxmox_vm_boot_timeout": 60,
             # fakepve's nodes have 4 CPUs and 8 GiB, 2 of them used: the placement's check holds 4 such VMs a node.
             "proxmox_vm_cores": 1, "proxmox_vm_memory": 1024,
             **({"proxmox_vm_known_hosts": known_hosts} if known_hosts else {})}
    cmd = ["ansible-playbook", "site.yml", "-i", "inventories/proxmox", "--tags", tags, "-e", json.dumps(extra),
           *args]
    environ = {**os.environ, "PROXMOX_USER": "root@pam", "PROXMOX_PASSWORD": "secret", **(env or {})}
    # In a process group of its own, stopped with everything it started if the caller is interrupted.
    return lanes.run(cmd, cwd=ROOT, timeout=900, env=environ)
