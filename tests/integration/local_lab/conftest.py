"""The local lab's history as module fixtures: one lab, Cilium (its run, a restart, the Kubernetes transport
through the twin, the Service scale scenario, the gate's baseline and rerun, two more profiles), then Canal on
the same nodes (its run, the Kubernetes transport again), reruns, teardown last. Each step asks for the step
before it, so a test also runs alone (it builds the history up to the step it reads) and the test file builds
it once; the file's order is the history's. The Kubernetes transport's steps are branches: nothing after them
asks for them, as they leave nothing on the lab or in its results.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kill_checks as kill
import kube_transport_checks as kube
import pytest
from lab_checks import (
    BUSY_LOOP,
    CRR_PAIR,
    DISTURBED,
    GATE,
    IMAGE,
    INTERRUPTED,
    LAB_NETWORK,
    PROFILE_MATRIX,
    PROFILES,
    SCALE,
    SCENARIOS,
    WORSE_ON_PURPOSE,
    Interrupted,
    Run,
    TornDown,
    environment,
    full_run,
    latest,
    node,
    podman,
    reference_matrix,
    sockets_translated,
)
from site_args import ROOT, extra, playbook_cmd

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb
from ansible_collections.netlab.lab.plugins.modules import lab_link_gso as link_gso
from netlab_twin import lanes
from netlab_twin.kube.lab import LabRuntime


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def play(results_dir):
    def run(*args: str, charts: bool = False, measure: bool = False) -> subprocess.CompletedProcess:
        proc = lanes.run(playbook_cmd(results_dir, *args), cwd=ROOT, env=environment(charts, measure),
                         timeout=1200)
        print(proc.stdout[-6000:], proc.stderr[-3000:])
        return proc

    return run


@pytest.fixture(scope="module")
def bench(short_bench) -> list[str]:
    """A short benchmark of SCENARIOS, taken from the reference matrix."""
    entries = {e["name"]: e for e in reference_matrix()}
    return [*short_bench, "-e", json.dumps({"bench_matrix": [entries[name] for name in SCENARIOS]})]


@pytest.fixture(scope="module")
def lab():
    """The lab's nodes and network, removed when the module ends however it ends: the teardown test removes
    them through the playbook; this is for a run stopped part-way (SIGTERM, a failed fixture)."""
    yield
    for container in podman("ps", "-aq", "--filter", f"label=netlab.lab={LAB_NETWORK}").split():
        podman("rm", "-f", "-t", "0", container, check=False)
    podman("network", "rm", "-f", LAB_NETWORK, check=False)


@pytest.fixture(scope="module")
def cilium_run(lab, play, results_dir, bench) -> Run:
    return full_run(play, results_dir, "cilium", bench)


@pytest.fixture
def kube_runtime(cilium_run):
    """The Kubernetes twin's LabRuntime on the Cilium reference lab, closed after its test."""
    runtime = LabRuntime()
    yield runtime
    asyncio.run(runtime.close())


@pytest.fixture(scope="module")
def cilium_kube(cilium_run, play, tmp_path_factory) -> tuple[Path, kube.KubeRun]:
    """The Cilium reference lab's throughput tests on the local transport, then the reference matrix through
    the Kubernetes transport against the twin of the running lab: (the local run, the Kubernetes run). Each
    writes to a results folder of its own and leaves nothing on the lab."""
    local = kube.local_run(play, tmp_path_factory.mktemp("local-cilium"), "cilium")
    return local, kube.kube_run(tmp_path_factory.mktemp("kube-cilium"))


@pytest.fixture(scope="module")
def cilium_scale(cilium_run, play) -> Run:
    """The Service scale scenario on Cilium (charts drawn: check_scale reads them), with a benchmark Service
    and an interrupted run's leftovers in the socket LB's maps; what the maps and counters showed after it."""
    client = node("netlab-agent-1")
    # A benchmark Service (top bit of its id set) stays; an interrupted run's entries go first.
    client.check_output("netlab-datapath service-add scale-neighbour 198.18.128.10 5201 tcp 198.19.3.10:5201")
    sid = sock_lb.service_id(9)
    key, value = sock_lb.service_key("10.43.1.9", 80), sock_lb.service_value(sid, 1)
    client.check_output(f"bpftool map update pinned /sys/fs/bpf/netlab_services key hex {key.hex(' ')} "
                        f"value hex {value.hex(' ')}")
    key, value = sock_lb.backend_key(sid, 0), sock_lb.address_value("198.19.3.10", 8080)
    client.check_output(f"bpftool map update pinned /sys/fs/bpf/netlab_backends key hex {key.hex(' ')} "
                        f"value hex {value.hex(' ')}")
    translated = sockets_translated(client)
    try:
        proc = play("-e", "cni=cilium", "--tags", "scale", *SCALE, charts=True)
        seen = {"translated": sockets_translated(client) - translated,
                "services": json.loads(client.check_output("bpftool -j map dump pinned /sys/fs/bpf/netlab_services"))}
    finally:
        client.check_output("netlab-datapath service-del scale-neighbour")
    return Run(proc, None, seen)


@pytest.fixture(scope="module")
def gate_baseline(cilium_scale, play, results_dir) -> tuple[Run, Run]:
    """The gate's test run twice on the Cilium reference, the second gated against the first; measured
    while the other test lane pauses, as the gate's 25 % are a timing assert."""
    udp = extra(bench_matrix=PROFILE_MATRIX[-1:])
    first = Run(play("-e", "cni=cilium", "--tags", "bench", *GATE, *udp, measure=True), latest(results_dir))
    baseline = first.dir.name if first.dir else ""
    rerun = Run(play("-e", "cni=cilium", "--tags", "bench", *GATE, *udp, "-e", f"bench_baseline={baseline}",
                     measure=True), latest(results_dir))
    return first, rerun


def link_sizes(nodes) -> dict[str, tuple]:
    """Each node's IPv4 GSO/GRO maximum sizes: its interface's, and its link's host side's (lab_link_gso reads it)."""
    found = {}
    for name in nodes:
        iflink = int(podman("exec", name, "cat", "/sys/class/net/eth0/iflink"))
        shown = json.loads(node(name).check_output("ip -j -d link show dev eth0"))[0]
        found[name] = ((shown.get("gso_ipv4_max_size"), shown.get("gro_ipv4_max_size")), tuple(link_gso.sizes(iflink)))
    return found


@pytest.fixture(scope="module")
def profile_runs(gate_baseline, play, results_dir, short_bench) -> dict[str, Run]:
    """Each profile of PROFILES built and benchmarked in turn, with what its nodes showed right after."""
    runs = {}
    for profile in PROFILES:
        if profile == "tunnel":
            # The reference's run that passed the gate is the baseline the tunnel profile is held against;
            # measured while the other lane pauses (the gate and the CRR ratio are timing asserts).
            baseline = next(results_dir.glob("*-cilium-native-bpf/gate.json")).parent.name
            proc = play("-e", "cni=cilium", "-e", f"cni_profile={profile}", "--tags", "cluster,bench",
                        "-e", f"bench_baseline={baseline}", *GATE,
                        *extra(bench_matrix=PROFILE_MATRIX[:-1] + WORSE_ON_PURPOSE + CRR_PAIR),
                        measure=True)
            seen = {"pod0": node("netlab-agent-1").check_output("ip -n pod0 link show eth0")}
        else:
            # Pinned to bbr where the reference's run used the default cubic: each run records what its tests used.
            proc = play("-e", "cni=cilium", "-e", f"cni_profile={profile}", "--tags", "cluster,bench", *short_bench,
                        *extra(bench_matrix=PROFILE_MATRIX, bench_congestion="bbr"))
            # The lab runs this profile: a run that names another is refused before it starts (asked once).
            seen = {"refused": play("-e", "cni=cilium", "-e", "cni_profile=tunnel", "--tags", "bench", *short_bench)
                    if not any("refused" in run.seen for run in runs.values()) else None,
                    "links": link_sizes(("netlab-agent-1", "netlab-agent-2"))}
        runs[profile] = Run(proc, latest(results_dir), seen)
    return runs


@pytest.fixture(scope="module")
def canal_run(profile_runs, play, results_dir, bench) -> Run:
    """site.yml with Canal on the lab the Cilium runs left: the datapath replaced, the four-run comparison."""
    return full_run(play, results_dir, "canal", bench)


@pytest.fixture(scope="module")
def canal_kube(canal_run, play, tmp_path_factory) -> tuple[Path | None, kube.KubeRun]:
    """The reference matrix through the Kubernetes transport on the Canal lab. Its figures are compared on a
    quiet machine only (NETLAB_STRICT_COMPARE=1: then with a local run just before, and measured); beside make
    test's other lane it is not measured, so that lane is not paused for it."""
    local = kube.local_run(play, tmp_path_factory.mktemp("local-canal"), "canal") if kube.STRICT else None
    return local, kube.kube_run(tmp_path_factory.mktemp("kube-canal"), measure=kube.STRICT)


@pytest.fixture(scope="module")
def untouched(canal_run, play, results_dir, short_bench, tmp_path_factory) -> dict:
    """Three runs that change nothing on the lab: a Service scale run the nodes cannot hold, then a benchmark of a
    CNI the lab does not run (one after the other: each takes the lab's lock before its role refuses it), and
    beside them the Kubernetes transport's render (into a results folder of its own; it contacts nothing and
    takes no lock); and the results folder before and after them."""
    rendered = tmp_path_factory.mktemp("rendered")
    runs = set(results_dir.iterdir())
    calls = {
        "scale": ("-e", "cni=canal", "--tags", "scale", "-e", "service_scale_kernel_kib_per_service=1000000"),
        "render": ("-e", f"netlab_results_dir={rendered}", "-e", "cni=canal", "--tags", "bench",
                   "-e", "bench_transport=kubernetes", "-e", "bench_render_only=true", "-e", f"bench_pod_image={IMAGE}",
                   "-e", '{"bench_pod_overrides": {"spec": {"imagePullSecrets": [{"name": "reg"}]}}}'),
        "other_cni": ("-e", "cni=cilium", "--tags", "bench", *short_bench),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        render = pool.submit(play, *calls["render"])
        procs = {"scale": play(*calls["scale"]), "other_cni": play(*calls["other_cni"]), "render": render.result()}
    return {**procs, "runs": runs, "runs_after": set(results_dir.iterdir()), "rendered": rendered}


@pytest.fixture(scope="module")
def interrupted_run(canal_run, play, results_dir, short_bench, tmp_path_factory) -> Interrupted:
    before = canal_run.dir
    old_files = {p: p.read_bytes() for p in before.rglob("*") if p.is_file()}
    known = set(results_dir.iterdir())
    log = tmp_path_factory.mktemp("interrupted") / "bench.out"
    entries = {e["name"]: e for e in reference_matrix()}
    cmd = playbook_cmd(results_dir, "-e", "cni=canal", "--tags", "bench", *short_bench, "-e", "bench_repeats=2",
                       *extra(bench_matrix=[entries[name] for name in INTERRUPTED]))
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            run = None
            while time.monotonic() < deadline:
                new = [p for p in set(results_dir.iterdir()) - known if not p.is_symlink()]
                run = new[0] if new else None
                if run and len(list((run / "raw").glob("[!.]*.json"))) >= 3:
                    break
                time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # as a lost terminal or an OOM kill would
            proc.wait()
    kept = {p.name: p.read_bytes() for p in (run / "raw").glob("[!.]*.json")} if run else {}
    after, canal_runs = latest(results_dir), len(list(results_dir.glob("*-canal-vxlan")))
    report = play("--tags", "report", "-e", f"run={run.name}") if run else None
    reported = json.loads((run / "summary.json").read_text()) if run and report.returncode == 0 else {}
    resumed = play("-e", "cni=canal", "--tags", "bench", "-e", f"bench_resume={run.name}") if run else None
    return Interrupted(before, old_files, log.read_text(), run, after, canal_runs, kept, report, reported, resumed)


@pytest.fixture(scope="module")
def killed_runs(interrupted_run, play, results_dir, short_bench, tmp_path_factory) -> dict:
    """Benches on the Canal lab stopped at each of kill_checks.POINTS by each signal, one after the other (each
    starts on what the one before left), then one that runs to its end."""
    known = set(results_dir.iterdir())
    entries = {e["name"]: e for e in reference_matrix()}
    cmd = playbook_cmd(results_dir, "-e", "cni=canal", "--tags", "bench", *short_bench,
                       *extra(bench_matrix=[entries[name] for name in kill.MATRIX]))
    logs = tmp_path_factory.mktemp("killed")
    killed = [kill.kill_run(cmd, ROOT, environment(), results_dir, point, sig, logs / f"{len(point)}-{sig}.out")
              for point in kill.POINTS for sig in kill.SIGNALS]
    # The run after them: bench_repeats auto (3 to 5 rounds here), to its end.
    after = play("-e", "cni=canal", "--tags", "bench", *short_bench, "-e", "bench_repeats=auto",
                 "-e", "bench_max_repeats=5", *extra(bench_matrix=[entries[name] for name in kill.MATRIX]))
    summary = json.loads((latest(results_dir) / "summary.json").read_text()) if after.returncode == 0 else {}
    # The killed runs' folders go: the lab's history after this step is as if they had never been.
    for run in set(results_dir.iterdir()) - known - {latest(results_dir)}:
        if not run.is_symlink():
            shutil.rmtree(run)
    return {"killed": killed, "after": after, "summary": summary}


@pytest.fixture(scope="module")
def disturbed_run(killed_runs, results_dir, short_bench, tmp_path_factory) -> dict:
    """A bench on the Canal lab, measuring the machine's other work (lane B pauses: measure), with a busy loop
    on the machine from its run folder's start until its first test has ended: beside the first test only."""
    known = set(results_dir.iterdir())
    entries = {e["name"]: e for e in reference_matrix()}
    cmd = playbook_cmd(results_dir, "-e", "cni=canal", "--tags", "bench", *short_bench, "-e", "bench_duration=2",
                       "-e", "bench_disturbed_percent=10", "-e", "bench_disturbed_reruns=2",
                       *extra(bench_matrix=[entries[name] for name in DISTURBED]))
    log = tmp_path_factory.mktemp("disturbed") / "bench.out"
    busy = None
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environment(measure=True), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None and busy is None:
                new = [p for p in set(results_dir.iterdir()) - known if not p.is_symlink()]
                if new:
                    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(new[0])])
                time.sleep(0.05)
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                lanes.stop(proc)
            if busy:
                busy.wait(timeout=30)
    (run,) = [p for p in set(results_dir.iterdir()) - known if not p.is_symlink()]
    return {"proc": proc, "log": log.read_text(), "run": run, "busy": busy is not None}


@pytest.fixture(scope="module")
def torn_down(canal_run, play, results_dir) -> TornDown:
    runs = sorted(p.name for p in results_dir.iterdir())
    teardown = play("--tags", "teardown")
    left = podman("ps", "-a", "--format", "{{.Names}}").split()
    runs_after = sorted(p.name for p in results_dir.iterdir())
    bench = play("--tags", "bench")
    # The last report rebuilds the newest run's summary and report from its raw files alone.
    run = latest(results_dir)
    expected = json.loads((run / "summary.json").read_text())
    for name in ("summary.json", "summary.csv", "report.md"):
        (run / name).unlink()
    report = play("--tags", "report")
    return TornDown(runs, teardown, left, runs_after, bench, expected, run, report)
