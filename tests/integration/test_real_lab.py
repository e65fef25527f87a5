"""The real-lab path end to end on the Proxmox twin: fakepve is the API, real node containers are the VMs.

Everything runs as a user of a real Proxmox lab would run it: site.yml on the proxmox inventory, over
real SSH as the cloud-init user with become, the controller's keys and known_hosts in a temporary home.
The tests share one fake cluster and one history, each step a module fixture that asks for the one before
(so a test also runs alone): the RKE2 flow up to its download, the datapath model benchmarked on the VMs it
left, a rebuild at the same addresses, the report, and the teardowns a failed lab needs.
"""

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof
from netlab_twin import TEMPLATE_VMID, Twin, login, playbook, serve

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("podman"), reason="the twin boots podman nodes as root"
)

SERVER = {"name": "netlab-server-1", "vmid": 9101, "role": "server", "ip": "198.18.9.11"}
AGENT = {"name": "netlab-agent-1", "vmid": 9102, "role": "agent", "ip": "198.18.9.12"}
LAB = [SERVER, AGENT]
FOREIGN = 9300
# The model's benchmark (short, see conftest.short_bench): the wire, a pod pair on two nodes and on one.
MATRIX = ["-e", json.dumps({"bench_matrix": [
    {"name": "host-tcp-1", "placement": "host"},
    {"name": "cross-node-tcp-1", "placement": "cross-node"},
    {"name": "same-node-tcp-1", "placement": "same-node"}]})]


def user_known_hosts() -> Path:
    """OpenSSH's own ~/.ssh/known_hosts: the passwd home, whatever $HOME says."""
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "known_hosts"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture(scope="module")
def lab(tmp_path_factory, key, short_bench, latest_summary):
    tmp = tmp_path_factory.mktemp("real-lab")
    home, results = tmp / "home", tmp / "results"
    home.mkdir()
    before = digest(user_known_hosts())
    # Its own network: the twin's own tests use the default one.
    with serve(tmp) as (pve, cafile), Twin(pve, subnet="198.18.9.0/24", network="netlab-twin-lab",
                                            prefix="lab-") as twin:
        twin.add_template(agent=True)
        twin.add_template(agent=False, vmid=9001, name="debian-13-genericcloud")
        pve.add_vm(FOREIGN, "database", status="running", config={"tags": "netlab"})  # the tag, not the prefix

        def play(*args: str, tags: str = "all", vms=None, env=None, charts=False) -> subprocess.CompletedProcess:
            # HOME is the controller's: the rke2 token and the lab's known_hosts go below it by default.
            # Charts only where a test reads one.
            proc = playbook(pve.url, cafile, twin, key, LAB if vms is None else vms, tags,
                            args=("-e", f"netlab_results_dir={results}", *args),
                            env={"HOME": str(home), "NETLAB_CHARTS": str(charts).lower(), **(env or {})})
            print(proc.stdout[-8000:], proc.stderr[-3000:])
            return proc

        play.pve, play.twin, play.home, play.results, play.key = pve, twin, home, results, key[0]
        play.known_hosts = home / ".config" / "netlab" / "known_hosts"
        play.bench = [*short_bench, *MATRIX]
        play.summary = lambda: latest_summary(results)
        yield play
        assert not twin.errors
    assert digest(user_known_hosts()) == before, "the user's ~/.ssh/known_hosts was edited"


def ssh(lab, address: str, command: str) -> subprocess.CompletedProcess:
    """A command on a node over SSH as the cloud user, with the lab's known_hosts."""
    return login(lab.key, address, lab.known_hosts, command)


def lab_vmids(pve) -> list[int]:
    return sorted(vm.vmid for vm in pve.vms if not vm.template and vm.vmid != FOREIGN)


@pytest.fixture(scope="module")
def rke2_flow(lab) -> SimpleNamespace:
    """provision,cluster with RKE2 whose install script cannot be fetched, and what the server then holds."""
    proc = lab("-e", "rke2_install_script_url=http://127.0.0.1:9/install.sh", tags="provision,cluster")
    whoami = ssh(lab, SERVER["ip"], "whoami && sudo -n stat -c '%U %a' /etc/rancher/rke2/config.yaml "
                                    "&& systemctl is-enabled apt-daily.timer")
    config = ssh(lab, SERVER["ip"], "sudo -n cat /etc/rancher/rke2/config.yaml").stdout
    known = lab.known_hosts.read_text() if lab.known_hosts.exists() else ""
    return SimpleNamespace(proc=proc, whoami=whoami, config=config, known=known)


def test_rke2_flow_runs_as_the_cloud_user_up_to_the_download(lab, rke2_flow):
    proc = rke2_flow.proc
    assert proc.returncode != 0
    assert "Could not fetch the RKE2 install script from http://127.0.0.1:9/install.sh" in proc.stdout
    assert "rke2_install_method=airgap" in proc.stdout
    # Everything before the download ran over SSH as debian, as root only where it asked for become.
    for vm in LAB:
        assert re.search(rf"^{vm['name']}\s+: ok=\d+ .*failed=1", proc.stdout, re.MULTILINE), vm["name"]
    whoami = rke2_flow.whoami
    assert whoami.stdout.split() == ["debian", "root", "600", "masked"], whoami.stdout + whoami.stderr
    config = rke2_flow.config
    assert "node-name: netlab-server-1" in config and "node-ip: 198.18.9.11" in config
    assert "cni: canal" in config
    # The lab's own known_hosts holds both nodes' keys; the controller's home has no other.
    assert len(rke2_flow.known.splitlines()) >= len(LAB)
    assert not (lab.home / ".ssh" / "known_hosts").exists()


def model_run(lab, cni: str, charts: bool = False, profile: str = "") -> SimpleNamespace:
    proc = lab("-e", f"cni={cni}", "-e", "netlab_cluster=model", *(("-e", f"cni_profile={profile}") if profile else ()),
               *lab.bench, charts=charts)
    return SimpleNamespace(proc=proc, summary=lab.summary() if proc.returncode == 0 else {},
                           report=(lab.results / "latest" / "report.md").read_text() if proc.returncode == 0 else "")


def check_model_run(run: SimpleNamespace, cni: str) -> None:
    assert run.proc.returncode == 0
    summary = run.summary
    assert summary["complete"] and summary["provider"] == "proxmox" and summary["cni"] == cni
    assert [r["scenario"] for r in summary["results"]] == ["host-tcp-1", "cross-node-tcp-1", "same-node-tcp-1"]
    assert all(r["gbps_median"] > 0 for r in summary["results"]), summary["results"]


@pytest.fixture(scope="module")
def canal_model(lab, rke2_flow) -> SimpleNamespace:
    """The Canal model benchmarked on the VMs the RKE2 flow left (charts drawn: a test reads one), and what
    the agent shows right after."""
    run = model_run(lab, "canal", charts=True)
    run.fact = json.loads(ssh(lab, AGENT["ip"], "cat /etc/ansible/facts.d/netlab.fact").stdout or "{}")
    nic = ssh(lab, AGENT["ip"], "ip -j -4 route get 198.18.9.11").stdout
    run.device = json.loads(nic)[0]["dev"] if nic else ""
    run.mtu = ssh(lab, AGENT["ip"], f"cat /sys/class/net/{run.device}/mtu").stdout
    run.flannel = ssh(lab, AGENT["ip"], "ip -d link show flannel.1").stdout
    run.meta = json.loads((lab.results / "latest" / "run.json").read_text()) if run.proc.returncode == 0 else {}
    run.dir = (lab.results / "latest").resolve()
    return run


def test_model_on_the_vms_is_benchmarked_and_reported(lab, canal_model):
    check_model_run(canal_model, "canal")
    assert "BENCHMARK SUMMARY" in canal_model.proc.stdout
    meta = canal_model.meta
    # The model sits on the VM's own NIC and MTU, not on the local lab's eth0.
    fact, device, mtu = canal_model.fact, canal_model.device, int(canal_model.mtu)
    assert (fact["interface"], fact["link_mtu"], fact["mtu"]) == (device, mtu, mtu - 50)
    assert f"dev {device}" in canal_model.flannel
    assert meta["provider"] == "proxmox" and meta["cni"] == "canal" and meta["transport"] == "local"
    # Benchmark hygiene, recorded: apt's timers masked, no package upgrade at first boot.
    for vm in LAB:
        prep = meta["preparation"][vm["name"]]
        assert prep["masked_units"] == ["apt-daily.timer", "apt-daily-upgrade.timer"], prep
        assert prep["first_boot_upgrade"] is False
        assert str(lab.pve.vm(vm["vmid"]).config["ciupgrade"]) == "0"
    for name in ("report.md", "throughput.png"):
        assert (canal_model.dir / name).stat().st_size > 0


@pytest.fixture(scope="module")
def rebuilt(lab, canal_model) -> SimpleNamespace:
    """The lab's VMs destroyed outside the playbook (in PVE's web UI, say), then the Cilium model on new ones, with
    the profile native-legacy-notrack (one of SIDE_PROFILES: its run is this one)."""
    keys = {vm["vmid"]: lab.twin.host_keys(vm["vmid"]) for vm in LAB}
    for vm in [vm for vm in lab.pve.vms if vm.vmid in lab_vmids(lab.pve)]:
        lab.pve.vms.remove(vm)
    known = lab.known_hosts.read_text() if lab.known_hosts.exists() else ""
    run = model_run(lab, "cilium", profile="native-legacy-notrack")
    run.keys, run.known = keys, known
    run.new_keys = {vmid: lab.twin.host_keys(vmid) for vmid in keys} if run.proc.returncode == 0 else {}
    return run


def test_rebuild_at_the_same_addresses_benchmarks_again(lab, rebuilt):
    # The lab's known_hosts still held the destroyed VMs' keys.
    assert rebuilt.known.strip()
    check_model_run(rebuilt, "cilium")
    proc = rebuilt.proc
    # New VMs at the old addresses have new host keys, and nobody had to forget the old ones by hand.
    assert all(rebuilt.new_keys[vmid] != key for vmid, key in rebuilt.keys.items())
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" not in proc.stdout + proc.stderr
    assert len(list(lab.results.glob("*-canal-vxlan"))) == 1
    assert len(list(lab.results.glob("*-cilium-native-legacy-notrack"))) == 1


# The profiles the datapath model runs that are side steps of the chain (issue 26), each on the VMs the rebuild
# left (native-legacy-notrack is the rebuild's own run): its datapath line begins so, and its client node's
# counters show the mechanism in each test.
SIDE_PROFILES = {
    "cilium/native-legacy-notrack": (
        "native routing with legacy host routing", {"iptables.notrack", "iptables.routed-to-peer"},
        {"same-node-tcp-1": "iptables.notrack", "cross-node-tcp-1": "iptables.notrack"}),
    "cilium/native-bbr": ("native routing with BPF host routing", set(), {
        "cross-node-tcp-1": "bpf.from_container_neigh", "same-node-tcp-1": "bpf.from_container_peer"}),
    "canal/host-gw": ("pods on Calico veths", {"iptables.routed-to-peer"}, {
        "cross-node-tcp-1": "iptables.routed-to-peer", "service-tcp-1": "iptables.routed-to-peer"}),
    # The tunnel under BPF host routing: encapsulated by the program, the answers put into the pod by the overlay's.
    "cilium/tunnel-bpf": ("VXLAN tunnel (BPF encapsulation to cilium_vxlan, UDP 8472) with BPF host routing",
                          {"bpf.from_overlay_peer"}, {"cross-node-tcp-1": "bpf.from_container_encap",
                                                      "same-node-tcp-1": "bpf.from_container_peer",
                                                      "service-tcp-1": "bpf.sock_xlate"}),
}
# With a test through the Service (kube-proxy's DNAT on host-gw routes, the socket LB beside the tunnel), without
# the host test.
SIDE_MATRIX = ["-e", json.dumps({"bench_matrix": [
    {"name": "cross-node-tcp-1", "placement": "cross-node"}, {"name": "same-node-tcp-1", "placement": "same-node"},
    {"name": "service-tcp-1", "placement": "service"}]})]


@pytest.fixture(scope="module")
def side_profiles(lab, rebuilt) -> dict[str, SimpleNamespace]:
    """Each of SIDE_PROFILES built and benchmarked on the rebuilt VMs (--tags cluster,bench), and its report; the
    rebuild's own run for native-legacy-notrack."""
    runs = {"cilium/native-legacy-notrack": rebuilt}
    for label in SIDE_PROFILES:
        if label in runs:
            continue
        cni, name = label.split("/")
        proc = lab("-e", f"cni={cni}", "-e", f"cni_profile={name}", "-e", "netlab_cluster=model", *lab.bench,
                   *SIDE_MATRIX, tags="cluster,bench")
        run_dir = (lab.results / "latest").resolve()
        fact = ssh(lab, AGENT["ip"], "cat /etc/ansible/facts.d/netlab.fact").stdout
        runs[label] = SimpleNamespace(proc=proc, summary=lab.summary() if proc.returncode == 0 else {},
                                      report=(run_dir / "report.md").read_text() if proc.returncode == 0 else "",
                                      flannel=ssh(lab, AGENT["ip"], "ip link show flannel.1").returncode,
                                      fact=json.loads(fact or "{}"))
    return runs


@pytest.mark.parametrize("label", SIDE_PROFILES)
def test_a_side_profile_runs_its_own_mechanisms_on_the_vms(side_profiles, label):
    run = side_profiles[label]
    assert run.proc.returncode == 0
    summary = run.summary
    assert summary["complete"] and summary["provider"] == "proxmox"
    assert f"{summary['cni']}/{summary['profile']}" == label
    assert summary["datapath"].startswith(SIDE_PROFILES[label][0])
    carried = {r["scenario"]: r["proof"] for r in summary["results"]}
    assert all(found["contradictions"] == [] for found in carried.values()), carried
    for scenario, counter in SIDE_PROFILES[label][2].items():
        assert proof.MECHANISMS[counter] in carried[scenario]["mechanisms"], (scenario, carried[scenario])
    mechanisms = {m for found in carried.values() for m in found["mechanisms"]}
    assert {proof.MECHANISMS[key] for key in SIDE_PROFILES[label][1]} <= mechanisms
    if label == "canal/host-gw":
        # No overlay: no flannel.1, and the pods get the NIC's MTU.
        assert proof.MECHANISMS["vxlan.tx_packets"] not in mechanisms and run.flannel != 0
        assert summary["profile_settings"]["routing"] == "native"
        assert run.fact["mtu"] == run.fact["link_mtu"], run.fact
    if label == "cilium/native-bbr":
        # The profile's congestion control, with no -e bench_congestion: every TCP test's sockets ran BBR.
        assert summary["profile_settings"]["congestion"] == "bbr"
        assert {r["congestion"] for r in summary["results"] if r["protocol"] == "tcp"} == {"bbr"}
        assert "BBR WITHOUT FQ" in run.report
    else:
        assert {r["congestion"] for r in summary["results"] if r["protocol"] == "tcp"} == {"cubic"}


def test_report_needs_neither_the_api_nor_the_vms(lab, rebuilt, side_profiles):
    asked = len(lab.pve.requests)
    proc = lab(tags="report", env={"PROXMOX_USER": "", "PROXMOX_PASSWORD": ""})
    assert proc.returncode == 0, "the report stage needs no credentials"
    assert len(lab.pve.requests) == asked, "the report stage must not call the API"
    assert "CNI COMPARISON" in proc.stdout


def test_teardown_with_every_vm_stopped(lab, rebuilt):
    for vm in lab.pve.vms:
        if vm.vmid in lab_vmids(lab.pve):
            vm.status = vm.qmpstatus = "stopped"
    proc = lab(tags="teardown")
    assert proc.returncode == 0
    assert lab_vmids(lab.pve) == [] and lab.pve.vm(FOREIGN) is not None
    assert not lab.known_hosts.read_text().strip()


def test_dhcp_without_a_guest_agent_fails_clearly(lab):
    proc = lab("-e", "proxmox_vm_template=debian-13-genericcloud", "-e", "proxmox_vm_boot_timeout=10",
               tags="provision", vms=[SERVER | {"ip": "dhcp"}])
    assert proc.returncode != 0
    assert "takes its address by DHCP" in proc.stdout and "virt-customize --install" in proc.stdout
    assert lab(tags="teardown", vms=[SERVER]).returncode == 0


@pytest.fixture(scope="module")
def static_lab(lab) -> SimpleNamespace:
    """A VM of the template without a guest agent at a static address, then, running and with the lab's own
    template (debian-13-cloudinit) deleted meanwhile, torn down."""
    if lab_vmids(lab.pve):  # what earlier tests left (they end with a teardown when the whole file runs)
        assert lab(tags="teardown").returncode == 0
    proc = lab("-e", "proxmox_vm_template=debian-13-genericcloud", tags="provision", vms=[SERVER])
    login = ssh(lab, SERVER["ip"], "true")
    running = [vm.vmid for vm in lab.pve.vms if vm.vmid in lab_vmids(lab.pve) and vm.status == "running"]
    template = lab.pve.vm(TEMPLATE_VMID)
    lab.pve.vms.remove(template)
    try:
        teardown = lab(tags="teardown", vms=[SERVER])
    finally:
        lab.pve.vms.append(template)
    return SimpleNamespace(proc=proc, login=login, running=running, teardown=teardown,
                           containers=lab.twin.containers())


def test_static_addresses_need_no_guest_agent(static_lab):
    proc = static_lab.proc
    assert proc.returncode == 0
    # The template has no agent: had the wait run, it would have failed the play. Skipped on every
    # host, its banner is not even printed (display_skipped_hosts = false).
    assert not re.search(r"Wait for the guest agent to report the address\] \*+\n(ok|changed|fatal)", proc.stdout)
    assert static_lab.login.returncode == 0
    assert static_lab.teardown.returncode == 0


def test_teardown_of_a_running_lab(lab, static_lab):
    assert static_lab.running == [SERVER["vmid"]]
    assert static_lab.teardown.returncode == 0
    assert lab_vmids(lab.pve) == [] and lab.pve.vm(FOREIGN) is not None
    assert not static_lab.containers


def test_teardown_with_the_template_deleted(lab, static_lab):
    assert static_lab.proc.returncode == 0
    assert static_lab.teardown.returncode == 0
    assert lab_vmids(lab.pve) == [] and lab.pve.vm(FOREIGN) is not None
