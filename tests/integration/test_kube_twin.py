"""The Kubernetes twin driven by the real kubernetes.core modules through the real kubernetes client (HTTPS,
bearer token, exec over WebSocket), with canned exec answers: no podman, seconds per playbook."""

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from netlab_twin import lanes
from netlab_twin.kube import kube_serve

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
