"""A lab on fakepve, for tests/integration/test_proxmox_lab.py and scripts/proxmox_scale.py.

fakepve is the Proxmox VE API; it does not model the guest OS. Guests plays that part: when a lab VM
runs, it answers the guest agent with the address cloud-init would set (or one from a DHCP pool) and
opens an SSH banner on that address. The lab subnet is on loopback, so nothing leaves the machine.
"""

import ipaddress
import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
SUBNET = ipaddress.ip_network("127.0.50.0/24")
SSH_PORT = 2222
TEMPLATE_VMID = 9000
LAB = [{"name": "netlab-server-1", "vmid": 9101, "role": "server", "ip": "127.0.50.11"},
       {"name": "netlab-agent-1", "vmid": 9102, "role": "agent", "ip": "127.0.50.12"},
       {"name": "netlab-agent-2", "vmid": 9103, "role": "agent", "ip": "dhcp"}]


def playbook(url: str, cafile: str, vms: list, tags: str, disk_size: str = "", args=(), env=None,
             ) -> subprocess.CompletedProcess:
    """site.yml on the proxmox inventory against the fake at url, password login, short waits."""
    api = urlparse(url)
    extra = {"proxmox_vm_api_host": api.hostname, "proxmox_vm_api_port": api.port, "proxmox_vm_ca_file": cafile,
             "proxmox_vm_subnet": str(SUBNET), "proxmox_vm_gateway": str(SUBNET[1]),
             "proxmox_vm_nameservers": [str(SUBNET[1])], "proxmox_vm_ssh_port": SSH_PORT, "proxmox_vm_vms": vms,
             "proxmox_vm_ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly lab@controller"],
             "proxmox_vm_retry_delay": 1, "proxmox_vm_disk_size": disk_size, "proxmox_vm_clone_timeout": 5,
             "proxmox_vm_boot_timeout": 60}
    cmd = ["ansible-playbook", "site.yml", "-i", "inventories/proxmox", "--tags", tags, "-e", json.dumps(extra),
           *args]
    environ = {**os.environ, "PROXMOX_USER": "root@pam", "PROXMOX_PASSWORD": "secret", **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False, env=environ)


class Guests:
    """Boots the lab's VMs as far as the API can see: guest agent answers and an SSH banner."""

    def __init__(self, pve):
        self.pve = pve
        self.listeners: dict[str, socket.socket] = {}
        self.leases = (str(a) for a in SUBNET.hosts() if int(a) & 0xFF >= 100)
        self.start_secs = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _address(self, vm) -> str:
        ipconfig = dict(p.partition("=")[::2] for p in vm.config.get("ipconfig0", "").split(","))
        return ipconfig["ip"].split("/")[0] if ipconfig.get("ip", "dhcp") != "dhcp" else next(self.leases)

    def _run(self):
        while not self.stop.wait(0.05):
            for vm in list(self.pve.vms):
                if vm.template or vm.vmid < 9100:
                    continue
                if vm.status != "running":
                    vm.start_secs = self.start_secs
                elif vm.agent is None and "ipconfig0" in vm.config:
                    address = self._address(vm)
                    self._sshd(address)
                    vm.agent = {"interfaces": [
                        {"name": "lo", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4",
                                                         "prefix": 8}]},
                        {"name": "eth0", "ip-addresses": [{"ip-address": address, "ip-address-type": "ipv4",
                                                           "prefix": SUBNET.prefixlen}]}]}

    def _sshd(self, address: str):
        if address in self.listeners:
            return
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, SSH_PORT))
        sock.listen()
        self.listeners[address] = sock

        def serve():
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(b"SSH-2.0-netlab-test-guest\r\n")

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.stop.set()
        self.thread.join()
        for sock in self.listeners.values():
            sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
            sock.close()


def add_template(pve):
    pve.add_vm(TEMPLATE_VMID, "debian-13-cloudinit", template=True, config={
        "scsi0": f"local-lvm:base-{TEMPLATE_VMID}-disk-0,size=3G", "scsihw": "virtio-scsi-pci",
        "ide2": f"local-lvm:vm-{TEMPLATE_VMID}-cloudinit,media=cdrom", "boot": "order=scsi0",
        "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0", "cores": 2, "memory": "2048", "template": 1})
    pve.storages["local-lvm"].setdefault("volumes", {})[f"base-{TEMPLATE_VMID}-disk-0"] = {
        "content": "images", "format": "raw", "size": 3 * 1024 ** 3, "vmid": TEMPLATE_VMID, "ctime": 0}
