"""The Proxmox lab's pure functions: plan checks, config drift, what is the lab's, guest addresses."""

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import proxmox

SETTINGS = {"name_prefix": "netlab-", "tag": "netlab", "subnet": "198.18.50.0/24", "gateway": "198.18.50.1",
            "nameservers": ["198.18.50.1"], "bridge": "vmbr0", "vlan": 0, "mtu": 0, "cpu": "host", "cores": 8,
            "memory": 32768, "ci_user": "debian", "ssh_keys": ["ssh-ed25519 AAAAC3Nz lab@controller"]}
VMS = [{"name": "netlab-server-1", "vmid": 9101, "role": "server", "ip": "198.18.50.11"},
       {"name": "netlab-agent-1", "vmid": 9102, "role": "agent", "ip": "198.18.50.12", "memory": 16384},
       {"name": "netlab-agent-2", "vmid": 9103, "role": "agent"}]


def test_plan_fills_defaults():
    planned = proxmox.plan(VMS, SETTINGS)
    assert [(vm["cores"], vm["memory"], vm["ip"]) for vm in planned] == [
        (8, 32768, "198.18.50.11"), (8, 16384, "198.18.50.12"), (8, 32768, "dhcp")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({1: {"vmid": 9101}}, "duplicate vmid: 9101"),
        ({1: {"name": "netlab-server-1"}}, "duplicate name: netlab-server-1"),
        ({1: {"ip": "198.18.50.11"}}, "duplicate ip: 198.18.50.11"),
        ({0: {"memory": 0}}, "memory must be a positive integer, got 0"),
        ({0: {"cores": -2}}, "cores must be a positive integer"),
        ({0: {"ip": "10.0.0.5"}}, "ip 10.0.0.5 is not a host address of the subnet 198.18.50.0/24"),
        ({0: {"ip": "198.18.50.255"}}, "not a host address"),
        ({0: {"ip": "fast"}}, "neither an address nor dhcp"),
        ({0: {"name": "server-1"}}, "must start with the lab prefix 'netlab-'"),
        ({0: {"name": "Netlab_1"}}, "name must be a DNS label"),
        ({0: {"vmid": 42}}, "vmid must be an integer from 100"),
        ({0: {"role": "agent"}}, "at least one VM must be a server"),
        ({2: {"role": "worker"}}, "role must be server or agent"),
    ],
)
def test_plan_rejects(change, message):
    vms = [vm | change.get(i, {}) for i, vm in enumerate(VMS)]
    with pytest.raises(proxmox.PlanError, match=message):
        proxmox.plan(vms, SETTINGS)


def test_plan_reports_every_problem_at_once():
    vms = [VMS[0] | {"memory": 0}, VMS[1] | {"vmid": 9101}]
    with pytest.raises(proxmox.PlanError) as err:
        proxmox.plan(vms, SETTINGS)
    assert "memory" in str(err.value) and "duplicate vmid" in str(err.value)


def test_plan_rejects_empty_and_bad_settings():
    with pytest.raises(proxmox.PlanError, match="no VMs"):
        proxmox.plan([], SETTINGS)
    with pytest.raises(proxmox.PlanError, match="not a network"):
        proxmox.plan(VMS, SETTINGS | {"subnet": "198.18.50.1/33"})
    with pytest.raises(proxmox.PlanError, match=r"gateway 10\.0\.0\.1 is outside the subnet 198\.18\.50\.0/24"):
        proxmox.plan(VMS, SETTINGS | {"gateway": "10.0.0.1"})
    with pytest.raises(proxmox.PlanError, match="not a valid Proxmox tag"):
        proxmox.plan(VMS, SETTINGS | {"tag": "Net Lab"})


# A fresh clone of a cloud-init template, as PVE returns its config.
CLONE = {"name": "netlab-server-1", "cores": 2, "memory": "2048", "net0": "virtio=BC:24:11:AA:BB:01,bridge=vmbr0",
         "scsi0": "local-lvm:vm-9101-disk-0,size=3G", "ide2": "local-lvm:vm-9101-cloudinit,media=cdrom"}


def test_changes_for_a_fresh_clone():
    vm = proxmox.plan(VMS, SETTINGS)[0]
    assert proxmox.changes(vm, SETTINGS, CLONE) == {
        "cores": 8, "memory": 32768, "cpu": "host", "ipconfig": {"ipconfig0": "ip=198.18.50.11/24,gw=198.18.50.1"},
        "ciuser": "debian", "sshkeys": "ssh-ed25519 AAAAC3Nz lab@controller", "nameservers": ["198.18.50.1"],
        "tags": ["netlab"], "agent": "enabled=1", "ciupgrade": False}


def test_first_boot_upgrade_is_off_unless_asked():
    vm = proxmox.plan(VMS, SETTINGS)[0]
    assert proxmox.changes(vm, SETTINGS, CLONE | {"ciupgrade": "1"})["ciupgrade"] is False
    assert "ciupgrade" not in proxmox.changes(vm, SETTINGS, CLONE | {"ciupgrade": "0"})
    # PVE's default (no key) is to upgrade: asking for it changes nothing.
    assert "ciupgrade" not in proxmox.changes(vm, SETTINGS | {"ci_upgrade": True}, CLONE)


def test_no_changes_once_configured():
    vm = proxmox.plan(VMS, SETTINGS)[0]
    done = CLONE | {"cores": 8, "memory": 32768, "cpu": "host", "ipconfig0": "ip=198.18.50.11/24,gw=198.18.50.1",
                    "ciuser": "debian", "sshkeys": "ssh-ed25519%20AAAAC3Nz%20lab%40controller%0A",
                    "nameserver": "198.18.50.1", "tags": "keep;netlab", "agent": "1", "ciupgrade": "0"}
    assert proxmox.changes(vm, SETTINGS, done) == {}


def test_nic_change_keeps_the_mac_and_tags_are_added():
    vm = proxmox.plan(VMS, SETTINGS)[2]
    current = CLONE | {"tags": "owner-alice"}
    update = proxmox.changes(vm, SETTINGS | {"vlan": 20, "mtu": 9000}, current)
    assert update["net"] == {"net0": "virtio=BC:24:11:AA:BB:01,bridge=vmbr0,tag=20,mtu=9000"}
    assert update["ipconfig"] == {"ipconfig0": "ip=dhcp"}
    assert update["tags"] == ["netlab", "owner-alice"]


@pytest.mark.parametrize(("agent", "enabled"), [("1", True), ("enabled=1", True), ("1,fstrim_cloned_disks=1", True),
                                                ("0", False), ("enabled=0", False), ("", False)])
def test_agent_setting(agent, enabled):
    vm = proxmox.plan(VMS, SETTINGS)[0]
    assert ("agent" not in proxmox.changes(vm, SETTINGS, CLONE | {"agent": agent})) is enabled


CLUSTER = [
    {"vmid": 9000, "name": "debian-13-cloudinit", "template": True, "tags": "netlab"},
    {"vmid": 9101, "name": "netlab-server-1", "template": False, "tags": "netlab", "type": "qemu"},
    {"vmid": 9102, "name": "netlab-agent-1", "template": False, "tags": "", "type": "qemu"},
    {"vmid": 9200, "name": "netlab-db", "template": False, "tags": "prod;netlab-other", "type": "qemu"},
    {"vmid": 9201, "name": "db", "template": False, "tags": "netlab", "type": "qemu"},
]


def test_lab_vms_need_tag_and_prefix():
    assert [vm["vmid"] for vm in proxmox.lab_vms(CLUSTER, "netlab", "netlab-")] == [9101]


def test_taken_vmids():
    planned = proxmox.plan(VMS, SETTINGS)
    # 9101 is the lab's own VM; 9102 has the right name but not the tag.
    assert [vm["vmid"] for vm in proxmox.taken(planned, CLUSTER, "netlab", "netlab-")] == [9102]
    renamed = [planned[0] | {"name": "netlab-server-9"}]
    assert [vm["vmid"] for vm in proxmox.taken(renamed, CLUSTER, "netlab", "netlab-")] == [9101]


def test_guest_ipv4():
    interfaces = [
        {"name": "lo", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]},
        {"name": "eth0", "ip-addresses": [{"ip-address": "198.18.50.23", "ip-address-type": "ipv4", "prefix": 24},
                                          {"ip-address": "fe80::1", "ip-address-type": "ipv6", "prefix": 64}]},
        {"name": "cni0", "ip-addresses": [{"ip-address": "10.42.0.1", "ip-address-type": "ipv4", "prefix": 24}]},
    ]
    assert proxmox.guest_ipv4(interfaces, "198.18.50.0/24") == ["198.18.50.23"]
    assert proxmox.guest_ipv4(None, "198.18.50.0/24") == []
