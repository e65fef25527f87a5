"""Kubernetes transport of the benchmark: the arguments of every kubernetes.core call, by step.

The role drives the cluster from the controller with kubernetes.core; this module renders what each
call takes (the render-only run keeps it as k8s_calls.yaml). Pure functions, no Ansible imports.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects


def _exec(ns: str, pod: str, command: str, container: str = kube_objects.CONTAINER) -> dict[str, Any]:
    return {"namespace": ns, "pod": pod, "container": container, "command": command}


def cluster_calls(node_names: list[str], cni_namespace: str = "kube-system") -> dict[str, Any]:
    """The calls that read the cluster itself, before the run's objects exist.

    DaemonSets are read in every namespace (Calico's operator runs calico-node in calico-system,
    upstream flannel in kube-flannel); Cilium's agents are then looked for in the namespace of
    the DaemonSet found (``cni_namespace``; kube-system on RKE2).
    """
    return {
        "read_nodes": [{"kind": "Node", "name": n} for n in node_names],
        "read_daemonsets": {"api_version": "apps/v1", "kind": "DaemonSet"},
        "read_cilium_pods": [{"kind": "Pod", "namespace": cni_namespace, "label_selectors": ["k8s-app=cilium"],
                              "field_selectors": [f"spec.nodeName={n}"]} for n in node_names],
        "cilium_status": [_exec(cni_namespace, f"CILIUM_POD:{n}", "cilium-dbg status -o json", "cilium-agent")
                          for n in node_names],
        "cluster_info": {"invalidate_cache": False},
    }


def _runs_netserver(pods: list[dict[str, Any]]) -> bool:
    """Whether the run's pods serve netperf (the matrix has netperf tests): only then must the image hold it."""
    return any(port["name"] == "netperf-ctl" for pod in pods for container in pod["spec"]["containers"]
               for port in container.get("ports", []))


def calls(docs: list[dict[str, Any]], pod_timeout: int, delete_timeout: int,
          plan: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The arguments of every kubernetes.core call on the run's objects, by step, as the role's tasks pass them.

    kubeconfig and context come from module_defaults (group kubernetes.core.k8s). Per-test calls
    are a list, with the task's timeout and retries. ``netperf_version`` only when the pods serve netperf.
    ``cpu_info``: per node, /proc/cpuinfo read in the first of the run's pods on it (not namespaced).
    """
    ns = docs[0]["metadata"]["name"]
    pods = [d for d in docs if d["kind"] == "Pod"]
    client = next((p["metadata"]["name"] for p in pods if not p["spec"].get("hostNetwork")),
                  pods[0]["metadata"]["name"])
    on_node: dict[str, str] = {}
    for pod in pods:
        on_node.setdefault(pod["spec"]["nodeName"], pod["metadata"]["name"])
    own = f"app.kubernetes.io/name={kube_objects.APP}"
    out: dict[str, Any] = {
        "create_namespace": {"state": "present", "definition": [d for d in docs if d["kind"] != "Pod"],
                             "wait": True, "wait_timeout": pod_timeout},
        "create_pods": {"state": "present", "definition": pods, "wait": True,
                        "wait_condition": {"type": "Ready", "status": "True"}, "wait_timeout": pod_timeout},
        "read_pods": {"kind": "Pod", "namespace": ns, "label_selectors": [own]},
        "read_services": {"kind": "Service", "namespace": ns, "label_selectors": [own]},
        "iperf3_version": _exec(ns, client, "iperf3 --version"),
        "pod_mtu": _exec(ns, client, "cat /sys/class/net/eth0/mtu"),
        **({"netperf_version": _exec(ns, client, "netperf -V")} if _runs_netserver(pods) else {}),
        "cpu_info": [{"node": node, **_exec(ns, pod, "cat /proc/cpuinfo")} for node, pod in on_node.items()],
        "delete_namespace": {"state": "absent", "api_version": "v1", "kind": "Namespace", "name": ns,
                             "wait": True, "wait_timeout": delete_timeout},
    }
    if plan is not None:
        # Per test: the client's exec, and the exec that reads the server pod's /proc/stat before and after it.
        out["tests"] = [{"id": t["id"], "args": t["exec"], "cpu_args": t["cpu_exec"], **t["bounds"]} for t in plan]
    return out


def all_calls(node_names: list[str], docs: list[dict[str, Any]] | None = None, pod_timeout: int = 0,
              delete_timeout: int = 0, plan: list[dict[str, Any]] | None = None,
              cni_namespace: str = "kube-system") -> dict[str, Any]:
    """The calls that read the cluster (``cluster_calls``) and, given the run's objects, those on them (``calls``)."""
    out = cluster_calls(list(node_names), cni_namespace or "kube-system")
    if docs:
        out.update(calls(docs, int(pod_timeout), int(delete_timeout), plan))
    return out
