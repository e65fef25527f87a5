"""The Kubernetes twin driven by the real kubernetes.core modules through the real kubernetes client (HTTPS,
bearer token, exec over WebSocket), with canned exec answers: no podman, seconds per playbook."""

import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from netlab_twin import lanes
from netlab_twin.kube import V4, kube_serve
from netlab_twin.kube.runtime import CannedRuntime

ROOT = Path(__file__).resolve().parents[2]


def play(tmp_path, kubeconfig, tasks, name="play", timeout=180):
    """ansible-playbook of ``tasks`` on localhost against the twin; results registered as ``r_<i>`` are
    printed as JSON lines (``RESULT <name> <json>``) and returned by name, with the process."""
    reports = [{"name": f"Report {t['register']}", "ansible.builtin.debug": {
        "msg": f"RESULT {t['register']} {{{{ {t['register']} | to_json }}}}"}} for t in tasks if "register" in t]
    book = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": str(kubeconfig)},
                                 "kubernetes.core.k8s_cluster_info": {"kubeconfig": str(kubeconfig)}},
             "tasks": [dict(t, ignore_errors=True) for t in tasks] + reports}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    # Each test its own TMPDIR: the client's discovery cache (k8srcp-*.json) lives there.
    (tmp_path / "ktmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "ktmp"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_FORCE_COLOR": "false"}
    proc = lanes.run(["ansible-playbook", str(path)], cwd=ROOT, env=env, timeout=timeout)
    results = {}
    for line in proc.stdout.splitlines():
        if '"msg": "RESULT ' in line:
            text = json.loads("{" + line.strip().rstrip(",") + "}")["msg"]
            key, _, doc = text[len("RESULT "):].partition(" ")
            results[key] = json.loads(doc)
    return proc, results


@pytest.fixture
def no_leak():
    """Teardown leaves no twin thread."""
    yield
    assert not [t.name for t in threading.enumerate() if t.name == "kube-twin"]


def test_discovery_nodes_daemonsets_and_cluster_info(tmp_path, no_leak):
    with kube_serve(tmp_path / "twin") as (twin, kubeconfig):
        bad = tmp_path / "bad-kubeconfig"
        doc = yaml.safe_load(kubeconfig.read_text())
        doc["users"][0]["user"]["token"] = "not-" + twin.token
        bad.write_text(yaml.safe_dump(doc))
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s_info": {"kind": "Node", "name": "netlab-agent-2"}, "register": "node"},
            {"kubernetes.core.k8s_info": {"kind": "Node", "name": "netlab-agent-9"}, "register": "missing"},
            {"kubernetes.core.k8s_info": {"api_version": "apps/v1", "kind": "DaemonSet"}, "register": "ds"},
            {"kubernetes.core.k8s_info": {"kind": "Pod", "namespace": "kube-system",
                                          "label_selectors": ["k8s-app=cilium"],
                                          "field_selectors": ["spec.nodeName=netlab-agent-2"]}, "register": "agents"},
            {"kubernetes.core.k8s_cluster_info": {}, "register": "info"},
            {"kubernetes.core.k8s_info": {"kind": "Node", "name": "netlab-agent-1", "kubeconfig": str(bad)},
             "register": "unauthorized"},
        ])
        paths = twin.paths()
    print(proc.stdout[-4000:], proc.stderr[-2000:])
    assert proc.returncode == 0, proc.stderr
    (node,) = res["node"]["resources"]
    assert node["metadata"]["name"] == "netlab-agent-2"
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": "198.18.0.12"}
    assert res["missing"]["resources"] == [] and not res["missing"].get("failed")
    assert [d["metadata"]["name"] for d in res["ds"]["resources"]] == ["cilium"]
    assert [p["spec"]["nodeName"] for p in res["agents"]["resources"]] == ["netlab-agent-2"]
    assert res["info"]["version"]["server"]["kubernetes"]["gitVersion"] == "v1.33.5+netlab-twin"
    assert res["unauthorized"]["failed"]
    assert "401" in res["unauthorized"]["msg"] and "Unauthorized" in res["unauthorized"]["msg"]
    # Discovery as the client does it (the core group built in, no GET /api), only what is served asked for.
    discovery = sorted({p for p in paths if p.split("?")[0] in ("GET /version", "GET /api", "GET /apis",
                                                                "GET /api/v1", "GET /apis/apps/v1")})
    assert discovery == ["GET /api/v1", "GET /apis", "GET /apis/apps/v1", "GET /version"]
    assert not [p for p in paths if p.startswith("GET /apis/") and not p.startswith("GET /apis/apps/v1")]
    assert "GET /api/v1/nodes/netlab-agent-9" in paths
    # The wire's order (kubernetes client 37 puts fieldSelector first), kept for SOURCES.md.
    assert ("GET /api/v1/namespaces/kube-system/pods?fieldSelector=spec.nodeName%3Dnetlab-agent-2"
            "&labelSelector=k8s-app%3Dcilium") in paths


AGENT = {"namespace": "kube-system", "pod": "cilium-00001", "container": "cilium-agent"}
BIG = "".join(f"{i:07d} netlab twin line\n" for i in range(8000))  # 200 000 bytes


def canned():
    return CannedRuntime(answers={"sh -c 'exit 3'": ("partial\n", "it failed\n", 3), "cat /big": (BIG, "", 0)})


def test_exec_rc_big_output_and_cilium_status(tmp_path, no_leak):
    with kube_serve(tmp_path / "twin", runtime=canned()) as (twin, kubeconfig):
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "cilium-dbg status -o json"}, "register": "ok"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "sh -c 'exit 3'"}, "register": "three"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "cat /big"}, "register": "big"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "true", "pod": "cilium-nothere"}, "register": "nopod"},
        ])
        execs = list(twin.execs)
    assert proc.returncode == 0, proc.stderr
    assert res["ok"]["rc"] == 0
    assert json.loads(res["ok"]["stdout"])["cilium"]["state"] == "Ok"
    assert (res["three"]["rc"], res["three"]["stdout"], res["three"]["stderr"]) == (3, "partial\n", "it failed\n")
    assert res["big"]["rc"] == 0 and res["big"]["stdout"] == BIG
    # A missing pod is a Status before the upgrade: k8s_exec's clean failure, not a traceback.
    assert res["nopod"]["failed"] and "Handshake status 404 Not Found" in res["nopod"]["msg"]
    assert "cilium-nothere" in res["nopod"]["msg"] and '"reason": "NotFound"' in res["nopod"]["msg"]
    assert [e["protocol"] for e in execs] == ["v5.channel.k8s.io"] * 3
    assert execs[1]["argv"] == ["sh", "-c", "exit 3"]
    assert execs[1]["status"]["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}


def test_exec_on_a_v4_only_twin(tmp_path, no_leak):
    with kube_serve(tmp_path / "twin", runtime=canned(), protocols=(V4,)) as (twin, kubeconfig):
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "sh -c 'exit 3'"}, "register": "three"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "cat /big"}, "register": "big"},
        ])
        protocols = [e["protocol"] for e in twin.execs]
    assert proc.returncode == 0, proc.stderr
    assert protocols == ["v4.channel.k8s.io"] * 2
    assert res["three"]["rc"] == 3 and res["big"]["stdout"] == BIG


def test_exec_failures_without_an_exit_code_crash_today_s_k8s_exec(tmp_path, no_leak):
    """F4 as the client behaves today: an InternalError status (a fault, or a binary the runtime cannot find)
    and a stream cut before its status both end in a module traceback, no rc, no stdout."""
    with kube_serve(tmp_path / "twin", runtime=canned()) as (twin, kubeconfig):
        twin.faults.arm("exec_internal", pod="cilium-00001", times=1)
        twin.faults.arm("exec_no_status", pod="cilium-00002", times=1)
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "true"}, "register": "internal"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "netperf-missing -V"}, "register": "missing"},
            {"kubernetes.core.k8s_exec": {**AGENT, "pod": "cilium-00002", "command": "iperf3 --version"},
             "register": "cut"},
            {"kubernetes.core.k8s_exec": {**AGENT, "command": "true"}, "register": "after"},
        ])
        statuses = [e["status"] for e in twin.execs]
    assert proc.returncode == 0, proc.stderr
    for key in ("internal", "missing"):
        assert res[key]["failed"] and "rc" not in res[key]
        # ansible-core 2.19 words the module's traceback as "Module failed: <exception>".
        assert "Module failed: invalid literal for int() with base 10" in res[key]["msg"]
    assert "executable file not found in $PATH" in res["missing"]["msg"]
    assert res["cut"]["failed"] and "rc" not in res["cut"] and "stdout" not in res["cut"]
    assert "Module failed: 'NoneType' object is not subscriptable" in res["cut"]["msg"]
    assert res["after"]["rc"] == 0  # times=1: consumed
    assert statuses[0]["reason"] == "InternalError" and statuses[0]["code"] == 500
    assert statuses[1]["details"]["causes"][0]["message"].startswith("error executing command in container: OCI")
    assert statuses[2] is None


def test_a_client_that_leaves_kills_the_process_and_a_stall_holds(tmp_path, no_leak):
    """The exec stream as the kubernetes client opens it, closed by the client mid-command: the runtime's
    process is killed. A stalled exec sends nothing after the handshake until the client leaves."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    runtime = CannedRuntime(answers={"sleep 30": ("", "", 0, 30.0)})
    with kube_serve(tmp_path / "twin", runtime=runtime) as (twin, kubeconfig):
        twin.faults.arm("exec_stall", pod="cilium-00002")
        api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        opened = {}
        for pod, command in (("cilium-00001", ["sleep", "30"]), ("cilium-00002", ["true"])):
            resp = stream(api.connect_get_namespaced_pod_exec, pod, "kube-system", command=command,
                          container="cilium-agent", stdout=True, stderr=True, stdin=False, tty=False,
                          _preload_content=False)
            resp.update(timeout=1)
            opened[pod] = resp
        stalled = opened["cilium-00002"]
        assert stalled.is_open() and not stalled.peek_channel(3)
        for resp in opened.values():
            resp.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not runtime.killed or twin.exec_sessions):
            time.sleep(0.1)
        assert runtime.killed == [["sleep", "30"]]
        assert not twin.exec_sessions
        assert [e["status"] for e in twin.execs] == [None, None]


NODES = ["netlab-agent-1", "netlab-agent-2"]
IMAGE = "registry.example/netlab-bench@sha256:" + "a" * 64
OWN = "app.kubernetes.io/name=netlab-iperf3"


def run_docs(run_id="20261206-twin", placements=("same-node", "cross-node", "host", "service")):
    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects

    docs = kube_objects.manifests(run_id, NODES, list(placements), IMAGE, 5201, netperf_port=12865)
    return docs[0]["metadata"]["name"], [d for d in docs if d["kind"] != "Pod"], [d for d in docs if d["kind"] == "Pod"]


def test_a_run_s_objects_live_and_go(tmp_path, no_leak):
    """The role's calls on the role's objects: namespace and Service, the pods waited for Ready, read back,
    exec'd in (the commands the plan sends, parsed by the project's readers), re-applied (no change), and
    the namespace deleted through Terminating to gone."""
    import shlex

    from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_calls, kube_read

    ns, first, pods = run_docs()
    client = {"namespace": ns, "pod": "iperf3-client", "container": "iperf3"}
    server_pod = {**client, "pod": "iperf3-server-cross"}
    test = cpu.around(["timeout", "40", "iperf3", "--client", "10.42.1.10", "--port", "5201", "--json"])
    waits = {"wait": True, "wait_timeout": 10, "wait_sleep": 1}
    runtime = CannedRuntime()
    with kube_serve(tmp_path / "twin", runtime=runtime) as (twin, kubeconfig):
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s": {"state": "present", "definition": first, **waits}, "register": "first"},
            {"kubernetes.core.k8s": {"state": "present", "definition": pods, **waits,
                                     "wait_condition": {"type": "Ready", "status": "True"}}, "register": "pods"},
            {"kubernetes.core.k8s_info": {"kind": "Pod", "namespace": ns, "label_selectors": [OWN]},
             "register": "read"},
            {"kubernetes.core.k8s_exec": {**client, "command": shlex.join(kube_calls.in_pod(["iperf3", "--version"]))},
             "register": "version"},
            {"kubernetes.core.k8s_exec": {**server_pod, "command": shlex.join(kube_calls.in_pod(
                cpu.sampler("tcp-1", 60)))}, "register": "sampler"},
            {"kubernetes.core.k8s_exec": {**client, "command": shlex.join(test)}, "register": "test"},
            {"kubernetes.core.k8s_exec": {**server_pod, "command": shlex.join(kube_calls.in_pod(
                cpu.sampled("tcp-1")))}, "register": "sampled"},
            {"kubernetes.core.k8s": {"state": "present", "definition": pods[:2]}, "register": "again"},
            {"kubernetes.core.k8s": {"state": "absent", "api_version": "v1", "kind": "Namespace", "name": ns},
             "register": "terminating"},
            {"kubernetes.core.k8s": {"state": "absent", "api_version": "v1", "kind": "Namespace", "name": ns,
                                     **waits}, "register": "deleted"},
            {"kubernetes.core.k8s_info": {"kind": "Namespace", "name": ns}, "register": "gone"},
        ])
        paths = twin.paths()
    assert proc.returncode == 0, proc.stderr
    assert not [k for k, v in res.items() if v.get("failed")], {k: v.get("msg") for k, v in res.items()}
    ns_obj, svc = (r["result"] for r in res["first"]["result"]["results"])
    assert ns_obj["status"]["phase"] == "Active" and svc["spec"]["clusterIP"] == "10.43.0.10"
    read = {p["metadata"]["name"]: p for p in res["read"]["resources"]}
    assert sorted(read) == sorted(p["metadata"]["name"] for p in pods)
    for name, pod in read.items():
        status, spec = pod["status"], pod["spec"]
        assert status["phase"] == "Running" and status["podIP"], name
        assert {c["type"]: c["status"] for c in status["conditions"]} == dict.fromkeys(
            ("PodScheduled", "Initialized", "ContainersReady", "Ready"), "True")
        (container,) = status["containerStatuses"]
        assert container["ready"] and "running" in container["state"] and container["imageID"].startswith(IMAGE)
        assert (spec["schedulerName"], spec["serviceAccountName"], spec["enableServiceLinks"]) == (
            "default-scheduler", "default", True)
        ports = spec["containers"][0]["ports"]
        if spec.get("hostNetwork"):
            assert status["podIP"] == status["hostIP"] and all(p["hostPort"] == p["containerPort"] for p in ports)
        else:
            assert spec["dnsPolicy"] == "ClusterFirst" and not any("hostPort" in p for p in ports)
    server = read["iperf3-server-cross"]["status"]["podIP"]
    # The Service came first (no backend), then its server pod became Ready: synced then (and emptied when
    # the namespace's pods went).
    assert runtime.syncs[:2] == [(f"{ns}/iperf3-cross", []), (f"{ns}/iperf3-cross", [server])]
    assert kube_read.iperf3_version(res["version"]["stdout"]) == "3.18"
    readings, clocks, rest = cpu.split_stderr(res["test"]["stderr"])
    assert res["test"]["rc"] == 0 and len(readings["client"]) == 2 and len(clocks) == 2 and rest == ""
    assert json.loads(res["test"]["stdout"])["end"]["sum_sent"]["bits_per_second"] > 0
    assert res["sampler"]["stdout"] == "sampling\n"
    assert cpu.server_readings(res["sampled"]["stdout"], clocks)  # the server's readings bracket the client's
    assert not res["again"]["changed"]  # the same definitions again: PATCH, nothing changes
    assert res["terminating"]["result"]["status"]["phase"] == "Terminating"
    assert res["terminating"]["result"]["metadata"]["deletionTimestamp"]
    assert res["gone"]["resources"] == []
    assert sorted(runtime.stopped) == sorted(f"{ns}/{p['metadata']['name']}" for p in pods)
    assert runtime.services == {}
    assert f"DELETE /api/v1/namespaces/{ns}" in paths
    assert any(p.startswith(f"PATCH /api/v1/namespaces/{ns}/pods/") for p in paths)


def test_pods_that_cannot_start_as_the_kubelet_shows_them(tmp_path, no_leak):
    """image_pull, crash, reject and config_error through the real modules: created without waiting, then read;
    a wait on a pod that never gets Ready is today's F1 ("Timed out waiting on resource", the full timeout)."""
    ns, first, pods = run_docs(placements=("same-node", "cross-node", "host"))
    by_name = {p["metadata"]["name"]: p for p in pods}
    with kube_serve(tmp_path / "twin") as (twin, kubeconfig):
        twin.faults.arm("image_pull", pod="iperf3-server-cross", seconds=1)
        twin.faults.arm("crash", pod="iperf3-client")
        twin.faults.arm("reject", pod="iperf3-server-host")
        twin.faults.arm("config_error", pod="iperf3-server-same")
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s": {"state": "present", "definition": first, "wait": True}, "register": "first"},
            {"kubernetes.core.k8s": {"state": "present", "definition": [by_name["iperf3-client-host"],
                                                                          by_name["iperf3-server-cross"]],
                                     "wait": True, "wait_timeout": 3, "wait_sleep": 1,
                                     "wait_condition": {"type": "Ready", "status": "True"}}, "register": "waited"},
            {"kubernetes.core.k8s": {"state": "present", "definition": pods}, "register": "created"},
            {"ansible.builtin.pause": {"seconds": 2}},
            {"kubernetes.core.k8s_info": {"kind": "Pod", "namespace": ns, "label_selectors": [OWN]},
             "register": "read"},
        ])
    assert proc.returncode == 0, proc.stderr
    assert res["waited"]["failed"] and "Timed out waiting on resource" in res["waited"]["msg"]
    assert not res["created"].get("failed")
    read = {p["metadata"]["name"]: p["status"] for p in res["read"]["resources"]}
    waiting = {name: s["containerStatuses"][0]["state"].get("waiting", {}) for name, s in read.items()
               if s.get("containerStatuses")}
    assert waiting["iperf3-server-cross"]["reason"] == "ImagePullBackOff"
    assert waiting["iperf3-server-cross"]["message"] == f'Back-off pulling image "{IMAGE}"'
    assert waiting["iperf3-server-same"]["reason"] == "CreateContainerConfigError"
    assert waiting["iperf3-client"]["reason"] == "CrashLoopBackOff"
    crashed = read["iperf3-client"]["containerStatuses"][0]
    assert crashed["lastState"]["terminated"]["exitCode"] == 1 and crashed["restartCount"] == 1
    assert read["iperf3-server-host"]["phase"] == "Failed" and read["iperf3-server-host"]["reason"] == "NodePorts"
    assert "podIP" not in read["iperf3-server-host"]
    assert read["iperf3-client-host"]["phase"] == "Running"
    for name in ("iperf3-server-cross", "iperf3-server-same", "iperf3-client"):
        ready = {c["type"]: c for c in read[name]["conditions"]}["Ready"]
        assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady", name


def test_admission_races_stale_runs_and_an_api_that_goes_away(tmp_path, no_leak):
    """sa_late: a pod POSTed right after its namespace is refused (403) until the ServiceAccount exists (F6);
    stale_ns: an earlier run's namespace holds the host ports, so this run's host server is rejected (F2);
    api_gone: the listener and connections close mid-run; with back_after the API returns and a waiting
    k8s_info gets its answer."""
    ns, first, pods = run_docs(placements=("host",))
    server = next(p for p in pods if p["metadata"]["name"] == "iperf3-server-host")
    with kube_serve(tmp_path / "twin") as (twin, kubeconfig):
        twin.faults.arm("sa_late", pod=ns, seconds=4)
        twin.faults.arm("stale_ns", name="netlab-bench-20250101-000000", node=NODES[1])
        twin.faults.arm("api_gone", path="/api/v1/namespaces/kube-system/pods/cilium-00001", times=1, back_after=3)
        proc, res = play(tmp_path, kubeconfig, [
            {"kubernetes.core.k8s": {"state": "present", "definition": first}, "register": "first"},
            {"kubernetes.core.k8s": {"state": "present", "definition": server}, "register": "early"},
            {"kubernetes.core.k8s_info": {"kind": "ServiceAccount", "namespace": ns, "name": "default",
                                          "wait": True, "wait_timeout": 10, "wait_sleep": 1}, "register": "sa"},
            {"kubernetes.core.k8s": {"state": "present", "definition": server}, "register": "late"},
            {"kubernetes.core.k8s_info": {"kind": "Namespace", "label_selectors": [OWN]}, "register": "runs"},
            {"kubernetes.core.k8s_info": {"kind": "Pod", "namespace": ns, "name": "iperf3-server-host"},
             "register": "rejected"},
            {"kubernetes.core.k8s_info": {"kind": "Pod", "namespace": "kube-system", "name": "cilium-00001",
                                          "wait": True, "wait_timeout": 15, "wait_sleep": 1}, "register": "back"},
        ])
        paths, outages = twin.paths(), twin.outages
    assert proc.returncode == 0, proc.stderr
    assert res["early"]["failed"] and "403" in res["early"]["msg"]
    assert f"error looking up service account {ns}/default" in res["early"]["msg"]
    assert res["sa"]["resources"] and not res["late"].get("failed")
    assert sorted(n["metadata"]["name"] for n in res["runs"]["resources"]) == ["netlab-bench-20250101-000000", ns]
    (rejected,) = res["rejected"]["resources"]
    assert (rejected["status"]["phase"], rejected["status"]["reason"]) == ("Failed", "NodePorts")
    assert rejected["status"]["message"] == ("Pod was rejected: Predicate NodePorts failed: node(s) didn't have free "
                                            "ports for the requested pod ports")
    assert outages == 1 and res["back"]["resources"][0]["metadata"]["name"] == "cilium-00001"
    gone = paths.index("GET /api/v1/namespaces/kube-system/pods/cilium-00001")
    assert paths[gone + 1:].count("GET /api/v1/namespaces/kube-system/pods/cilium-00001") >= 1


def test_served_from_the_command_line_with_faults_from_the_environment(tmp_path):
    """python -m netlab_twin.kube serve: the kubeconfig path first, the nodes asked for, NETLAB_KTWIN_FAULTS
    armed, and SIGTERM tears it down (exit 0, the port closed)."""
    import signal
    import socket
    import subprocess
    import sys

    from kubernetes import client, config

    faults = json.dumps([{"fault": "image_pull", "pod": "stuck", "seconds": 30}])
    env = {**os.environ, "NETLAB_KTWIN_FAULTS": faults}
    with subprocess.Popen([sys.executable, "-m", "netlab_twin.kube", "serve", "--dir", str(tmp_path / "d"),
                           "--canned", "--nodes", "node-a,node-b", "--cni", "canal"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        try:
            kubeconfig = proc.stdout.readline().strip()
            assert kubeconfig == str(tmp_path / "d" / "kubeconfig")
            api = client.CoreV1Api(config.new_client_from_config(kubeconfig))
            nodes = api.list_node().items
            assert [n.metadata.name for n in nodes] == ["node-a", "node-b"]
            assert nodes[0].metadata.annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan"
            api.create_namespace({"metadata": {"name": "t"}})
            pod = {"metadata": {"name": "stuck"}, "spec": {"nodeName": "node-a",
                                                          "containers": [{"name": "c", "image": "x:1"}]}}
            api.create_namespaced_pod("t", pod)
            deadline = time.monotonic() + 10
            reason = None
            while time.monotonic() < deadline and reason is None:
                statuses = api.read_namespaced_pod("stuck", "t").status.container_statuses or []
                reason = statuses[0].state.waiting.reason if statuses else None
                time.sleep(0.2)
            assert reason == "ErrImagePull"
            server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
            port = int(server.rsplit(":", 1)[1])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0, proc.stderr.read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1).close()
