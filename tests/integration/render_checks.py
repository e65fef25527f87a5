"""What the Kubernetes transport's render-only run leaves: manifests valid for Kubernetes, the calls it would make.

Shared by the local lab's render and the existing-cluster inventory's (test_existing_cluster.py).
"""

import json
import re
import shlex
from pathlib import Path

import kubernetes_validate
import yaml


def check_rendered(run: Path, nodes: list[str]) -> list[dict]:
    """manifests.yaml valid for Kubernetes 1.33 (strict), k8s_calls.yaml naming every call, nothing else."""
    assert not (run / "run.json").exists() and not list((run / "raw").iterdir())
    docs = list(yaml.safe_load_all((run / "manifests.yaml").read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)
        # A probe connecting to the iperf3 port would take the one-client server from the test.
        assert "readinessProbe" not in json.dumps(doc)
    pinned = {d["metadata"]["name"]: d["spec"]["nodeName"] for d in docs if d["kind"] == "Pod"}
    assert pinned["iperf3-client"] == nodes[0] and pinned["iperf3-server-cross"] == nodes[1]
    assert docs[0]["kind"] == "Namespace" and docs[0]["metadata"]["name"] == kube_namespace(run.name)
    calls = yaml.safe_load((run / "k8s_calls.yaml").read_text())["calls"]
    assert calls["create_namespace"]["definition"] + calls["create_pods"]["definition"] == docs
    # Created together, then polled until Ready or one cannot start (review F1).
    assert calls["create_pods"]["wait"] is False
    assert calls["wait_pods"]["names"] == list(pinned) and calls["wait_pods"]["delay"] > 0
    # Earlier runs' namespaces are looked for before anything is created (review F2).
    assert list(calls).index("read_stale") < list(calls).index("create_namespace")
    assert calls["delete_namespace"]["wait"] is True
    assert calls["delete_namespace"]["name"] == docs[0]["metadata"]["name"]
    assert {c["node"]: pinned[c["pod"]] for c in calls["cpu_info"]} == {n: n for n in nodes}
    for test in calls["tests"]:
        # Between two readings of the client node's /proc/stat, the server pod's read by its own exec.
        command = shlex.join(shlex.split(test["args"]["command"])[4:])
        assert re.match(rf"timeout {test['in_pod_timeout']} (iperf3 --client |netperf -P 0 -H )", command), command
        assert test["cpu_args"]["start"]["pod"] == test["cpu_args"]["read"]["pod"]
        assert test["cpu_args"]["read"]["pod"].startswith("iperf3-server-")
        assert test["task_timeout"] > test["in_pod_timeout"]
        assert test["retries"] * test["delay"] >= 1
    return docs


def kube_namespace(run_id: str) -> str:
    return "netlab-bench-" + run_id.lower()
