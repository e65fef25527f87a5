"""site.yml against fakepve: the real community.proxmox modules and proxmoxer over verified TLS.

The Proxmox twin (netlab_twin) boots a real node container for every lab VM fakepve starts.
"""

import re
import subprocess
import threading
import time

import pytest
from fakepve_lab import LAB, SUBNET, TEMPLATE_VMID

from netlab_twin import Twin, playbook

WRITES = ("POST", "PUT", "DELETE")


@pytest.fixture
def lab(fakepve, fakepve_cafile, key, tmp_path):
    twin = Twin(fakepve, subnet=SUBNET)
    twin.add_template(agent=True)
    known_hosts = str(tmp_path / "known_hosts")

    # fakepve 0.5.0 accepts a QEMU disk resize without applying it, so only one test asks for one.
    def play(*args: str, vms=None, env=None, tags="provision", disk_size="") -> subprocess.CompletedProcess:
        proc = playbook(fakepve.url, fakepve_cafile, twin, key, LAB if vms is None else vms, tags, disk_size, args,
                        env, known_hosts)
        print(proc.stdout[-8000:], proc.stderr[-3000:])
        return proc

    play.pve = fakepve
    play.twin = twin
    yield play
    twin.close()
    assert twin.errors == []


def writes(pve) -> list:
    return [r for r in pve.requests if r[0] in WRITES and not r[1].endswith("/access/ticket")]


def lab_vms(pve) -> dict:
    return {vm.vmid: vm for vm in pve.vms if not vm.template and vm.vmid in {v["vmid"] for v in LAB}}


def test_provisions_the_reference_topology_and_reruns_without_change(lab, recap):
    proc = lab()
    assert proc.returncode == 0
    vms = lab_vms(lab.pve)
    assert sorted(vms) == [9101, 9102, 9103]
    for vm in vms.values():
        cfg = vm.config
        assert vm.status == "running"
        assert (int(cfg["cores"]), int(cfg["memory"]), cfg["cpu"]) == (8, 32768, "host")
        assert "netlab" in re.split("[;,]", cfg["tags"])
        assert cfg["net0"].startswith("virtio=") and "bridge=vmbr0" in cfg["net0"]
        assert "lab%40controller" in cfg["sshkeys"] and cfg["ciuser"] == "debian"
    assert vms[9101].config["ipconfig0"] == "ip=198.18.8.11/24,gw=198.18.8.1"
    assert vms[9103].config["ipconfig0"] == "ip=dhcp"
    # The clones ran side by side, not one after the other.
    clones = [t for t in lab.pve.tasklog if t["type"] == "qmclone"]
    assert len(clones) == 3
    # Every VM booted a node, and SSH was reached at its address, the DHCP lease from the guest agent included.
    assert lab.twin.containers() == {9101: "pve-9101", 9102: "pve-9102", 9103: "pve-9103"}
    assert sorted(lab.twin.wait(vmid, 0) for vmid in vms) == ["198.18.8.100", "198.18.8.11", "198.18.8.12"]

    again = lab()
    assert again.returncode == 0
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), recap(again.stdout)


def test_disk_is_grown(lab):
    assert lab(vms=LAB[:1], disk_size="64G").returncode == 0
    resizes = [r for r in lab.pve.requests if r[0] == "PUT" and r[1].endswith("/qemu/9101/resize")]
    assert len(resizes) == 1 and "disk=scsi0" in str(resizes[0][2]) and "size=64G" in str(resizes[0][2])


def test_teardown_leaves_foreign_vms_alone(lab):
    assert lab().returncode == 0
    lab.pve.add_vm(9104, "netlab-agent-3", status="running", config={"tags": "other"})  # the name, not the tag
    lab.pve.add_vm(9300, "database", status="running", config={"tags": "netlab"})  # the tag, not the name
    proc = lab(tags="teardown")
    assert proc.returncode == 0
    left = sorted(vm.vmid for vm in lab.pve.vms)
    assert left == [TEMPLATE_VMID, 9104, 9300]
    deadline = time.monotonic() + 15  # the twin removes a destroyed VM's node on its next look
    while lab.twin.containers():
        assert time.monotonic() < deadline, lab.twin.containers()
        time.sleep(0.1)


def test_bad_input_fails_before_any_api_write(lab):
    cases = [
        ({"vms": [LAB[0], LAB[1] | {"vmid": 9101}]}, "duplicate vmid: 9101"),
        ({"vms": [LAB[0] | {"memory": 0}]}, "memory must be a positive integer, got 0"),
        ({"vms": [LAB[0] | {"ip": "10.0.0.5"}]}, "is not a host address of the subnet 198.18.8.0/24"),
        ({"env": {"PROXMOX_PASSWORD": ""}}, "needs proxmox_vm_api_host, proxmox_vm_api_user and either an API token"),
    ]
    for kwargs, message in cases:
        proc = lab(**kwargs)
        assert proc.returncode != 0 and message in proc.stdout, message
    # A profile the RKE2 release's Cilium chart cannot take, and one that does not exist.
    proc = lab("-e", "cni=cilium", "-e", "cni_profile=tunnel", "-e", "rke2_version=v1.28.15+rke2r1")
    assert proc.returncode != 0 and "RKE2 v1.28.15+rke2r1 is not known to ship Cilium 1.14" in proc.stdout
    proc = lab("-e", "cni=cilium", "-e", "cni_profile=fast")
    assert proc.returncode != 0 and "no profile 'fast' for cilium" in proc.stdout
    proc = lab("-e", "proxmox_vm_template=debian-14")
    assert proc.returncode != 0 and "No template debian-14 on the cluster" in proc.stdout
    lab.pve.add_vm(9102, "someone-elses", status="running")
    proc = lab()
    assert proc.returncode != 0 and "VMID 9102 is already 'someone-elses'" in proc.stdout
    assert writes(lab.pve) == []


def test_wrong_password_is_a_clear_failure(lab):
    proc = lab(env={"PROXMOX_PASSWORD": "wrong"})
    assert proc.returncode != 0
    assert "authentication failure" in proc.stdout or "Couldn't authenticate" in proc.stdout
    assert "wrong" not in proc.stdout.replace("wrong password", "")
    assert writes(lab.pve) == []


def test_locked_template_is_retried(lab):
    template = lab.pve.vm(TEMPLATE_VMID)
    template.lock = "backup"

    def backup_ends():  # one second after the first clone met the lock
        while not any(r[0] == "POST" and r[1].endswith(f"/qemu/{TEMPLATE_VMID}/clone") for r in lab.pve.requests):
            threading.Event().wait(0.05)
        threading.Event().wait(1)
        template.lock = None

    threading.Thread(target=backup_ends, daemon=True).start()
    proc = lab()
    assert proc.returncode == 0
    assert "FAILED - RETRYING: [netlab-server-1 -> localhost]: Clone" in proc.stdout
    assert sorted(lab_vms(lab.pve)) == [9101, 9102, 9103]


def test_failed_clone_task_shows_proxmox_reason(lab):
    lab.pve.storages["local-lvm"]["avail"] = 1024 ** 3  # less than the template's 3 GiB disk
    proc = lab(vms=LAB[:1])
    assert proc.returncode != 0
    assert ("Cloning debian-13-cloudinit to netlab-server-1 (9101) failed: clone failed: unable to write to "
            "storage 'local-lvm': No space left on device") in proc.stdout
    assert any(t["exitstatus"].startswith("clone failed") for t in lab.pve.tasklog if t["type"] == "qmclone")


@pytest.mark.fakepve(time_scale=0.05)
def test_slow_start_and_slow_api(lab):
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


def test_expired_ticket_is_retried(lab):
    lab.pve.fail("GET", "/cluster/resources", error="invalid_ticket", times=1)
    proc = lab(vms=LAB[:1])
    assert proc.returncode == 0
    assert "FAILED - RETRYING: [localhost]: Read the cluster's VMs" in proc.stdout
