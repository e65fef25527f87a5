"""The Proxmox twin itself: VMs cloned and driven through fakepve's API boot real nodes that behave as
cloud-init VMs do (login, sudo, addresses, host keys, guest agent, stop/start/destroy)."""

import subprocess
import time
from urllib.parse import quote, urlparse

import pytest
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from netlab_twin import TEMPLATE_VMID, Twin, login, serve

NODE = "pve1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One fake cluster and one twin for the module; each test clones from a template of its own."""
    with serve(tmp_path_factory.mktemp("twin")) as (pve, cafile):
        twin = Twin(pve)
        try:
            yield twin, cafile
        finally:
            twin.close()
        assert twin.containers() == {}


@pytest.fixture
def twin(cluster):
    """The module's twin; the test's VMs removed after it (as a destroy would), their nodes with them."""
    twin = cluster[0]
    yield twin
    twin.pve.vms[:] = [vm for vm in twin.pve.vms if vm.template]
    deadline = time.monotonic() + 30
    while twin.containers():
        assert time.monotonic() < deadline, twin.containers()
        time.sleep(0.1)
    assert twin.errors == []


@pytest.fixture
def api(cluster):
    twin, cafile = cluster
    url = urlparse(twin.pve.url)
    return ProxmoxAPI(url.hostname, port=url.port, user="root@pam", password="secret", verify_ssl=cafile)


def wait_task(api, upid: str) -> None:
    deadline = time.monotonic() + 30
    while api.nodes(NODE).tasks(upid).status.get()["status"] != "stopped":
        assert time.monotonic() < deadline, upid
        time.sleep(0.05)


def clone(api, key, vmid: int, ip: str, start: bool = True, mtu: int = 0, template: int = TEMPLATE_VMID) -> None:
    """What the proxmox_vm role does to a VM, through the same API calls."""
    wait_task(api, api.nodes(NODE).qemu(template).clone.post(newid=vmid, name=f"netlab-node-{vmid}", full=1))
    ipconfig = "ip=dhcp" if ip == "dhcp" else f"ip={ip}/24,gw=198.18.8.1"
    net0 = api.nodes(NODE).qemu(vmid).config.get()["net0"] + (f",mtu={mtu}" if mtu else "")
    api.nodes(NODE).qemu(vmid).config.put(ciuser="debian", sshkeys=quote(key[1] + "\n", safe=""), agent="enabled=1",
                                          ipconfig0=ipconfig, net0=net0)
    if start:
        power(api, vmid, "start")


def power(api, vmid: int, action: str) -> None:
    wait_task(api, getattr(api.nodes(NODE).qemu(vmid).status, action).post())


def destroy(api, vmid: int) -> None:
    wait_task(api, api.nodes(NODE).qemu(vmid).delete())


def ssh(key, address: str, known_hosts, command: str) -> subprocess.CompletedProcess:
    return login(key[0], address, known_hosts, command, timeout=30)


def state(container: str) -> str:
    return subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", container], capture_output=True,
                          text=True, check=False).stdout.strip()


def agent_interfaces(api, vmid: int) -> list:
    return api.nodes(NODE).qemu(vmid).agent("network-get-interfaces").get()["result"]


def test_vm_lifecycle_is_a_node_lifecycle(twin, api, key, tmp_path):
    twin.add_template(agent=True)
    clone(api, key, 9101, "198.18.8.11")
    assert twin.wait(9101) == "198.18.8.11"
    known = tmp_path / "known_hosts"

    # Logged in with the key as the ciuser, root by sudo without a password, named and addressed as the VM.
    login = ssh(key, "198.18.8.11", known, "sudo -n id -un; hostname; ip -br addr show ens18")
    assert login.returncode == 0, login.stderr
    user, hostname, nic = login.stdout.splitlines()
    assert (user, hostname) == ("root", "netlab-node-9101")
    assert nic.startswith("ens18@") and "198.18.8.11/24" in nic
    # The agent answers with the guest's real interfaces, the VM's MAC on ens18.
    mac = api.nodes(NODE).qemu(9101).config.get()["net0"].split(",")[0].split("=")[1].lower()
    nics = {nic["name"]: nic for nic in agent_interfaces(api, 9101)}
    assert sorted(nics) == ["ens18", "lo"] and nics["ens18"]["hardware-address"] == mac
    assert {"ip-address": "198.18.8.11", "ip-address-type": "ipv4", "prefix": 24} in nics["ens18"]["ip-addresses"]
    first_key = twin.host_keys(9101)

    # Stopped: the agent and sshd are gone; started again: the same disk, so the same host keys.
    power(api, 9101, "stop")
    deadline = time.monotonic() + 15
    while state("pve-9101") != "exited":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ssh(key, "198.18.8.11", known, "true").returncode == 255
    with pytest.raises(ResourceException, match="not running"):
        agent_interfaces(api, 9101)
    power(api, 9101, "start")
    twin.wait(9101)
    assert twin.host_keys(9101) == first_key
    assert ssh(key, "198.18.8.11", known, "sudo -n true").returncode == 0

    # Destroyed: the container goes. Cloned again at the same address: a new machine with new host keys.
    power(api, 9101, "stop")
    destroy(api, 9101)
    deadline = time.monotonic() + 15
    while twin.containers():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    clone(api, key, 9101, "198.18.8.11")
    twin.wait(9101)
    assert twin.host_keys(9101) != first_key
    changed = ssh(key, "198.18.8.11", known, "true")
    assert changed.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed.stderr
    assert twin.errors == []


def test_dhcp_leases_and_no_agent_in_the_template(twin, api, key, tmp_path):
    twin.add_template(agent=False, vmid=9001, name="debian-13-genericcloud")  # without qemu-guest-agent
    clone(api, key, 9102, "dhcp", template=9001)
    clone(api, key, 9103, "dhcp", mtu=1400, template=9001)
    leases = [twin.wait(9102), twin.wait(9103)]
    assert len(set(leases)) == 2 and all(100 <= int(a.rsplit(".", 1)[1]) < 200 for a in leases), leases
    for vmid in (9102, 9103):
        with pytest.raises(ResourceException, match="QEMU guest agent is not running"):
            agent_interfaces(api, vmid)
    mtus = [ssh(key, address, tmp_path / "known_hosts", "sudo -n cat /sys/class/net/ens18/mtu") for address in leases]
    assert [(p.returncode, p.stdout.strip()) for p in mtus] == [(0, "1500"), (0, "1400")]
    assert sorted(twin.containers()) == [9102, 9103]
    assert twin.errors == []
