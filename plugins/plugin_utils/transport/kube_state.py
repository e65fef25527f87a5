"""Kubernetes transport of the benchmark: whether the run can go on, from what the cluster answers.

The role asks the cluster in bounded polls and short execs, and this module reads each answer: are the
run's pods Ready, or has one of them failed in a way waiting cannot cure (``pods_state``); which
Cilium agent of each node is the one to ask (``agents``); which namespaces of earlier runs are still
there (``stale_namespaces``); and what an exec that failed says, in words (``exec_problem``). Every
failure is named with the pod, the reason and the message the cluster gave. Pure functions, no Ansible
imports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects

# Waiting reasons after which a container does not start without a change to the pod or the cluster
# (kubelet pkg/kubelet/images/types.go: ErrImagePull, ImagePullBackOff, ErrImageNeverPull, InvalidImageName;
# pkg/kubelet/kuberuntime: CreateContainerConfigError, CreateContainerError, RunContainerError;
# CrashLoopBackOff: the container started and exited, and is restarted with a growing back-off).
HOPELESS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                      "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                      "CrashLoopBackOff"})
REMOVE_STALE = f"kubectl delete namespace -l app.kubernetes.io/name={kube_objects.APP}"


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why a pod will not become Ready by waiting, in the cluster's words; None while it still may."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        # The kubelet rejected it (NodePorts: a host port is taken; OutOfcpu, ...) or it ran to its end.
        return f"pod {name} failed: {status.get('reason') or 'Failed'}: {status.get('message') or 'no message'}"
    if status.get("phase") == "Succeeded":
        return f"pod {name} exited: its servers stopped"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in HOPELESS:
            last = ((container.get("lastState") or {}).get("terminated") or {})
            exited = f" (last exit code {last['exitCode']})" if "exitCode" in last else ""
            return (f"pod {name} cannot start: {waiting['reason']}: {waiting.get('message') or 'no message'}"
                    f"{exited}")
    return None


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pending(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    reasons = [((c.get("state") or {}).get("waiting") or {}).get("reason")
               for c in status.get("containerStatuses") or []]
    words = ", ".join(r for r in reasons if r) or status.get("reason") or ""
    return f"{pod['metadata']['name']} {status.get('phase') or 'unknown'}{f' ({words})' if words else ''}"


def pods_state(result: Any, names: list[str]) -> dict[str, Any]:
    """Where the run's pods are, from ``k8s_info`` of them: ``ready`` (all of ``names`` Ready), ``problems``
    (pods that cannot start, each named with the reason and message), ``done`` (ready or a problem: stop
    waiting) and ``message`` (what to say when the wait ends without them Ready)."""
    by_name = {pod["metadata"]["name"]: pod for pod in kube_objects.items(result)}
    problems = [problem for name in names if name in by_name and (problem := pod_problem(by_name[name]))]
    ready = [name for name in names if name in by_name and _ready(by_name[name])]
    missing = [name for name in names if name not in by_name]
    waiting = [_pending(by_name[name]) for name in names if name in by_name and name not in ready]
    if problems:
        message = "; ".join(problems)
    else:
        message = ("not every pod became Ready in time: "
                   + "; ".join([*waiting, *(f"{name} not found" for name in missing)]))
    return {"ready": len(ready) == len(names), "problems": problems, "done": len(ready) == len(names) or bool(problems),
            "message": message}


def agents(results: Any, node_names: list[str]) -> list[str]:
    """Per benchmark node, the name of its Cilium agent to ask (looped ``k8s_info`` results, in node order):
    a Running pod that is not being deleted (``rollout restart`` leaves the old one Terminating for a while).
    KubeError naming the nodes without one."""
    found, missing = [], []
    for node, result in zip(node_names, (results or {}).get("results", []), strict=False):
        running = [pod for pod in kube_objects.items(result) if (pod.get("status") or {}).get("phase") == "Running"
                   and not pod["metadata"].get("deletionTimestamp")]
        if running:
            found.append(sorted(running, key=lambda p: p["metadata"].get("creationTimestamp") or "")[-1]
                         ["metadata"]["name"])
        else:
            missing.append(node)
    missing += node_names[len(found) + len(missing):]
    if missing:
        raise kube_objects.KubeError(f"no running Cilium agent on {', '.join(missing)}: the datapath of those nodes "
                                     "cannot be read (kubectl -n kube-system get pods -l k8s-app=cilium -o wide)")
    return found


def stale_namespaces(result: Any, own: str, controller: dict[str, Any] | None = None,
                     alive: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Namespaces of earlier runs (the project's label) other than this run's own ``own``, oldest first.

    ``interrupted``: those an earlier run of this controller left whose ansible-playbook is gone (a run
    stopped by Ctrl-C or kill skips its cleanup): removed, so the same command again works. ``names``:
    the others (another controller's, or a run that may still be going): refused unless asked. ``command``
    removes them all.
    """
    found = sorted((ns for ns in kube_objects.items(result) if ns["metadata"]["name"] != own),
                   key=lambda n: n["metadata"].get("creationTimestamp") or "")
    interrupted, others = [], []
    for ns in found:
        host, _, pid = ((ns["metadata"].get("annotations") or {}).get(kube_objects.CONTROLLER) or "").rpartition("/")
        ours = controller is not None and host == controller["host"] and pid.isdigit()
        dead = ours and int(pid) != int(controller["pid"]) and not (alive or (lambda _: True))(int(pid))
        (interrupted if dead else others).append(ns["metadata"]["name"])
    return {"names": others, "interrupted": interrupted, "command": REMOVE_STALE}


def exec_problem(result: dict[str, Any], what: str = "the command") -> str | None:
    """What went wrong in an exec's result (netlab.lab.kube_exec, registered with ``ignore_errors``, or one
    of bench_kube's; plugin_utils/transport/kube_stream.py): None when it exited 0 or did not run.

    An exit code: the command ran and said why on stderr. Without one, the exec's own words (refused by
    the API server, no exit status, the runtime's error, a deadline), or the task's timeout in
    ansible-core's. (``failed_when: false`` would drop a failed action's message on ansible-core 2.19:
    it keeps only that an exception was suppressed.)
    """
    rc = result.get("rc")
    if isinstance(rc, int):
        if rc == 0:
            return None
        said = (result.get("stderr") or result.get("stdout") or "").strip().splitlines()
        return f"{what} exited {rc}{': ' + ' '.join(said[-3:])[:400] if said else ''}"
    msg = str(result.get("msg") or "").strip()
    if not msg:
        return None  # not run (skipped), or a bare output
    return f"{what}: {msg.splitlines()[0][:400]}"


def exec_problems(results: list[Any]) -> list[str]:
    """The problems of several exec results (``[result, what]`` pairs; a skipped or absent one is no problem)."""
    out = []
    for result, what in results:
        if isinstance(result, dict) and not result.get("skipped") and result:
            if "results" in result:
                out += exec_problems([(one, f"{what} ({node})" if (node := (one.get("item") or {}).get("node"))
                                       else what) for one in result["results"]])
            elif problem := exec_problem(result, what):
                out.append(problem)
    return out


def json_or_problem(result: dict[str, Any], what: str) -> Any:
    """An exec's stdout as JSON (cilium-dbg status exits 1 whenever Cilium is not fully Ok, and still prints
    it); KubeError with the exec's problem when it printed none, or when the exec has no exit code (refused,
    cut off, timed out: what it printed may be a part, and is not taken)."""
    problem = exec_problem(result, what)
    if problem and not isinstance(result.get("rc"), int):
        raise kube_objects.KubeError(problem)
    text = (result.get("stdout") or "").strip()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise kube_objects.KubeError(problem or f"{what} printed no JSON ({exc}): {text[:200]!r}") from None
