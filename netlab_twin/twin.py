"""The Proxmox twin: fakepve is the API, a podman container of the node image is each lab VM's guest.

fakepve models the Proxmox VE API but no guest OS. The twin watches fakepve's VMs and, when a lab VM
runs, boots a real node container in its place on a podman network, set up from the VM's config as
cloud-init would, so that playbooks log in, become root and configure the nodes as on Proxmox:

- the address of `ipconfig0` (`ip=A/P`), or for `ip=dhcp` a lease from the upper part of the
  subnet that stays with the MAC of `net0` (a clone gets a new MAC, hence a new lease);
- the NIC is `ens18` with net0's MAC, as a virtio NIC on a Debian VM on Proxmox; `mtu=` of net0
  is set on it inside the guest;
- the `ciuser` (PVE's default: the image's user, `debian`) with passwordless sudo and the URL-decoded
  `sshkeys` as authorized keys, on first boot only, before systemd starts, so sshd never serves
  a login the user cannot make yet;
- SSH host keys come from the node image, which generates them at first boot: a VM destroyed and
  cloned again is a new container with new keys; a VM stopped and started keeps its container;
- the guest agent answers `network-get-interfaces` from the container's real `ip -j addr` once the
  node has booted, but only if the VM's config enables the agent and the template's description
  says the agent is installed (AGENT_MARK; a clone copies its template's description).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from netlab_twin import lanes

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_VMID = 9000
FIRST_LAB_VMID = 9100
AGENT_MARK = "qemu-guest-agent installed"
IMAGE = "localhost/netlab-node:trixie"
NIC = "ens18"
DEFAULT_USER = "debian"
LABEL = "netlab.twin"
LEASES = range(100, 200)  # host numbers of the DHCP pool, above the static lab addresses
POLL = 0.05

log = logging.getLogger(__name__)

# PID 1 of a node until systemd takes over: cloud-init's per-instance work (user, sudo, keys) once,
# the per-boot network setting every time. The data comes in the environment, from the VM's config.
SEED = r"""
set -eu
if [ -n "$NETLAB_MTU" ]; then ip link set dev "$NETLAB_NIC" mtu "$NETLAB_MTU"; fi
done=/var/lib/cloud/instance/boot-finished
if [ ! -e "$done" ]; then
    u=$NETLAB_CI_USER
    id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups sudo "$u"
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$u" >/etc/sudoers.d/90-cloud-init-users
    chmod 0440 /etc/sudoers.d/90-cloud-init-users
    home=$(getent passwd "$u" | cut -d: -f6)
    install -d -m 0700 -o "$u" -g "$u" "$home/.ssh"
    printf '%s\n' "$NETLAB_CI_KEYS" >"$home/.ssh/authorized_keys"
    chown "$u:$u" "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
    mkdir -p "${done%/*}"
    touch "$done"
fi
exec /sbin/init
"""


def options(value: str) -> dict[str, str]:
    """key=value pairs of a PVE property string such as net0 or ipconfig0."""
    return dict(part.partition("=")[::2] for part in value.split(",") if part)


def nic_mac(net0: str) -> str:
    """The MAC of a net0 value such as 'virtio=BC:24:11:00:90:00,bridge=vmbr0' (its model key holds it)."""
    for key, value in options(net0).items():
        if ":" in value and key not in ("bridge", "tag"):
            return value.lower()
    return ""


def agent_interfaces(ip_addr_json: str) -> list[dict[str, Any]]:
    """`ip -j addr` output in the shape of the QEMU guest agent's network-get-interfaces answer."""
    interfaces = []
    for link in json.loads(ip_addr_json):
        addresses = [{"ip-address": a["local"], "ip-address-type": "ipv4" if a["family"] == "inet" else "ipv6",
                      "prefix": a["prefixlen"]} for a in link.get("addr_info", [])]
        interfaces.append({"name": link["ifname"], "hardware-address": link.get("address", ""),
                           "ip-addresses": addresses})
    return interfaces


def agent_enabled(config: dict[str, Any]) -> bool:
    """The VM option agent is '1', 'enabled=1' or '1,fstrim_cloned_disks=1' when on (PVE answers otherwise
    'No QEMU guest agent configured', whatever the guest runs)."""
    first = str(config.get("agent", "0")).split(",")[0]
    return first.partition("=")[2] == "1" if "=" in first else first == "1"


def has_cloudinit(config: dict[str, Any]) -> bool:
    """Only VMs with a cloud-init drive get set up; others (bare test VMs) boot nothing the twin knows."""
    return any("cloudinit" in str(value) for value in config.values())


def add_template(pve: Any, agent: bool = True, vmid: int = TEMPLATE_VMID, name: str = "debian-13-cloudinit",
                 node: str = "pve1") -> Any:
    """A cloud-init template as the lab expects one, on node's local-lvm (fakepve adds a node it lacks);
    agent=False is Debian genericcloud's default (no agent)."""
    config = {"scsi0": f"local-lvm:base-{vmid}-disk-0,size=3G", "scsihw": "virtio-scsi-pci",
              "ide2": f"local-lvm:vm-{vmid}-cloudinit,media=cdrom", "boot": "order=scsi0",
              "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0", "cores": 2, "memory": "2048", "template": 1,
              "description": f"Debian 13 genericcloud{'; ' + AGENT_MARK if agent else ''}"}
    vm = pve.add_vm(vmid, name, template=True, config=config, node=node)
    pve.storages["local-lvm"].setdefault("volumes", {})[f"base-{vmid}-disk-0"] = {
        "content": "images", "format": "raw", "size": 3 * 1024 ** 3, "vmid": vmid, "ctime": 0}
    return vm


@dataclass
class Node:
    """The container standing in for one VM: the FakeVm object it was booted for (a re-clone is another)."""

    vm: Any
    name: str
    address: str
    running: bool = True
    booted: threading.Event = field(default_factory=threading.Event)


class Twin:
    """Boots, stops and removes node containers as fakepve's lab VMs start, stop and are destroyed."""

    def __init__(self, pve: Any, subnet: str = "198.18.8.0/24", network: str = "netlab-twin", image: str = IMAGE,
                 prefix: str = "pve-", boot_timeout: float = 60) -> None:
        self.pve = pve
        self.subnet = ipaddress.ip_network(subnet)
        self.gateway = str(self.subnet[1])
        self.network = network
        self.image = image
        self.prefix = prefix
        self.boot_timeout = boot_timeout
        self.start_secs: float = 0
        self.errors: list[str] = []
        self._env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF")
                     or str(ROOT / "containers.conf")}
        self._nodes: dict[int, Node] = {}
        self._leases: dict[str, str] = {}
        self._busy: set[int] = set()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        # pid first: a later run removes the containers of a pid that no longer runs.
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._remove_leftovers()
        self._created_network = self._ensure_network()
        self._thread = threading.Thread(target=self._run, name="netlab-twin", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def add_template(self, agent: bool = True, vmid: int = TEMPLATE_VMID, name: str = "debian-13-cloudinit",
                     node: str = "pve1") -> Any:
        """A cloud-init template as the lab expects one (add_template)."""
        return add_template(self.pve, agent, vmid, name, node)

    def containers(self) -> dict[int, str]:
        """vmid -> container name of the VMs that have a container now, running or stopped."""
        with self._lock:
            return {vmid: node.name for vmid, node in self._nodes.items()}

    def wait(self, vmid: int, timeout: float = 60) -> str:
        """The address of the VM's node once it has booted (set up and sshd running)."""
        deadline = time.monotonic() + timeout
        while True:
            node = self._nodes.get(vmid)
            if node and node.running and node.booted.wait(min(0.1, timeout)):
                return node.address
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise TimeoutError(f"VM {vmid} did not boot a node within {timeout} s; twin errors: {self.errors}")

    def host_keys(self, vmid: int) -> str:
        """The node's ed25519 host public key, to compare keys across rebuilds."""
        return self._podman("exec", self._nodes[vmid].name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").strip()

    def close(self) -> None:
        """Remove every container of this twin and the network it created; safe after a failure and twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for worker in list(self._workers):
            worker.join(self.boot_timeout)
        self._remove_leftovers(owner=self._owner)
        with self._lock:
            self._nodes.clear()
        if self._created_network:
            # Fails while another session's containers use it; then that session's close() removes it.
            self._podman("network", "rm", self.network, check=False)
            self._created_network = False

    def __enter__(self) -> Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ podman

    def _podman(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """Run podman with the project's containers.conf (runc), return its stdout."""
        proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=self._env, timeout=timeout,
                              check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def _remove_leftovers(self, owner: str = "") -> None:
        """Containers of this prefix left by a crashed earlier run (its process gone), or this twin's (owner).

        A live process's containers are another session's: they stay."""
        listing = self._podman("ps", "-a", "--filter", f"label={LABEL}={self.prefix}", "--format", "json")
        for container in json.loads(listing or "[]"):
            theirs = (container.get("Labels") or {}).get(f"{LABEL}.owner", "0")
            pid = int(theirs.split("-")[0]) if theirs.split("-")[0].isdigit() else 0
            if theirs == owner or (not owner and not lanes.alive(pid)):
                self._podman("rm", "-f", "-t", "0", container["Id"], check=False)

    def _ensure_network(self) -> bool:
        """Create the lab network unless it exists with our subnet; True when this twin created it."""
        found = self._podman("network", "inspect", self.network, check=False)
        if found.strip() and found.strip() != "[]":
            subnets = [s["subnet"] for n in json.loads(found) for s in n.get("subnets") or []]
            if str(self.subnet) not in subnets:
                raise RuntimeError(f"podman network {self.network} exists with {subnets}, not {self.subnet}")
            return False
        self._podman("network", "create", "--subnet", str(self.subnet), "--gateway", self.gateway,
                     "--label", f"{LABEL}={self.prefix}", self.network)
        return True

    # ------------------------------------------------------------------ the watch

    def _run(self) -> None:
        """Every POLL seconds, bring each lab VM's container to the VM's state, one worker per VM at a time."""
        while not self._stop.wait(POLL):
            try:
                self._reconcile()
            except Exception as exc:  # the watch must outlive a bad moment
                log.exception("twin reconcile")
                self.errors.append(f"reconcile: {exc}")

    def _reconcile(self) -> None:
        """Decide, per VM, whether to boot, resume, halt or remove its node; hand the work to a worker."""
        vms = {vm.vmid: vm for vm in list(self.pve.vms)
               if not vm.template and vm.vmid >= FIRST_LAB_VMID and has_cloudinit(vm.config)}
        for vmid, node in list(self._nodes.items()):
            if vms.get(vmid) is not node.vm:  # destroyed, or destroyed and cloned again
                self._spawn(vmid, self._remove, node)
        for vmid, vm in vms.items():
            node = self._nodes.get(vmid)
            if vm.status != "running":
                vm.start_secs = self.start_secs
                vm.agent = None  # an agent answers only while the guest runs
                if node and node.vm is vm and node.running:
                    self._spawn(vmid, self._halt, node)
            elif node is None:
                self._spawn(vmid, self._boot, vm)
            elif node.vm is vm and not node.running:
                self._spawn(vmid, self._resume, node)

    def _spawn(self, vmid: int, action: Any, *args: Any) -> None:
        """Run action in a worker unless one already works on this VM (the next poll looks again)."""
        with self._lock:
            if vmid in self._busy:
                return
            self._busy.add(vmid)

        def work() -> None:
            try:
                action(*args)
            except Exception as exc:
                log.exception("twin %s %s", action.__name__, vmid)
                self.errors.append(f"{action.__name__} {vmid}: {exc}")
            finally:
                with self._lock:
                    self._busy.discard(vmid)

        worker = threading.Thread(target=work, name=f"netlab-twin-{vmid}", daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    # ------------------------------------------------------------------ actions

    def _address(self, vm: Any) -> str:
        """ipconfig0's static address, or the lease of net0's MAC (a new one from the pool if it has none)."""
        ip = options(str(vm.config.get("ipconfig0", "ip=dhcp"))).get("ip", "dhcp")
        if ip != "dhcp":
            return ip.split("/")[0]
        mac = nic_mac(str(vm.config.get("net0", ""))) or f"vmid-{vm.vmid}"
        with self._lock:
            if mac not in self._leases:
                taken = {n.address for n in self._nodes.values()} | set(self._leases.values())
                free = (str(self.subnet[i]) for i in LEASES if str(self.subnet[i]) not in taken)
                self._leases[mac] = next(free)
            return self._leases[mac]

    def _boot(self, vm: Any) -> None:
        """A first boot: a new container, set up as cloud-init would from the VM's config."""
        config = dict(vm.config)
        net0 = options(str(config.get("net0", "")))
        mac = nic_mac(str(config.get("net0", "")))
        mtu = net0.get("mtu", "")
        address = self._address(vm)
        name = f"{self.prefix}{vm.vmid}"
        network = f"{self.network}:interface_name={NIC},ip={address}" + (f",mac={mac}" if mac else "")
        node = Node(vm, name, address)
        with self._lock:
            self._nodes[vm.vmid] = node
        self._podman(
            "run", "-d", "--name", name, "--hostname", str(vm.name), "--privileged", "--systemd", "always",
            "--network", network, "--label", f"{LABEL}={self.prefix}", "--label", f"{LABEL}.owner={self._owner}",
            "--label", f"{LABEL}.vmid={vm.vmid}",
            "-e", f"NETLAB_CI_USER={config.get('ciuser') or DEFAULT_USER}",
            "-e", f"NETLAB_CI_KEYS={unquote(str(config.get('sshkeys', ''))).strip()}",
            "-e", f"NETLAB_MTU={mtu if mtu not in ('', '1') else ''}", "-e", f"NETLAB_NIC={NIC}",
            "--entrypoint", "/bin/sh", self.image, "-c", SEED)
        self._booted(node)

    def _resume(self, node: Node) -> None:
        """The VM started again: its container (disk) starts again, keys and user as they were."""
        node.booted.clear()
        node.running = True
        self._podman("start", node.name)
        self._booted(node)

    def _halt(self, node: Node) -> None:
        """The VM stopped: so does its container."""
        node.booted.clear()
        node.running = False
        self._podman("stop", "-t", "10", node.name)

    def _remove(self, node: Node) -> None:
        """The VM was destroyed: its container goes, and with it the host keys."""
        node.booted.clear()
        self._podman("rm", "-f", "-t", "0", node.name)
        with self._lock:
            if self._nodes.get(node.vm.vmid) is node:
                del self._nodes[node.vm.vmid]

    def _booted(self, node: Node) -> None:
        """Wait until systemd finished booting (sshd up), then let the guest agent answer if there is one."""
        deadline = time.monotonic() + self.boot_timeout
        state = ""
        while state not in ("running", "degraded"):
            if time.monotonic() > deadline or self._stop.is_set():
                raise TimeoutError(f"{node.name} did not boot: systemd is {state or 'not answering'}")
            # Fails at once until systemd's private socket exists; then waits for the boot's end.
            state = self._podman("exec", node.name, "timeout", "10", "systemctl", "is-system-running", "--wait",
                                 check=False).strip()
            if state not in ("running", "degraded"):
                time.sleep(0.1)
        vm = node.vm
        if vm.status == "running" and agent_enabled(vm.config) and AGENT_MARK in str(vm.config.get("description")):
            vm.agent = {"interfaces": agent_interfaces(self._podman("exec", node.name, "ip", "-j", "addr"))}
        node.booted.set()
