"""The Kubernetes transport end to end through the Kubernetes twin, with canned exec answers (no podman):
``site.yml -i inventories/existing --tags bench`` with nothing but the twin's kubeconfig, two node names and
an image digest, as a user with a cluster runs it. Each failure the kubernetes-live review found (F1-F4, F6,
F8, F11) is shown through the real kubernetes.core modules with one of the twin's faults; each of these
tests fails on the role before its fix. One run per cluster: the lab's Lease (a second run refused naming the
holder, a dead run's Lease taken over)."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu
from netlab_twin import lanes
from netlab_twin.kube import discovery, kube_serve
from netlab_twin.kube.runtime import CannedRuntime, iperf3_client

ROOT = Path(__file__).resolve().parents[2]
NODES = ["netlab-agent-1", "netlab-agent-2"]
IMAGE = "registry.example/netlab-bench@sha256:" + "b" * 64
OWN = "app.kubernetes.io/name=netlab-iperf3"
# A short matrix: a test on the pod network and one on the hosts (both kinds of pod).
SHORT = [{"name": "cross-node-tcp-1", "placement": "cross-node", "protocol": "tcp"},
         {"name": "host-tcp-1", "placement": "host", "protocol": "tcp"}]
HOST_ONLY = [{"name": "host-tcp-1", "placement": "host", "protocol": "tcp"}]
# The lab's Lease (roles/bench/defaults): one run per cluster.
LEASES = discovery.resource("coordination.k8s.io", "leases")
NAMESPACE, NAME = "netlab-system", "netlab-lab"


@pytest.fixture
def twin(tmp_path):
    with kube_serve(tmp_path / "twin") as (served, kubeconfig):
        served.kubeconfig = kubeconfig
        yield served


def command(twin, tmp_path, *args, matrix=None):
    """site.yml's benchmark on the existing-cluster inventory against the twin: (argv, environment)."""
    extra = {"netlab_results_dir": str(tmp_path / "results"), "netlab_kubeconfig": str(twin.kubeconfig),
             "netlab_bench_nodes": NODES, "bench_pod_image": IMAGE, "bench_duration": 1, "bench_omit": 0,
             "bench_repeats": 1, **({"bench_matrix": matrix} if matrix else {})}
    (tmp_path / "ktmp").mkdir(exist_ok=True)
    # Its own TMPDIR: the kubernetes client's discovery cache (k8srcp-*.json) is per twin.
    # The callbacks make test's lane names (the timing lock's: this lane pauses while the local lab measures), and
    # profile_tasks for task_seconds.
    callbacks = os.environ.get("ANSIBLE_CALLBACKS_ENABLED", "netlab.lab.bench_report,netlab.lab.lab_lock")
    env = {**os.environ, "TMPDIR": str(tmp_path / "ktmp"), "NETLAB_CHARTS": "false",
           "ANSIBLE_CALLBACKS_ENABLED": f"{callbacks},ansible.posix.profile_tasks"}
    return ["ansible-playbook", "site.yml", "-i", "inventories/existing", "--tags", "bench",
            "-e", json.dumps(extra), *args], env


def bench(twin, tmp_path, *args, matrix=None, timeout=400):
    """The benchmark run to its end: (process, seconds)."""
    argv, env = command(twin, tmp_path, *args, matrix=matrix)
    start = time.monotonic()
    proc = lanes.run(argv, cwd=ROOT, env=env, timeout=timeout)
    print(proc.stdout[-8000:], proc.stderr[-3000:])
    return proc, time.monotonic() - start


def runs(tmp_path):
    return sorted(p for p in (tmp_path / "results").iterdir() if p.is_dir() and p.name[0].isdigit())


def task_seconds(stdout, task):
    """A task's time as ansible.posix.profile_tasks prints it in the recap."""
    found = re.findall(rf"bench : {re.escape(task)} -+ (\d+\.\d+)s", stdout)
    assert found, f"no time for {task!r}"
    return float(found[-1])


def requests(twin, method, fragment, since=0):
    """Indexes of the twin's requests of a method whose path holds ``fragment``, from request ``since`` on."""
    return [i for i, (m, path, _) in enumerate(twin.requests) if i >= since and m == method and fragment in path]


def run_pods(twin):
    """The names of the pods the project's label marks, in any namespace."""
    res = discovery.by_kind("Pod")

    async def names():
        return [pod["metadata"]["name"] for pod in twin.store.list(res, None, OWN)["items"]]

    return twin.call(names())


def netlab_namespaces(twin):
    """The namespaces the project's label marks, as the twin holds them now."""
    res = discovery.by_kind("Namespace")

    async def names():
        return [ns["metadata"]["name"] for ns in twin.store.list(res, None, OWN)["items"]]

    return twin.call(names())


def test_pods_that_cannot_start_are_named_within_30_s(twin, tmp_path):
    """F1: an image that cannot be pulled, and a pod the kubelet rejects (NodePorts, the symptom of F2): was
    300 s per pod, then "Timed out waiting on resource", the pods after the first one never created."""
    twin.faults.arm("image_pull", pod="iperf3-server-cross")
    twin.faults.arm("reject", pod="iperf3-server-host")
    proc, _ = bench(twin, tmp_path, matrix=SHORT)
    assert proc.returncode != 0
    waited = task_seconds(proc.stdout, "Poll the pods until they are Ready, or one cannot start")
    assert waited < 30, waited
    failed = (runs(tmp_path)[0] / "failed.txt").read_text()
    assert re.search(r"pod iperf3-server-cross cannot start: (ErrImagePull|ImagePullBackOff): \S", failed), failed
    assert "pod iperf3-server-host failed: NodePorts: " in failed, failed
    assert len(requests(twin, "POST", "/pods")) == 4, "every pod was created"
    assert netlab_namespaces(twin) == [], "cleaned up after the failure"
    print(f"FIGURE time to fail on ErrImagePull and NodePorts: {waited:.1f} s")


def test_earlier_runs_namespaces_refuse_a_run_before_anything_is_created(twin, tmp_path):
    """F2: a namespace left by an interrupted run, whose hostNetwork pods hold the host ports: refused, or
    removed when asked. The run that removes it has host tests alone (F8: no pod on the pod network, no MTU
    to read)."""
    twin.faults.arm("stale_ns", name="netlab-bench-20261201t000000", node=NODES[1])
    proc, _ = bench(twin, tmp_path, matrix=SHORT)
    assert proc.returncode != 0
    assert "Namespaces of earlier runs are still on the cluster: netlab-bench-20261201t000000." in proc.stdout
    assert "kubectl delete namespace -l app.kubernetes.io/name=netlab-iperf3" in proc.stdout
    assert "-e bench_remove_stale=true" in proc.stdout
    # Nothing of a run was created: no namespace of its own, no pod, no Service (the lab's Lease, in netlab-system,
    # is the lock's own bookkeeping, taken before and released after).
    assert netlab_namespaces(twin) == ["netlab-bench-20261201t000000"], "no namespace of this run"
    assert not requests(twin, "POST", "/pods") and not requests(twin, "POST", "/services"), "nothing was created"
    proc, _ = bench(twin, tmp_path, "-e", "bench_remove_stale=true", matrix=HOST_ONLY)
    assert proc.returncode == 0
    assert netlab_namespaces(twin) == []
    run = runs(tmp_path)[-1]
    assert json.loads((run / "summary.json").read_text())["complete"]
    assert json.loads((run / "run.json").read_text())["environment"]["kubernetes"]["datapath"]["pod_mtu"] is None
    assert not any(argv[-1:] == ["/sys/class/net/eth0/mtu"] for argv in twin.runtime.execs)


def test_exec_failures_are_bounded_and_said_in_words(twin, tmp_path):
    """F4: k8s_exec crashes on a status without an exit code (the runtime's InternalError, or a stream that ends
    without a status); F3: a stalled exec has no deadline in k8s_exec, the task's ends it. All said in one
    failure, no traceback. The client pod's first exec (iperf3's version) gets the InternalError, its second
    (the pod MTU) no status. The stall is ended by the run's own exec bound (bench_exec_timeout: 6 s here, 20 s
    by default), which also bounds the sampler and every other short exec of the run."""
    twin.faults.arm("exec_internal", pod="iperf3-client", times=1)
    twin.faults.arm("exec_no_status", pod="iperf3-client", times=1)
    twin.faults.arm("exec_stall", pod="iperf3-server-cross", times=1)
    proc, seconds = bench(twin, tmp_path, "-e", "bench_exec_timeout=6", matrix=SHORT)
    assert proc.returncode != 0
    failed = (runs(tmp_path)[0] / "failed.txt").read_text()
    assert "iperf3 --version: could not run in the pod: " in failed, failed
    assert "the pod MTU read: the exec stream ended without an exit status" in failed, failed
    assert f"/proc/cpuinfo read ({NODES[1]}): Task failed: Timed out after 6 second(s)" in failed, failed
    short = [argv for argv in twin.runtime.execs if argv[:2] == ["sh", "-c"]]
    assert short and all(argv[2] == 'exec timeout 1 "$@"' for argv in short), short
    assert "Traceback" not in failed and "invalid literal" not in failed
    assert seconds < 150, seconds
    assert netlab_namespaces(twin) == []


def test_ctrl_c_then_the_same_command_again(twin, tmp_path):
    """A run stopped by Ctrl-C skips its cleanup: its namespace stays, its hostNetwork pods holding the host
    ports. The same command again finds that its ansible-playbook is gone, removes it, and runs. That run, on the
    short matrix, is checked whole: objects, the pods' start, every exec, raw files, run.json and reports, the
    cleanup; its namespace's ServiceAccount comes 3 s after it (F6: a pod before it is refused); a stale
    aggregated API fails k8s_cluster_info (F11: the version is then the kubelet's)."""
    twin.faults.arm("broken_api_group")
    argv, env = command(twin, tmp_path, matrix=SHORT)
    first = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(run_pods(twin)) < 4 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.3)
        assert len(run_pods(twin)) == 4, "the first run created its pods"
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's foreground process group
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    (left,) = netlab_namespaces(twin)
    twin.faults.arm("sa_late", seconds=3)
    since = len(twin.requests)
    proc, _ = bench(twin, tmp_path, matrix=SHORT)
    assert proc.returncode == 0
    assert re.search(rf"Remove the namespaces of interrupted runs.*\n.*item={left}", proc.stdout), "said so"
    assert netlab_namespaces(twin) == [], "both runs' namespaces are gone"
    run = runs(tmp_path)[-1]
    assert json.loads((run / "run.json").read_text())["transport"] == "kubernetes"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and not summary["failed_tests"]
    assert [r["scenario"] for r in summary["results"]] == ["cross-node-tcp-1", "host-tcp-1"]
    # What the twin invented (the CNI's DaemonSet and its agents' answers) is said to be the twin's.
    assert summary["datapath"].endswith("as the Kubernetes twin's canned answers, not a CNI agent")
    assert "as the Kubernetes twin's canned answers" in (run / "report.md").read_text()
    # F1: every pod is created before the first poll of them; F6: the ServiceAccount before the pods.
    posts = requests(twin, "POST", "/pods", since)
    polls = [i for i, (method, path, query) in enumerate(twin.requests)
             if i >= since and method == "GET" and path.endswith("/pods") and "labelSelector" in query]
    assert len(posts) == 4 and max(posts) < min(i for i in polls if i > min(posts))
    assert requests(twin, "GET", "/serviceaccounts/default", since)[0] < min(posts)
    # F3, F4: every exec but the tests' own runs through a shell, bounded in the pod.
    for argv in twin.runtime.execs:
        assert argv[:3] == ["sh", "-c", 'exec timeout 15 "$@"'] or "netlab-cpu" in argv, shlex.join(argv)
    # F5: the server's CPU is the sampler's, read around the client's own window (was: an exec before and one
    # after, seconds apart).
    for raw in sorted((run / "raw").glob("*.json")):
        section = json.loads(raw.read_text())["netlab_cpu"]
        used = cpu.usage(section)
        assert used["server"] and abs(used["server"]["window_s"] - used["client"]["window_s"]) <= 0.25, raw.name
        # Each pod's own CPU beside its node's readings (the server's from its sampler's log), for the nodes'
        # CPU beside the test (cpu.beside_pods; the canned answers take no time: measured on the local lab).
        assert [cpu.parse_pod(section[end]["after"])[0] for end in ("client_pod", "server_pod")] == ["4101", "4102"]
    assert not (run / "raw" / "disturbed").exists(), "a cluster's repeats are never run again"
    meta = json.loads((run / "run.json").read_text())["environment"]["kubernetes"]
    assert (meta["kubernetes"], meta["version_from"]) == ("v1.33.5+netlab-twin", "kubelet of the benchmark nodes")


def test_a_node_without_a_running_cilium_agent_is_named(twin, tmp_path):
    """F7: the agent was taken as resources[0], so a node without one failed on a Jinja error."""
    res = discovery.by_kind("Pod")

    async def remove():
        twin.store.delete(res, "kube-system", "cilium-00002")

    twin.call(remove())
    proc, _ = bench(twin, tmp_path, matrix=SHORT)
    assert proc.returncode != 0
    assert f"no running Cilium agent on {NODES[1]}: the datapath of those nodes cannot be read" in proc.stdout
    assert not requests(twin, "POST", "/namespaces"), "stopped before anything was created"


# One run per cluster: the lab's Lease. Two runs started together against one twin: the one that takes the Lease
# runs, the other is refused at its Lease step, naming the holder (pid, host, command), before it creates
# anything; a Lease left by a dead ansible-playbook is taken over, said in one line, renewed between tests and
# deleted at the run's end.
def lease(twin):
    async def read():
        return twin.store.get(LEASES, NAMESPACE, NAME) if twin.store.exists(LEASES, NAMESPACE, NAME) else None

    return twin.call(read())


def test_a_second_run_is_refused_naming_the_holder(twin, tmp_path):
    # Each run's ServiceAccount comes 20 s after its namespace: the Lease's holder holds it for that long at
    # least, so the other run reaches its Lease step while it is held, whichever of the two took it.
    twin.faults.arm("sa_late", seconds=20)
    procs, started = [], []
    for index in range(2):
        (tmp_path / f"run{index}").mkdir()
        argv, env = command(twin, tmp_path / f"run{index}", matrix=SHORT)
        env["NETLAB_LOCK_DIR"] = str(tmp_path / "locks")
        started.append(time.monotonic())
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
        time.sleep(2)
    outs, ended = [], []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=400)[0])
            ended.append(time.monotonic())
    finally:
        for proc in procs:
            if proc.poll() is None:
                lanes.stop(proc)
    for out in outs:
        print(out[-6000:])
    codes = [proc.returncode for proc in procs]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, codes
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    said = re.search(r"The cluster's Lease netlab-system/netlab-lab is held by another run \(pid (\d+) on (\S+) "
                     r"since (\S+): ([^)]*)\)", outs[loser])
    assert said, "the refusal names the holder"
    assert int(said.group(1)) == procs[winner].pid and said.group(2) == socket.gethostname()
    assert "ansible-playbook site.yml -i inventories/existing --tags bench" in said.group(4)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", said.group(3))
    # Refused before it changed anything: no run folder, no namespace or pod of its own.
    assert not (tmp_path / f"run{loser}" / "results").exists() or not runs(tmp_path / f"run{loser}")
    (run,) = runs(tmp_path / f"run{winner}")
    assert json.loads((run / "summary.json").read_text())["complete"]
    assert lease(twin) is None, "the holder deleted its Lease at its end"
    assert run_pods(twin) == []
    print(f"refused {ended[loser] - started[loser]:.1f} s after its start")


def test_a_lease_left_by_a_dead_run_is_taken_over(twin, tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = int(gone.stdout)
    left = {"metadata": {"name": NAME, "annotations": {"netlab.io/command": "ansible-playbook site.yml --tags bench"}},
            "spec": {"holderIdentity": f"{socket.gethostname()}/{dead}", "leaseDurationSeconds": 600,
                     "acquireTime": "2026-12-06T10:00:00.000000Z", "renewTime": "2026-12-06T10:00:00.000000Z"}}

    async def seed():
        twin.store.create(discovery.by_kind("Namespace"), None, {"metadata": {"name": NAMESPACE}})
        twin.store.create(LEASES, NAMESPACE, left)

    twin.call(seed())
    argv, env = command(twin, tmp_path, matrix=SHORT)
    proc = lanes.run(argv, cwd=ROOT, env=env, timeout=400)
    print(proc.stdout[-6000:], proc.stderr[-2000:])
    assert proc.returncode == 0
    assert re.search(rf"The cluster's Lease netlab-system/netlab-lab was left by a run that is gone \(pid {dead} on "
                     rf"{re.escape(socket.gethostname())} since 2026-12-06T10:00:00.000000Z: ansible-playbook site.yml "
                     r"--tags bench\): taken over\.", proc.stdout)
    # Taken over on the read resourceVersion, renewed before each test, deleted at the end.
    puts = [path for method, path, _ in twin.requests if method == "PUT" and path.endswith(f"/leases/{NAME}")]
    assert len(puts) == 1 + len(SHORT)
    assert lease(twin) is None


def label_nodes(twin, key, values):
    """Give each node a label, as a cloud controller manager does (the Proxmox CCM: its PVE node in the zone)."""
    res = discovery.by_kind("Node")

    async def patch():
        for name, value in values.items():
            twin.store.patch(res, None, name, {"metadata": {"labels": {key: value}}})

    twin.call(patch())


ZONE = "topology.kubernetes.io/zone"


MESH_NODES = [*NODES, "netlab-agent-3", "netlab-agent-4"]
# CannedRuntime's pod addresses: 10.42.<node index>.<10 on>; agent-4's one pod is its mesh pod.
MESH_SLOW_SERVER = "10.42.3.10"


def _scaled(doc, factor):
    """iperf3's JSON with every bits_per_second scaled (a slower path into one node)."""
    if isinstance(doc, dict):
        return {k: v * factor if k == "bits_per_second" else _scaled(v, factor) for k, v in doc.items()}
    return [_scaled(v, factor) for v in doc] if isinstance(doc, list) else doc


def _half(argv):
    text, err, rc = iperf3_client(argv)
    return json.dumps(_scaled(json.loads(text), 0.5)), err, rc


@pytest.fixture
def mesh_twin(tmp_path):
    """A twin of four nodes whose pods answer iperf3 from tests/data, at half the rate into agent-4's pod."""
    runtime = CannedRuntime(nodes=tuple(MESH_NODES), answers={("iperf3", "--client", MESH_SLOW_SERVER): _half})
    with kube_serve(tmp_path / "twin", runtime=runtime) as (served, kubeconfig):
        served.kubeconfig = kubeconfig
        yield served


def test_hosts_from_a_label_a_mesh_of_four_nodes_and_the_pair_chosen_on_two_hosts(mesh_twin, tmp_path):
    """bench_host_label: each node's machine from its label. With bench_distinct_hosts a pair on one machine is
    refused, naming both, before any pod is created. bench_mesh on the Kubernetes transport: a pod on the pod
    network on every node (iperf3-mesh-<index> where the usual pods leave a node without one), each pair exec'd
    in its client node's pod against its server node's pod, and the report's pair matrix naming the slowest pair
    and marking the pairs within one machine. Without node names, the pair chosen from the cluster: untainted
    nodes first, on two machines; run.json's node_hosts and the report's Hosts line."""
    label_nodes(mesh_twin, ZONE, dict(zip(MESH_NODES, ["pve1", "pve2", "pve2", "pve1"], strict=True)))
    proc, _ = bench(mesh_twin, tmp_path, "-e", json.dumps({"netlab_bench_nodes": MESH_NODES[1:3]}),
                    "-e", f"bench_host_label={ZONE}", "-e", "bench_distinct_hosts=true", matrix=HOST_ONLY)
    assert proc.returncode != 0
    assert (f"bench_distinct_hosts: the cross-node pair {MESH_NODES[1]} and {MESH_NODES[2]} both run on pve2"
            in proc.stdout)
    assert not requests(mesh_twin, "POST", "/pods"), "nothing was created"

    proc, _ = bench(mesh_twin, tmp_path, "-e", json.dumps({"netlab_bench_nodes": MESH_NODES}), "-e", "bench_mesh=true",
                    "-e", f"bench_host_label={ZONE}", matrix=SHORT[:1])
    assert proc.returncode == 0
    run = runs(tmp_path)[-1]
    pods = {doc["metadata"]["name"]: doc["spec"]["nodeName"]
            for doc in yaml.safe_load_all((run / "manifests.yaml").read_text()) if doc["kind"] == "Pod"}
    assert pods == {"iperf3-client": MESH_NODES[0], "iperf3-server-cross": MESH_NODES[1],
                    "iperf3-mesh-2": MESH_NODES[2], "iperf3-mesh-3": MESH_NODES[3]}
    # Each node's pod runs the clients of its three pairs, against the other nodes' pods (CannedRuntime's address of
    # the first pod on the node of index i: 10.42.i.10).
    address = {pod: f"10.42.{MESH_NODES.index(node)}.10" for pod, node in pods.items()}
    for pod in pods:
        servers = {server for _, path, query in mesh_twin.requests if path.endswith(f"/pods/{pod}/exec")
                   for server in re.findall(r"--client (\S+)", " ".join(parse_qs(query).get("command", [])))}
        assert servers == set(address.values()) - {address[pod]}, pod
    results = json.loads((run / "summary.json").read_text())["results"]
    pairs = {(r["mesh"]["client"], r["mesh"]["server"]) for r in results}
    assert pairs == {(a, b) for a in MESH_NODES for b in MESH_NODES if a != b} and len(results) == 12
    report = (run / "report.md").read_text()
    assert "## Node-pair mesh" in report
    assert f"Slowest pair: {MESH_NODES[0]} -> {MESH_NODES[3]}" in report and "0.50x the median, both on pve1" in report
    assert "both nodes on one machine" in report

    # No node names: agent-1 (the twin's control plane) is tainted, agent-3 shares agent-2's machine.
    proc, _ = bench(mesh_twin, tmp_path, "-e", json.dumps({"netlab_bench_nodes": []}), "-e", f"bench_host_label={ZONE}",
                    "-e", "bench_distinct_hosts=true", matrix=HOST_ONLY)
    assert proc.returncode == 0
    assert (f"bench_nodes not set: the pair {MESH_NODES[1]} (on pve2), {MESH_NODES[3]} (on pve1), chosen from the "
            "cluster's 4 Ready, schedulable nodes (1 tainted, taken last)") in proc.stdout
    run = runs(tmp_path)[-1]
    assert json.loads((run / "run.json").read_text())["node_hosts"] == {MESH_NODES[1]: "pve2", MESH_NODES[3]: "pve1"}
    pods = {doc["metadata"]["name"]: doc["spec"]["nodeName"]
            for doc in yaml.safe_load_all((run / "manifests.yaml").read_text()) if doc["kind"] == "Pod"}
    assert pods == {"iperf3-client-host": MESH_NODES[1], "iperf3-server-host": MESH_NODES[3]}
    assert f"- Hosts: {MESH_NODES[1]} on pve2, {MESH_NODES[3]} on pve1" in (run / "report.md").read_text()
