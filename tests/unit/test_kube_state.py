"""Kubernetes transport: whether a run can go on, from what the cluster answers (kube_state.py).

The pod shapes are the kubelet's (pod-lifecycle: phases, waiting reasons); the exec failures are what
kubernetes.core 6.2 k8s_exec leaves when a status carries no exit code (its module_stderr's last line).
"""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects, kube_state, kube_stream

NAMES = ["iperf3-client", "iperf3-server-cross"]
# The kubelet's words for a pod whose host ports are taken (pkg/kubelet/lifecycle/predicate.go).
REJECTED = "Pod was rejected: node didn't have free ports for the requested pod ports"


def pod(name, phase="Running", ready=True, waiting=None, message="", last_exit=None, **status):
    containers = [{"name": "iperf3", "ready": ready, "restartCount": 0,
                   "state": {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {}}}]
    if last_exit is not None:
        containers[0]["lastState"] = {"terminated": {"exitCode": last_exit}}
    return {"metadata": {"name": name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": containers, **status}}


def test_ready_pods_end_the_wait():
    state = kube_state.pods_state({"resources": [pod(n) for n in NAMES]}, NAMES)
    assert state == {"ready": True, "problems": [], "done": True, "message": "not every pod became Ready in time: "}


def test_a_pod_still_starting_keeps_the_wait_and_says_where_it_is():
    state = kube_state.pods_state({"resources": [pod(NAMES[0]), pod(NAMES[1], "Pending", False, "ContainerCreating")]},
                                  NAMES)
    assert not state["done"] and not state["ready"]
    assert state["message"] == "not every pod became Ready in time: iperf3-server-cross Pending (ContainerCreating)"
    assert "iperf3-server-cross not found" in kube_state.pods_state({"resources": [pod(NAMES[0])]}, NAMES)["message"]


@pytest.mark.parametrize(("one", "said"), [
    (pod(NAMES[1], "Pending", False, "ErrImagePull", "rpc error: not found"),
     "pod iperf3-server-cross cannot start: ErrImagePull: rpc error: not found"),
    (pod(NAMES[1], "Pending", False, "ImagePullBackOff", "Back-off pulling image"),
     "pod iperf3-server-cross cannot start: ImagePullBackOff: Back-off pulling image"),
    (pod(NAMES[1], "Running", False, "CrashLoopBackOff", "back-off 10s restarting", last_exit=1),
     "pod iperf3-server-cross cannot start: CrashLoopBackOff: back-off 10s restarting (last exit code 1)"),
    (pod(NAMES[1], "Pending", False, "CreateContainerConfigError", 'secret "x" not found'),
     'pod iperf3-server-cross cannot start: CreateContainerConfigError: secret "x" not found'),
    ({"metadata": {"name": NAMES[1]}, "status": {"phase": "Failed", "reason": "NodePorts", "message": REJECTED}},
     "pod iperf3-server-cross failed: NodePorts: Pod was rejected: node didn't have free ports for the requested "
     "pod ports"),
])
def test_a_pod_that_cannot_start_ends_the_wait_with_its_reason(one, said):
    state = kube_state.pods_state({"resources": [pod(NAMES[0]), one]}, NAMES)
    assert state["done"] and not state["ready"] and state["message"] == said


def test_the_agent_asked_is_running_and_not_terminating():
    old = pod("cilium-old") | {"metadata": {"name": "cilium-old", "deletionTimestamp": "2026-12-06T08:00:00Z",
                                            "creationTimestamp": "2026-12-01T00:00:00Z"}}
    new = pod("cilium-new") | {"metadata": {"name": "cilium-new", "creationTimestamp": "2026-12-06T08:00:01Z"}}
    pending = pod("cilium-pending", "Pending", False)
    found = kube_state.agents({"results": [{"resources": [old, new]}, {"resources": [pending, pod("cilium-b")]}]},
                              ["w1", "w2"])
    assert found == ["cilium-new", "cilium-b"]
    with pytest.raises(kube_objects.KubeError, match="no running Cilium agent on w2: "):
        kube_state.agents({"results": [{"resources": [new]}, {"resources": [old, pending]}]}, ["w1", "w2"])
    with pytest.raises(kube_objects.KubeError, match="on w2"):
        kube_state.agents({"results": [{"resources": [new]}]}, ["w1", "w2"])


def test_stale_namespaces_are_the_others_oldest_first():
    found = kube_state.stale_namespaces({"resources": [
        {"metadata": {"name": "netlab-bench-b", "creationTimestamp": "2026-12-06T08:00:00Z"}},
        {"metadata": {"name": "netlab-bench-now", "creationTimestamp": "2026-12-06T09:00:00Z"}},
        {"metadata": {"name": "netlab-bench-a", "creationTimestamp": "2026-12-05T08:00:00Z"}}]}, "netlab-bench-now")
    assert found["names"] == ["netlab-bench-a", "netlab-bench-b"] and found["interrupted"] == []


def test_an_interrupted_run_of_this_controller_is_told_from_a_running_one():
    """Its ansible-playbook gone (Ctrl-C, kill): removed; still there, another host's, or unmarked: refused."""
    me = {"host": "ctl", "pid": 300}

    def ns(name, mark=None):
        return {"metadata": {"name": name, **({"annotations": {kube_objects.CONTROLLER: mark}} if mark else {})}}

    found = kube_state.stale_namespaces({"resources": [
        ns("gone", "ctl/100"), ns("running", "ctl/200"), ns("elsewhere", "other/100"), ns("unmarked"),
        ns("mine-again", "ctl/300")]}, "now", me, alive=lambda pid: pid == 200)
    assert found["interrupted"] == ["gone"]
    assert found["names"] == ["running", "elsewhere", "unmarked", "mine-again"]
    # The mark the run writes, from the lookup's {host, pid}.
    docs = kube_objects.manifests("run-1", ["a", "b"], ["cross-node"], "x@sha256:" + "0" * 64, 5201, controller=me)
    assert docs[0]["metadata"]["annotations"] == {kube_objects.CONTROLLER: "ctl/300"}


# The kubelet's statuses on channel 3 (pkg/kubelet/cri/streaming/remotecommand: ServeExec writes an ExitError as
# NonZeroExitCode with its code, any other error as apierrors.NewInternalError, whose cause is the error's text).
NONZERO = {"metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code: exit 3",
           "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
MISSING = ('error executing command in container: failed to exec in container: exec: "netperf": executable file not '
           "found in $PATH")
INTERNAL = {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {MISSING}",
            "reason": "InternalError", "details": {"causes": [{"message": MISSING}]}, "code": 500}


@pytest.mark.parametrize(("text", "rc", "problem"), [
    ('{"metadata":{},"status":"Success"}', 0, ""),
    (json.dumps(NONZERO), 3, ""),
    (json.dumps(INTERNAL), None, f"could not run in the pod: {MISSING}"),
    ("", None, kube_stream.NO_STATUS),
    (None, None, kube_stream.NO_STATUS),
    ("<html>", None, "the exec's status is not JSON: '<html>'"),
])
def test_an_exec_status_is_read_as_the_kubelet_writes_it(text, rc, problem):
    assert kube_stream.status(text) == (rc, problem)


@pytest.mark.parametrize(("result", "said"), [
    ({"rc": 0, "stdout": "1500"}, None),
    ({"rc": 127, "stderr": "sh: 1: netperf: not found\n"}, "netperf -V exited 127: sh: 1: netperf: not found"),
    # netlab.lab.kube_exec registered with ignore_errors: no exit code, the exec's own words.
    ({"failed": True, "rc": None, "msg": f"could not run in the pod: {MISSING}"},
     f"netperf -V: could not run in the pod: {MISSING}"),
    ({"failed": True, "rc": None, "msg": kube_stream.NO_STATUS}, f"netperf -V: {kube_stream.NO_STATUS}"),
    ({"failed": True, "rc": 1, "msg": "the command exited 1", "stdout": "", "stderr": ""}, "netperf -V exited 1"),
    # The task's timeout, in ansible-core 2.19's words.
    ({"failed": True, "msg": "Task failed: Timed out after 30 second(s)", "timedout": {"period": 30}},
     "netperf -V: Task failed: Timed out after 30 second(s)"),
    ({"failed": True, "rc": None,
      "msg": "Failed to execute on pod iperf3-client due to : (0)\nReason: Handshake status 404"},
     "netperf -V: Failed to execute on pod iperf3-client due to : (0)"),
    ({"skipped": True}, None),
])
def test_an_exec_problem_is_said_in_words(result, said):
    assert kube_state.exec_problem(result, "netperf -V") == said
    assert "Traceback" not in (said or "")


def test_looped_exec_problems_name_their_node():
    looped = {"results": [{"rc": 0, "item": {"node": "w1"}}, {"rc": 2, "stderr": "no", "item": {"node": "w2"}}]}
    assert kube_state.exec_problems([(looped, "/proc/cpuinfo read")]) == ["/proc/cpuinfo read (w2) exited 2: no"]


def test_cilium_s_json_is_taken_only_from_an_exec_that_ended():
    status = '{"cilium": {"state": "Warning"}}'
    # cilium-dbg status exits 1 whenever Cilium is not fully Ok: its JSON is still the answer.
    assert kube_state.json_or_problem({"rc": 1, "stdout": status}, "cilium-dbg status")["cilium"]["state"] == "Warning"
    # No exit code: what it printed may be a part of the answer, even when it parses.
    with pytest.raises(kube_objects.KubeError, match="cilium-dbg status: the exec stream ended without an exit"):
        kube_state.json_or_problem({"rc": None, "stdout": status, "msg": kube_stream.NO_STATUS}, "cilium-dbg status")
    with pytest.raises(kube_objects.KubeError, match=r"cilium-dbg status printed no JSON .*'level=info'"):
        kube_state.json_or_problem({"rc": 0, "stdout": "level=info"}, "cilium-dbg status")
