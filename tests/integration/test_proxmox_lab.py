"""site.yml against fakepve: the real community.proxmox modules and proxmoxer over verified TLS.

The Proxmox twin (netlab_twin) boots a real node container for every lab VM fakepve starts. One fake
cluster and one twin serve the module; each test (or the fixture it reads) first puts the cluster back to
the template alone, with its own request log (clean). Tests that only read what one provision did share it.
"""

import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakepve_lab import LAB, SUBNET, TEMPLATE_VMID

from netlab_twin import Twin, playbook, serve

WRITES = ("POST", "PUT", "DELETE")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, key):
    tmp = tmp_path_factory.mktemp("proxmox-lab")
    with serve(tmp) as (pve, cafile), Twin(pve, subnet=SUBNET) as twin:
        twin.add_template(agent=True)

        # fakepve 0.5.0 accepts a QEMU disk resize without applying it, so only one test asks for one.
        def play(*args: str, vms=None, env=None, tags="provision", disk_size="", known_hosts="",
                 ) -> subprocess.CompletedProcess:
            proc = playbook(pve.url, cafile, twin, key, LAB if vms is None else vms, tags, disk_size, args, env,
                            known_hosts or str(tmp / "known_hosts"))
            print(proc.stdout[-8000:], proc.stderr[-3000:])
            return proc

        play.pve, play.twin = pve, twin
        yield play
        assert twin.errors == []


def clean(cluster) -> None:
    """The template alone, as a new cluster: other VMs and their disks gone (the twin removes their nodes),
    the settings a test changes back to fakepve's, an empty request and task log."""
    pve, twin = cluster.pve, cluster.twin
    gone = {vm.vmid for vm in pve.vms if vm.vmid != TEMPLATE_VMID}
    pve.vms[:] = [vm for vm in pve.vms if vm.vmid == TEMPLATE_VMID]
    for store in pve.storages.values():
        if store.get("type") == "lvmthin":
            store.pop("avail", None)  # fakepve's own: as much as asked
        volumes = store.get("volumes") or {}
        for name in [name for name, volume in volumes.items() if volume.get("vmid") in gone]:
            del volumes[name]
    pve.vm(TEMPLATE_VMID).lock = None
    pve.nodes.clear()
    pve.add_node("pve1")
    pve.time_scale = 0
    pve.slow_network(0)
    pve.apitokens.clear()
    pve.failures.clear()
    twin.start_secs = 0
    deadline = time.monotonic() + 30
    while twin.containers():
        assert time.monotonic() < deadline, twin.containers()
        time.sleep(0.1)
    pve.requests.clear()
    pve.tasklog.clear()
    errors, twin.errors[:] = list(twin.errors), []
    assert errors == []


@pytest.fixture
def lab(cluster, tmp_path):
    """The module's cluster, clean, with a known_hosts of the test's own."""
    clean(cluster)

    def play(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return cluster(*args, known_hosts=str(tmp_path / "known_hosts"), **kwargs)

    play.pve, play.twin = cluster.pve, cluster.twin
    yield play
    assert cluster.twin.errors == []


def writes(pve) -> list:
    return [r for r in pve.requests if r[0] in WRITES and not r[1].endswith("/access/ticket")]


def lab_vms(pve) -> dict:
    return {vm.vmid: vm for vm in pve.vms if not vm.template and vm.vmid in {v["vmid"] for v in LAB}}


# A cluster of three PVE nodes (fakepve's nodes, each with its own local-lvm): the template named alike on pve1
# and pve2, another name on pve3 given in the per-node map.
THREE_NODES = ("-e", '{"proxmox_vm_node_templates": {"pve3": "base-pve3"}}')


def three_nodes(pve, twin) -> None:
    pve.add_node("pve2")
    pve.add_node("pve3")
    for vmid, node, name in ((9001, "pve2", "debian-13-cloudinit"), (9002, "pve3", "base-pve3")):
        twin.add_template(agent=True, vmid=vmid, name=name, node=node)


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory) -> dict:
    """The reference topology spread over three PVE nodes, while a backup holds the lock of the server's template
    (pve3's) for a second, then again."""
    clean(cluster)
    pve = cluster.pve
    three_nodes(pve, cluster.twin)
    template = pve.vm(9002)
    template.lock = "backup"

    def backup_ends():  # one second after the server's clone met the lock
        while not any(r[0] == "POST" and r[1].endswith("/qemu/9002/clone") for r in pve.requests):
            threading.Event().wait(0.05)
        threading.Event().wait(1)
        template.lock = None

    threading.Thread(target=backup_ends, daemon=True).start()
    known_hosts = str(tmp_path_factory.mktemp("reference") / "known_hosts")
    proc = cluster(*THREE_NODES, known_hosts=known_hosts)
    vms = sorted(lab_vms(pve))
    clones = [t for t in pve.tasklog if t["type"] == "qmclone"]
    posts = {r[1]: r[2].decode() for r in pve.requests if r[0] == "POST" and r[1].endswith("/clone")}
    again = cluster(*THREE_NODES, known_hosts=known_hosts)
    return {"proc": proc, "vms": vms, "clones": clones, "posts": posts, "again": again, "known_hosts": known_hosts}


def test_provisions_the_reference_topology_and_reruns_without_change(reference, cluster, recap):
    assert reference["proc"].returncode == 0
    vms = lab_vms(cluster.pve)
    assert sorted(vms) == [9101, 9102, 9103]
    for vm in vms.values():
        cfg = vm.config
        assert vm.status == "running"
        assert (int(cfg["cores"]), int(cfg["memory"]), cfg["cpu"]) == (1, 1024, "host")  # netlab_twin.playbook's
        assert "netlab" in re.split("[;,]", cfg["tags"])
        assert cfg["net0"].startswith("virtio=") and "bridge=vmbr0" in cfg["net0"]
        assert "lab%40controller" in cfg["sshkeys"] and cfg["ciuser"] == "debian"
    assert vms[9101].config["ipconfig0"] == "ip=198.18.8.11/24,gw=198.18.8.1"
    assert vms[9103].config["ipconfig0"] == "ip=dhcp"
    # Spread: the benchmark's pair (the first two agents) on two PVE nodes, the server on the third, each cloned
    # from its node's own template (local storage: no clone crosses nodes); the clones ran side by side.
    assert {vm.name: vm.node for vm in vms.values()} == {"netlab-agent-1": "pve1", "netlab-agent-2": "pve2",
                                                         "netlab-server-1": "pve3"}
    assert set(reference["posts"]) == {"/api2/json/nodes/pve1/qemu/9000/clone", "/api2/json/nodes/pve2/qemu/9001/clone",
                                       "/api2/json/nodes/pve3/qemu/9002/clone"}
    assert not any("target=" in body for body in reference["posts"].values())
    assert "pve1: netlab-agent-1; pve2: netlab-agent-2; pve3: netlab-server-1" in reference["proc"].stdout
    assert len(reference["clones"]) == 3
    # Every VM booted a node, and SSH was reached at its address, the DHCP lease from the guest agent included.
    assert cluster.twin.containers() == {9101: "pve-9101", 9102: "pve-9102", 9103: "pve-9103"}
    assert sorted(cluster.twin.wait(vmid, 0) for vmid in vms) == ["198.18.8.100", "198.18.8.11", "198.18.8.12"]

    again = reference["again"]
    assert again.returncode == 0
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), recap(again.stdout)


def test_locked_template_is_retried(reference):
    proc = reference["proc"]
    assert proc.returncode == 0
    assert "FAILED - RETRYING: [netlab-server-1 -> localhost]: Clone" in proc.stdout
    assert reference["vms"] == [9101, 9102, 9103]


def test_teardown_leaves_foreign_vms_alone(reference, cluster):
    """The reference lab's teardown, on every node."""
    assert reference["proc"].returncode == 0
    pve = cluster.pve
    pve.add_vm(9104, "netlab-agent-3", status="running", config={"tags": "other"})  # the name, not the tag
    pve.add_vm(9300, "database", status="running", config={"tags": "netlab"})  # the tag, not the name
    proc = cluster(tags="teardown", known_hosts=reference["known_hosts"])
    assert proc.returncode == 0
    left = sorted(vm.vmid for vm in pve.vms)
    assert left == [TEMPLATE_VMID, 9001, 9002, 9104, 9300]
    deadline = time.monotonic() + 15  # the twin removes a destroyed VM's node on its next look
    while cluster.twin.containers():
        assert time.monotonic() < deadline, cluster.twin.containers()
        time.sleep(0.1)


# Inputs refused before any API write, each with the words that must say why. proxmox.plan reports every
# problem of the VM list at once: three in one run. The other checks stop at their first problem.
REFUSALS = [
    ({"vms": [LAB[0] | {"memory": 0}, LAB[1] | {"vmid": 9101, "ip": "10.0.0.5"}]},
     ["duplicate vmid: 9101", "memory must be a positive integer, got 0",
      "ip 10.0.0.5 is not a host address of the subnet 198.18.8.0/24"]),
    ({"env": {"PROXMOX_PASSWORD": ""}}, ["needs proxmox_vm_api_host, proxmox_vm_api_user and either an API token"]),
    # A profile the RKE2 release's Cilium chart cannot take, and one that does not exist.
    ({"args": ("-e", "cni=cilium", "-e", "cni_profile=tunnel", "-e", "rke2_version=v1.28.15+rke2r1")},
     ["RKE2 v1.28.15+rke2r1 is not known to ship Cilium 1.14"]),
    ({"args": ("-e", "cni=cilium", "-e", "cni_profile=fast")}, ["no profile 'fast' for cilium"]),
    ({"args": ("-e", "proxmox_vm_template=debian-14")}, ["No template debian-14 on the cluster"]),
]


# Placements refused before any API write, on the three-node cluster (each problem named). The first four meet a
# cluster without pve2's template and with pve3 offline; the others the three nodes as made.
PLACEMENT_REFUSALS = [
    # The template of pve1 is on local storage, and pve2 has none of its own.
    ({"vms": [LAB[0] | {"node": "pve2"}]},
     ["netlab-server-1 is to run on pve2, but the template debian-13-cloudinit (9000) is on pve1 with disks on "
      "local storage (local-lvm): PVE clones it to no other node"]),
    ({"vms": [LAB[0] | {"node": "pve3"}]}, ["netlab-server-1 is to run on pve3, which is offline"]),
    ({"vms": [LAB[0] | {"node": "pve9"}]}, ["netlab-server-1 is to run on pve9, which the cluster lacks"]),
    ({"args": ("-e", "proxmox_vm_placement=packed")},
     ["proxmox_vm_placement must be one of: spread, template, got: packed"]),
    # The three nodes as made.
    ({"args": ("-e", '{"proxmox_vm_node_templates": {"pve3": "netlab-web"}}')},
     ["proxmox_vm_node_templates: netlab-web on pve3 is a VM, not a template"]),
    ({"args": ("-e", "proxmox_vm_placement=template", "-e", "proxmox_vm_cores=2")},
     ["the lab's VMs on pve1 would ask 6 cores of its 4 (an overcommitted CPU pollutes the figures)"]),
    # bench_distinct_hosts: the whole lab on one host, and a pair named on one host.
    ({"args": ("-e", "proxmox_vm_placement=template", "-e", "bench_distinct_hosts=true")},
     ["bench_distinct_hosts: every node runs on one host (pve1)"]),
    ({"vms": [LAB[0] | {"node": "pve2"}, LAB[1] | {"node": "pve1"}, LAB[2] | {"node": "pve1"}],
      "args": ("-e", '{"bench_distinct_hosts": true, "netlab_bench_nodes": ["netlab-agent-1", "netlab-agent-2"]}')},
     ["bench_distinct_hosts: the cross-node pair netlab-agent-1 and netlab-agent-2 both run on pve1"]),
]


@pytest.fixture(scope="module")
def refused(cluster, tmp_path_factory) -> dict:
    """On the three-node cluster: the refusals, the placements as made and a login with a wrong password, four at
    a time (none writes); then the placements that meet a cluster without pve2's template and with pve3 offline;
    last a VMID that is already someone else's (that VM would stop the others at their VMID check)."""
    clean(cluster)
    pve = cluster.pve
    three_nodes(pve, cluster.twin)
    pve.add_vm(9200, "netlab-web", node="pve3", status="stopped")
    known_hosts = str(tmp_path_factory.mktemp("refused") / "known_hosts")

    def run(kwargs: dict) -> subprocess.CompletedProcess:
        return cluster(*kwargs.get("args", ()), vms=kwargs.get("vms"), env=kwargs.get("env"), known_hosts=known_hosts)

    as_made = REFUSALS + PLACEMENT_REFUSALS[4:]
    with ThreadPoolExecutor(max_workers=4) as pool:
        *procs, wrong = pool.map(run, [kwargs for kwargs, _ in as_made] + [{"env": {"PROXMOX_PASSWORD": "wrong"}}])
        template = pve.vm(9001)
        pve.vms.remove(template)
        pve.set_node_offline("pve3")
        placements = list(pool.map(run, [kwargs for kwargs, _ in PLACEMENT_REFUSALS[:4]]))
        pve.vms.append(template)
        pve.set_node_offline("pve3", offline=False)
    pve.add_vm(9102, "someone-elses", status="running")
    taken = run({})
    return {"procs": procs[:len(REFUSALS)], "placements": placements + procs[len(REFUSALS):], "wrong": wrong,
            "taken": taken, "writes": writes(pve)}


def test_bad_input_fails_before_any_api_write(refused):
    for (_, messages), proc in zip(REFUSALS + PLACEMENT_REFUSALS, refused["procs"] + refused["placements"],
                                   strict=True):
        for message in messages:
            assert proc.returncode != 0 and message in proc.stdout, message
    proc = refused["taken"]
    assert proc.returncode != 0 and "VMID 9102 is already 'someone-elses'" in proc.stdout
    assert refused["writes"] == []


def test_wrong_password_is_a_clear_failure(refused):
    proc = refused["wrong"]
    assert proc.returncode != 0
    assert "authentication failure" in proc.stdout or "Couldn't authenticate" in proc.stdout
    assert "wrong" not in proc.stdout.replace("wrong password", "")
    assert refused["writes"] == []


@pytest.fixture(scope="module")
def one_vm(cluster) -> subprocess.CompletedProcess:
    """One VM provisioned with a larger disk, while the API's first answer says the login ticket expired."""
    clean(cluster)
    cluster.pve.fail("GET", "/cluster/resources", error="invalid_ticket", times=1)
    return cluster(vms=LAB[:1], disk_size="64G"), list(cluster.pve.requests)


def test_disk_is_grown(one_vm):
    proc, requests = one_vm
    assert proc.returncode == 0
    resizes = [r for r in requests if r[0] == "PUT" and r[1].endswith("/qemu/9101/resize")]
    assert len(resizes) == 1 and "disk=scsi0" in str(resizes[0][2]) and "size=64G" in str(resizes[0][2])


def test_expired_ticket_is_retried(one_vm):
    proc, _ = one_vm
    assert proc.returncode == 0
    assert "FAILED - RETRYING: [localhost]: Read the cluster's VMs" in proc.stdout


def test_failed_clone_task_shows_proxmox_reason(lab):
    lab.pve.storages["local-lvm"]["avail"] = 1024 ** 3  # less than the template's 3 GiB disk
    proc = lab(vms=LAB[:1])
    assert proc.returncode != 0
    assert ("Cloning debian-13-cloudinit to netlab-server-1 (9101) failed: clone failed: unable to write to "
            "storage 'local-lvm': No space left on device") in proc.stdout
    assert any(t["exitstatus"].startswith("clone failed") for t in lab.pve.tasklog if t["type"] == "qmclone")


def test_slow_start_and_slow_api(lab):
    lab.pve.time_scale = 0.05
    lab.pve.slow_network(2)  # 0.1 s on every answer
    lab.twin.start_secs = 60  # 3 s here, longer than the clone's own wait for its task
    proc = lab(vms=LAB[:1])
    assert proc.returncode == 0
    assert any(t["type"] == "qmstart" and t["endtime"] - t["starttime"] >= 2 for t in lab.pve.tasklog)
    assert lab_vms(lab.pve)[9101].status == "running"


def test_api_token_login_keeps_the_secret_out_of_the_output(lab):
    secret = "5f0c7e0e-token-secret-only-for-this-test"
    lab.pve.apitokens["root@pam!ansible"] = secret
    proc = lab("-v", vms=LAB[:1], env={"PROXMOX_PASSWORD": "", "PROXMOX_TOKEN_ID": "ansible",
                                       "PROXMOX_TOKEN_SECRET": secret})
    assert proc.returncode == 0
    assert secret not in proc.stdout + proc.stderr
    assert not any(r[1].endswith("/access/ticket") for r in lab.pve.requests), "the token is used, not a password"
