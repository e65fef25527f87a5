"""The Kubernetes twin's pure parts beside the store: faults, pod and Service defaults, discovery documents,
CannedRuntime's answers to the commands the role sends."""

import json
import shlex
import time

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_calls, kube_read
from netlab_twin.kube import discovery
from netlab_twin.kube.faults import Faults
from netlab_twin.kube.pods import pod_defaults, qos_class
from netlab_twin.kube.runtime import CannedRuntime, ExecError
from netlab_twin.kube.services import service_defaults


def test_faults_match_pods_by_pattern_and_are_consumed_when_counted():
    faults = Faults()
    faults.arm("image_pull", pod="iperf3-server-*", seconds=1)
    faults.arm("crash", pod="iperf3-client", times=1)
    assert faults.take("image_pull", "iperf3-client") is None
    assert faults.take("image_pull", "iperf3-server-cross").args == {"seconds": 1}
    assert faults.take("image_pull", "iperf3-server-host") is not None  # sticky
    assert faults.take("crash", "iperf3-client") is not None
    assert faults.take("crash", "iperf3-client") is None  # consumed
    with pytest.raises(ValueError, match="unknown fault"):
        faults.arm("disk_full")


def test_faults_from_the_environment_and_by_request_path():
    faults = Faults()
    faults.load(json.dumps([{"fault": "api_gone", "path": "/pods/x", "times": 1, "back_after": 2},
                            {"fault": "reject", "pod": "a", "reason": "OutOfcpu"}]))
    faults.load(json.dumps({"sa_late": {"seconds": 3}}))
    assert faults.take("api_gone", path="/api/v1/nodes") is None
    assert faults.take("api_gone", path="/api/v1/namespaces/n/pods/x").args["back_after"] == 2
    assert faults.take("api_gone", path="/api/v1/namespaces/n/pods/x") is None
    assert faults.take("reject", "a").args == {"reason": "OutOfcpu"}
    assert faults.take("sa_late", "any-namespace").args == {"seconds": 3}


def test_pod_defaults_as_the_api_server_fills_them():
    host = pod_defaults({"spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet", "containers": [
        {"name": "c", "image": "r/x@sha256:" + "a" * 64, "ports": [{"containerPort": 5201, "protocol": "UDP"},
                                                                   {"containerPort": 12865}]}]}})
    spec = host["spec"]
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"  # set by the client: kept
    assert (spec["schedulerName"], spec["serviceAccountName"], spec["enableServiceLinks"]) == (
        "default-scheduler", "default", True)
    assert spec["containers"][0]["ports"] == [{"containerPort": 5201, "protocol": "UDP", "hostPort": 5201},
                                              {"containerPort": 12865, "protocol": "TCP", "hostPort": 12865}]
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    plain = pod_defaults({"spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 1}]}]}})
    assert plain["spec"]["dnsPolicy"] == "ClusterFirst"
    assert plain["spec"]["containers"][0]["ports"] == [{"containerPort": 1, "protocol": "TCP"}]
    assert plain["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # no tag: latest
    assert pod_defaults(json.loads(json.dumps(plain))) == plain  # defaulting twice changes nothing


def test_qos_and_service_defaults():
    def pod(resources):
        return {"spec": {"containers": [{"name": "c", "resources": resources}]}}

    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"requests": {"cpu": "100m", "memory": "64Mi"}})) == "Burstable"
    assert qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    svc = service_defaults({"spec": {"selector": {"a": "b"}, "ports": [{"name": "p", "port": 80}]}}, "10.43.0.10")
    assert svc["spec"]["clusterIPs"] == ["10.43.0.10"] and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "p", "port": 80, "protocol": "TCP", "targetPort": 80}]
    headless = service_defaults({"spec": {"clusterIP": "None"}}, "10.43.0.11")
    assert headless["spec"]["clusterIP"] == "None" and "clusterIPs" not in headless["spec"]


def test_discovery_lists_subresources_and_only_served_groups():
    core = discovery.resource_list("v1")
    names = [r["name"] for r in core["resources"]]
    assert {"pods", "pods/exec", "pods/status", "namespaces", "nodes", "services", "serviceaccounts"} <= set(names)
    assert discovery.resource_list("apps/v1")["resources"][0]["kind"] == "DaemonSet"
    assert discovery.resource_list("batch/v1") is None
    assert [g["name"] for g in discovery.api_groups()["groups"]] == ["apps", "coordination.k8s.io"]


def test_canned_answers_parse_as_the_role_reads_them():
    """Each command the role sends (kube_calls, cpu), wrapped as it sends it, answered so its readers parse it."""
    runtime = CannedRuntime()

    def run(argv):
        return runtime.answer(kube_calls.in_pod(argv))

    assert kube_read.iperf3_version(run(["iperf3", "--version"])[0]) == "3.18"
    assert kube_read.netperf_version(run(["netperf", "-V"])[0]) == "2.7.0"
    assert kube_read.cpuinfo_model(run(["cat", "/proc/cpuinfo"])[0])
    assert run(shlex.split("cat /sys/class/net/eth0/mtu"))[0].strip().isdigit()
    assert run(cpu.sampler("tcp-1", 60))[:3] == ("sampling\n", "", 0)
    stdout, stderr, rc = runtime.answer(cpu.around(["timeout", "40", "netperf", "-P", "0", "-t", "TCP_CRR"]))[:3]
    readings, clocks, rest = cpu.split_stderr(stderr)
    assert rc == 0 and len(readings["client"]) == 2 and len(clocks) == 2 and rest == ""
    assert "TRANSACTION_RATE=" in stdout
    time.sleep(0.25)  # the role's next exec comes seconds later: the sampler has read past the client's end
    log = run(cpu.sampled("tcp-1"))[0]
    server = cpu.server_readings(log, clocks)
    assert server and all(cpu.parse_reading(r) for r in server)
    assert cpu.usage({"client": dict(zip(("before", "after"), readings["client"], strict=True)),
                      "server": dict(zip(("before", "after"), server, strict=True))})["shared_kernel"] is True
    udp = json.loads(runtime.answer(["iperf3", "--client", "10.0.0.1", "--udp", "--json"])[0])
    assert udp["start"]["test_start"]["protocol"] == "UDP"
    assert run(["cilium", "status"])[1:3] == ("sh: 1: exec: cilium: not found\n", 127)  # the shell's 127 (F4 fix)
    with pytest.raises(ExecError, match='exec: "cilium": executable file not found'):
        runtime.answer(["cilium", "status"])  # run directly: the runtime's own error
