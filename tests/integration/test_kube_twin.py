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
