"""Kubernetes transport of the benchmark: the arguments of every kubernetes.core call, by step.

The role drives the cluster from the controller with kubernetes.core. Its tasks write how each module
is asked (state, wait, the Ready condition, kinds) literally, and take from here what depends on the
run: the objects, names, selectors, commands and timeouts (``cluster_calls``, ``calls``). The
render-only run keeps every call whole, both parts, as k8s_calls.yaml (``all_calls``); test_kube
holds the tasks to it. Pure functions, no Ansible imports.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import congestion, kube_objects

# How each module is asked, per step: what the role's tasks write literally. Here only so that the
# rendered calls describe each call whole.
FIXED: dict[str, dict[str, Any]] = {
    "read_nodes": {"kind": "Node"},
    "read_daemonsets": {"api_version": "apps/v1", "kind": "DaemonSet"},
    "read_cilium_pods": {"kind": "Pod"},
    "cluster_info": {"invalidate_cache": False},
    "read_stale": {"api_version": "v1", "kind": "Namespace"},
    # Each by name (found by read_stale), never by label: this run's own namespace carries the label too.
    "remove_stale": {"state": "absent", "api_version": "v1", "kind": "Namespace", "wait": True, "wait_sleep": 1},
    "create_namespace": {"state": "present", "wait": True},
    "wait_service_account": {"kind": "ServiceAccount", "name": "default", "wait": True, "wait_sleep": 1},
    # All pods at once, then waited for together, by polls that also see a pod that cannot start.
    "create_pods": {"state": "present", "wait": False},
    "wait_pods": {"kind": "Pod"},
    "read_pods": {"kind": "Pod"},
    "read_services": {"kind": "Service"},
    "delete_namespace": {"state": "absent", "api_version": "v1", "kind": "Namespace", "wait": True, "wait_sleep": 1},
    # The lab's lock (kube_lease.py): taken by the project's own action, read back and released by kubernetes.core.
    "release_lease": {"state": "absent", "api_version": "coordination.k8s.io/v1", "kind": "Lease"},
}
# The order a whole call lists its arguments in (k8s_calls.yaml): what, where, then how long.
ORDER = ("node", "state", "api_version", "kind", "namespace", "name", "pod", "container", "command", "definition",
         "label_selectors", "field_selectors", "wait", "wait_condition", "wait_sleep", "wait_timeout", "retries",
         "delay", "invalidate_cache", "task_timeout")
# What a call carries that is no module argument: task keywords (the name of the keyword), and what the
# role reads itself (the loop item's node, the pod a congestion control read was made in, the pods waited for).
TASK_KEYWORDS = {"task_timeout": "timeout", "retries": "retries", "delay": "delay"}
NOT_ARGUMENTS = ("node", "read_in", "names")
# Every exec is bounded twice (review F3): inside the pod by coreutils timeout, so the command ends there
# too, and by the task's own timeout, which closes the exec's stream (netlab.lab.kube_exec; kubernetes.core
# 6.2's k8s_exec loops while the socket is open, with no deadline). The task's bound leaves room for the
# API server's and the runtime's exec around the command: 5 s (bench_exec_timeout sets the task's bound).
EXEC_TASK_SECONDS = matrix.EXEC_TASK_TIMEOUT
EXEC_ROOM_SECONDS = 5
# The ServiceAccount admission gives up on a missing "default" after about 2 s (review F6).
SERVICE_ACCOUNT_SECONDS = 30
# How often the pods are polled while they start.
POD_POLL_SECONDS = 2


def in_pod_seconds(task_seconds: int) -> int:
    """The bound inside the pod of a short exec whose task is bounded to ``task_seconds``."""
    return max(1, int(task_seconds) - EXEC_ROOM_SECONDS)


def in_pod(argv: list[str], seconds: int = in_pod_seconds(EXEC_TASK_SECONDS)) -> list[str]:
    """argv bounded inside the pod, through a shell: a missing program is then the shell's exit 127, which
    k8s_exec reports as an exit code, where the runtime's own "executable file not found" would come back
    as an InternalError that k8s_exec cannot parse (review F4)."""
    return ["sh", "-c", f'exec timeout {seconds} "$@"', "sh", *argv]


def _exec(ns: str, pod: str, argv: list[str], task_seconds: int,
          container: str = kube_objects.CONTAINER) -> dict[str, Any]:
    return {"namespace": ns, "pod": pod, "container": container,
            "command": shlex.join(in_pod(argv, in_pod_seconds(task_seconds))), "task_timeout": task_seconds}


def cluster_calls(node_names: list[str], cni_namespace: str = "kube-system",
                  lease: dict[str, Any] | None = None, exec_timeout: int = EXEC_TASK_SECONDS) -> dict[str, Any]:
    """What the calls that read the cluster itself take from the run, before its objects exist, and with
    ``lease`` ({namespace, name, seconds}) those of the lab's Lease (take, read back, release).

    DaemonSets are read in every namespace (Calico's operator runs calico-node in calico-system,
    upstream flannel in kube-flannel); Cilium's agents are then looked for in the namespace of
    the DaemonSet found (``cni_namespace``; kube-system on RKE2).
    """
    return {
        "read_nodes": [{"name": n} for n in node_names],
        "read_daemonsets": {},
        "read_cilium_pods": [{"namespace": cni_namespace, "label_selectors": ["k8s-app=cilium"],
                              "field_selectors": [f"spec.nodeName={n}"]} for n in node_names],
        "cilium_status": [_exec(cni_namespace, f"CILIUM_POD:{n}", ["cilium-dbg", "status", "-o", "json"],
                                exec_timeout, "cilium-agent") for n in node_names],
        "cluster_info": {},
        **(_lease_calls(lease) if lease else {}),
    }


def _lease_calls(lease: dict[str, Any]) -> dict[str, Any]:
    where = {"namespace": str(lease["namespace"]), "name": str(lease["name"])}
    return {"take_lease": {**where, "seconds": int(lease["seconds"])}, "release_lease": where}


def _runs_netserver(pods: list[dict[str, Any]]) -> bool:
    """Whether the run's pods serve netperf (the matrix has netperf tests): only then must the image hold it."""
    return any(port["name"] == "netperf-ctl" for pod in pods for container in pod["spec"]["containers"]
               for port in container.get("ports", []))


def calls(docs: list[dict[str, Any]], pod_timeout: int, delete_timeout: int,
          plan: list[dict[str, Any]] | None = None, exec_timeout: int = EXEC_TASK_SECONDS) -> dict[str, Any]:
    """What every kubernetes.core call on the run's objects takes from the run, by step, as the role's tasks pass it.

    kubeconfig and context come from module_defaults (group kubernetes.core.k8s). Per-test calls
    are a list, with the task's timeout and retries. ``netperf_version`` only when the pods serve netperf.
    ``cpu_info``: per node, /proc/cpuinfo read in the first of the run's pods on it (not namespaced).
    ``congestion``: per node, its congestion control sysctls read in a pod (congestion.read_argv).
    """
    ns = docs[0]["metadata"]["name"]
    pods = [d for d in docs if d["kind"] == "Pod"]
    # The pod network's MTU is read in a pod on it: none with host tests only (review F8).
    in_network = next((p["metadata"]["name"] for p in pods if not p["spec"].get("hostNetwork")), None)
    client = in_network or pods[0]["metadata"]["name"]
    on_node: dict[str, str] = {}
    for pod in pods:
        on_node.setdefault(pod["spec"]["nodeName"], pod["metadata"]["name"])
    # The congestion control default is per network namespace: read it in a pod on the pod network where the
    # node has one (the pod tests' sockets), else in its hostNetwork pod (the node's namespace).
    cc_pod = dict(on_node)
    for pod in reversed(pods):
        if not pod["spec"].get("hostNetwork"):
            cc_pod[pod["spec"]["nodeName"]] = pod["metadata"]["name"]
    own = f"app.kubernetes.io/name={kube_objects.APP}"
    out: dict[str, Any] = {
        # Namespaces of earlier runs: their hostNetwork pods hold the host ports this run's need (review F2).
        "read_stale": {"label_selectors": [own]},
        "remove_stale": {"wait_timeout": delete_timeout},
        "create_namespace": {"definition": [d for d in docs if d["kind"] != "Pod"], "wait_timeout": pod_timeout},
        "wait_service_account": {"namespace": ns, "wait_timeout": SERVICE_ACCOUNT_SECONDS},
        "create_pods": {"definition": pods},
        "wait_pods": {"namespace": ns, "label_selectors": [own], "names": [p["metadata"]["name"] for p in pods],
                      "retries": max(1, pod_timeout // POD_POLL_SECONDS), "delay": POD_POLL_SECONDS},
        "read_pods": {"namespace": ns, "label_selectors": [own]},
        "read_services": {"namespace": ns, "label_selectors": [own]},
        "iperf3_version": _exec(ns, client, ["iperf3", "--version"], exec_timeout),
        **({"pod_mtu": _exec(ns, in_network, ["cat", "/sys/class/net/eth0/mtu"], exec_timeout)} if in_network else {}),
        **({"netperf_version": _exec(ns, client, ["netperf", "-V"], exec_timeout)} if _runs_netserver(pods) else {}),
        "cpu_info": [{"node": node, **_exec(ns, pod, ["cat", "/proc/cpuinfo"], exec_timeout)}
                     for node, pod in on_node.items()],
        "congestion": [{"node": node, "read_in": pod, **_exec(ns, pod, congestion.read_argv(), exec_timeout)}
                       for node, pod in cc_pod.items()],
        "delete_namespace": {"name": ns, "wait_timeout": delete_timeout},
    }
    if plan is not None:
        # Per test: the client's exec, and the server pod whose CPU sampler covers it (commands.samplers).
        out["tests"] = [{"id": t["id"], "args": t["exec"], "cpu_pod": t["cpu_pod"], **t["bounds"]} for t in plan]
    return out


def whole(step: str, args: dict[str, Any]) -> dict[str, Any]:
    """One call's arguments with how its module is asked (FIXED), in ORDER."""
    merged = {**FIXED.get(step, {}), **args}
    return {key: merged[key] for key in sorted(merged, key=lambda key: ORDER.index(key) if key in ORDER else 99)}


def all_calls(node_names: list[str], docs: list[dict[str, Any]] | None = None, pod_timeout: int = 0,
              delete_timeout: int = 0, plan: list[dict[str, Any]] | None = None,
              cni_namespace: str = "kube-system", lease: dict[str, Any] | None = None,
              exec_timeout: int = EXEC_TASK_SECONDS) -> dict[str, Any]:
    """Every call whole, by step: those that read the cluster (``cluster_calls``) and, given the run's
    objects, those on them (``calls``), each with how its module is asked (FIXED). The role's tasks take
    the run's part of each; the per-test calls (``tests``) are the plan's."""
    out = cluster_calls(list(node_names), cni_namespace or "kube-system", lease, int(exec_timeout))
    if docs:
        out.update(calls(docs, int(pod_timeout), int(delete_timeout), plan, int(exec_timeout)))
    return {step: value if step == "tests" else [whole(step, one) for one in value] if isinstance(value, list)
            else whole(step, value) for step, value in out.items()}
