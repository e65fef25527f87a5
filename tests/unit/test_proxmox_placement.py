"""The Proxmox lab's placement over a PVE cluster (proxmox_placement.place), on the shapes the API answers:
/nodes (proxmox_node_info), /storage (proxmox_storage_info, its lists split), /cluster/resources
(proxmox_vm_info) and a template's /config."""

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import proxmox_placement as pp

GIB = 1024 ** 3


def node(name, status="online", cpus=16, mem_gib=64, used_gib=4):
    return {"node": name, "status": status, "type": "node", "maxcpu": cpus, "maxmem": mem_gib * GIB,
            "mem": used_gib * GIB}


STORAGES = [
    {"storage": "local", "type": "dir", "content": ["iso", "vztmpl", "backup"], "shared": False},
    {"storage": "local-lvm", "type": "lvmthin", "content": ["images", "rootdir"], "shared": False},
    {"storage": "ceph", "type": "rbd", "content": ["images"], "shared": True},
    {"storage": "nfs-a", "type": "nfs", "content": ["images"], "shared": True, "nodes": ["pve1", "pve2"]},
]
LOCAL = {"scsi0": "local-lvm:base-9000-disk-0,size=3G", "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
         "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0"}
SHARED = {"scsi0": "ceph:base-9000-disk-0,size=3G", "ide2": "ceph:vm-9000-cloudinit,media=cdrom"}
LAB = [{"name": "netlab-server-1", "vmid": 9101, "role": "server", "cores": 4, "memory": 8192, "ip": "dhcp"},
       {"name": "netlab-agent-1", "vmid": 9102, "role": "agent", "cores": 4, "memory": 8192, "ip": "dhcp"},
       {"name": "netlab-agent-2", "vmid": 9103, "role": "agent", "cores": 4, "memory": 8192, "ip": "dhcp"}]
PAIR = ["netlab-agent-1", "netlab-agent-2"]


def template(vmid=9000, node_name="pve1", name="debian-13-cloudinit"):
    return {"vmid": vmid, "name": name, "node": node_name, "template": 1, "type": "qemu", "status": "stopped"}


def place(vms=LAB, placement="spread", nodes=None, cluster_vms=None, configs=None, node_templates=None,
          lab_node="", storage="", pair=PAIR):
    return pp.place(vms, placement=placement, template="debian-13-cloudinit", node_templates=node_templates or {},
                    lab_node=lab_node, nodes=nodes or [node("pve1"), node("pve2"), node("pve3")],
                    storages=STORAGES, cluster_vms=cluster_vms if cluster_vms is not None else [template()],
                    template_configs=configs or {9000: SHARED}, pair=pair, storage=storage)


def where(result):
    return {vm["name"]: vm["node"] for vm in result["vms"]}


def test_spread_puts_the_pair_on_two_nodes_and_the_server_on_the_third():
    result = place()
    assert result["problems"] == [], result
    assert where(result) == {"netlab-agent-1": "pve1", "netlab-agent-2": "pve2", "netlab-server-1": "pve3"}
    # From shared storage: every clone comes from the one template, with target where it is another node.
    assert {vm["template"]["vmid"] for vm in result["vms"]} == {9000}


def test_spread_over_two_nodes_keeps_the_pair_apart():
    result = place(nodes=[node("pve1"), node("pve2")])
    assert result["problems"] == []
    placed = where(result)
    assert placed["netlab-agent-1"] != placed["netlab-agent-2"]


def test_template_placement_keeps_every_vm_on_the_templates_node():
    result = place(placement="template")
    assert set(where(result).values()) == {"pve1"} and result["problems"] == []
    assert any("share pve1" in note for note in result["notes"])


def test_a_local_storage_template_spreads_only_where_it_can_be_cloned_and_says_so():
    result = place(configs={9000: LOCAL})
    assert result["problems"] == []
    assert set(where(result).values()) == {"pve1"}
    assert any("spread over 1 of 3 online nodes" in n and "local storage (local-lvm)" in n for n in result["notes"])


def test_a_local_storage_template_is_refused_for_a_vm_named_on_another_node_with_the_reason():
    vms = [LAB[0], LAB[1] | {"node": "pve2"}, LAB[2]]
    result = place(vms=vms, configs={9000: LOCAL})
    assert result["problems"] == [
        "netlab-agent-1 is to run on pve2, but the template debian-13-cloudinit (9000) is on pve1 with disks on local "
        "storage (local-lvm): PVE clones it to no other node; give pve2 a template of its own (a template named "
        "debian-13-cloudinit there, or proxmox_vm_node_templates)"]


def test_templates_of_the_same_name_on_each_node_and_a_per_node_map():
    cluster = [template(9000, "pve1"), template(9001, "pve2"), template(9002, "pve3", name="base-pve3")]
    configs = {9000: LOCAL, 9001: LOCAL | {"scsi0": "local-lvm:base-9001-disk-0"}, 9002: LOCAL}
    result = place(cluster_vms=cluster, configs=configs, node_templates={"pve3": "base-pve3"})
    assert result["problems"] == [], result
    by_name = {vm["name"]: vm for vm in result["vms"]}
    assert {n: (vm["node"], vm["template"]["vmid"]) for n, vm in by_name.items()} == {
        "netlab-agent-1": ("pve1", 9000), "netlab-agent-2": ("pve2", 9001), "netlab-server-1": ("pve3", 9002)}


def test_a_map_naming_a_vm_that_is_not_a_template_or_a_node_the_cluster_lacks():
    cluster = [template(), {"vmid": 120, "name": "web", "node": "pve2", "template": 0, "type": "qemu"}]
    result = place(cluster_vms=cluster, node_templates={"pve2": "web", "pve9": 9000})
    assert "proxmox_vm_node_templates: web on pve2 is a VM, not a template (convert it with qm template, " \
           "or name a template)" in result["problems"]
    assert any(p.startswith("proxmox_vm_node_templates names node pve9, which the cluster lacks")
               for p in result["problems"])


def test_an_offline_node_is_skipped_by_spread_and_refused_when_named():
    nodes = [node("pve1"), node("pve2", status="offline"), node("pve3")]
    result = place(nodes=nodes)
    assert result["problems"] == [] and "pve2" not in where(result).values()
    named = place(vms=[LAB[0] | {"node": "pve2"}, *LAB[1:]], nodes=nodes)
    assert "netlab-server-1 is to run on pve2, which is offline" in named["problems"]
    lacks = place(vms=[LAB[0] | {"node": "pve7"}, *LAB[1:]])
    assert lacks["problems"] == ["netlab-server-1 is to run on pve7, which the cluster lacks (nodes: pve1, pve2, pve3)"]


def test_a_node_too_small_for_its_vms():
    small = [node("pve1", cpus=8, mem_gib=16, used_gib=2)]
    result = place(nodes=small, placement="template")
    assert "the lab's VMs on pve1 would ask 12 cores of its 8 (an overcommitted CPU pollutes the figures)" \
        in result["problems"]
    result = place(nodes=[node("pve1", cpus=64, mem_gib=16, used_gib=2)], placement="template")
    assert result["problems"] == ["the VMs to clone on pve1 would need 16.0 GiB of memory, 14.0 GiB is free",
                                  "the VMs to clone on pve1 would need 24.0 GiB of memory, 14.0 GiB is free"]
    big = place(vms=[LAB[0] | {"cores": 32}], nodes=[node("pve1")], pair=[])
    assert big["problems"] == ["no node holds netlab-server-1 (32 cores, 8192 MiB): netlab-server-1 asks 32 cores, "
                               "pve1 has 16"]


def test_spread_goes_round_a_node_that_is_full():
    nodes = [node("pve1", mem_gib=10, used_gib=4), node("pve2"), node("pve3")]
    result = place(nodes=nodes)
    assert result["problems"] == [] and "pve1" not in where(result).values()


def test_a_rerun_keeps_vms_where_they_run_and_a_moved_vm_is_refused():
    cluster = [template(), {"vmid": 9102, "name": "netlab-agent-1", "node": "pve3", "template": 0, "type": "qemu"}]
    result = place(cluster_vms=cluster)
    assert where(result)["netlab-agent-1"] == "pve3" and result["problems"] == []
    assert where(result)["netlab-agent-2"] != "pve3"
    assert [vm["exists"] for vm in result["vms"]] == [False, True, False]
    moved = place(vms=[LAB[0], LAB[1] | {"node": "pve1"}, LAB[2]], cluster_vms=cluster)
    assert moved["problems"] == ["netlab-agent-1 (9102) runs on pve3, the plan puts it on pve1: a clone cannot move "
                                 "it (migrate it with qm migrate, or tear the lab down)"]


def test_storage_rules_of_clone_vm():
    # A target storage that is not shared cannot take a clone to another node; one pve3 cannot use is refused.
    result = place(vms=[LAB[0] | {"node": "pve2"}], storage="local-lvm", pair=[])
    assert result["problems"] == [
        "netlab-server-1 is to run on pve2, but proxmox_vm_storage local-lvm is not shared: PVE clones to another node "
        "only onto shared storage; give pve2 a template of its own (a template named debian-13-cloudinit there, or "
        "proxmox_vm_node_templates)"]
    result = place(vms=[LAB[0] | {"node": "pve3"}], storage="nfs-a", pair=[])
    assert result["problems"] == ["netlab-server-1 is to run on pve3, but storage nfs-a is not available on pve3 "
                                  "(storage.cfg nodes or disable)"]
    assert place(vms=[LAB[0] | {"node": "pve2"}], storage="nfs-a", pair=[])["problems"] == []


def test_the_lab_node_pins_every_vm_and_a_word_we_do_not_know_is_refused():
    assert set(where(place(lab_node="pve2")).values()) == {"pve2"}
    assert place(placement="packed")["problems"][0] == \
        "proxmox_vm_placement must be one of spread, template, got 'packed'"


def test_no_template_at_all():
    result = place(cluster_vms=[])
    assert result["problems"] == ["No template debian-13-cloudinit on the cluster (templates: none). Make a "
                                  "cloud-init template first (README)."]


@pytest.mark.parametrize(("config", "storages"), [
    (LOCAL, ["local-lvm"]), (SHARED, ["ceph"]),
    ({"scsi0": "ceph:vm-1-disk-0", "ide2": "local:iso/debian.iso,media=cdrom", "efidisk0": "local-lvm:vm-1-disk-1"},
     ["ceph", "local-lvm"]),
    ({"ide2": "none,media=cdrom", "virtio0": "/dev/sdb"}, []),
])
def test_disk_storages(config, storages):
    assert pp.disk_storages(config) == storages
