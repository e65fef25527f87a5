"""Kubernetes transport: a command run in a pod through the API server's exec, in the controller's process.

The role's execs (versions, the pod MTU, /proc/cpuinfo, Cilium's status, the CPU samplers and every
test's client) go through the kubernetes client's own exec stream, as kubernetes.core's k8s_exec does
(kubernetes.core 6.2 plugins/modules/k8s_exec.py: ``stream(api.connect_get_namespaced_pod_exec, ...)``,
the same client, auth and WebSocket), without its two flaws (review kubernetes-live.md): k8s_exec reads the
stream with no deadline (F3; a stalled exec held the task until the task's timeout, and the module's process
lived on after it), and it crashes on a status without an exit code (F4). Each k8s_exec call is also a new
module process that imports the client: about 2.4 s of CPU per exec, most of a short test's cost. Here one
client serves every exec of a task, each exec has its own deadline, and the status is read as the kubelet
writes it (``status``). Only ``connect`` and ``run`` touch the network.
"""

from __future__ import annotations

import json
import time
from typing import Any

# What the caller names when the exec's deadline passes: the words ansible-core uses for a task's timeout.
TIMED_OUT = "Timed out after {seconds} second(s)"
NO_STATUS = "the exec stream ended without an exit status (the connection to the node was lost)"


def status(text: str | None) -> tuple[int | None, str]:
    """The exit code and the problem of an exec, from its status on channel 3 (kubelet pkg/kubelet/cri/
    streaming/remotecommand: ``Success``; ``NonZeroExitCode`` with ``causes[{reason: ExitCode, message: "<rc>"}]``;
    any other error, the runtime's ExecError, as ``apierrors.NewInternalError`` whose cause is the error's text).

    ``(rc, "")`` when the command ran; ``(None, why)`` when it did not run or no status came."""
    if not (text or "").strip():
        return None, NO_STATUS
    try:
        doc = json.loads(text)  # type: ignore[arg-type]
    except ValueError:
        return None, f"the exec's status is not JSON: {text[:200]!r}"
    if doc.get("status") == "Success":
        return 0, ""
    causes = (doc.get("details") or {}).get("causes") or []
    if doc.get("reason") == "NonZeroExitCode":
        for cause in causes:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).lstrip("-").isdigit():
                return int(cause["message"]), ""
    said = next((c["message"] for c in causes if c.get("message")), None) or doc.get("message") or "no reason given"
    return None, f"could not run in the pod: {said}"


def connect(auth: dict[str, Any]) -> Any:
    """The CoreV1Api of the cluster the kubeconfig and context name, built by kubernetes.core's own client
    factory (the same K8S_AUTH_* environment and kubeconfig rules as its modules). Raises ConnectionError
    with the reason when the configuration cannot be loaded."""
    try:
        from kubernetes.client.api import core_v1_api

        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    except ImportError as exc:
        raise ConnectionError(f"the kubernetes Python package is needed on the controller ({exc})") from None
    try:
        client = get_api_client(**{key: value for key, value in auth.items() if value})
    except Exception as exc:  # CoreException, ConfigException, a kubeconfig that does not parse
        raise ConnectionError(f"could not create the API client: {first_line(exc)}") from None
    return core_v1_api.CoreV1Api(client.client.client)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def run(api: Any, namespace: str, pod: str, container: str, argv: list[str], seconds: float) -> dict[str, Any]:
    """``{stdout, stderr, rc, msg}`` of argv in the pod's container, ended after ``seconds`` at the latest.

    rc is the command's exit code, or None with ``msg`` saying why there is none: the exec was refused
    (a pod that is not there or not running: the API server's Status, as k8s_exec quotes it), the deadline
    passed (the stream is closed, which ends the runtime's exec), the connection broke, or the kubelet
    gave no exit code."""
    from kubernetes.stream import stream

    deadline = time.monotonic() + seconds
    out: list[str] = []
    err: list[str] = []

    def result(rc: int | None, msg: str = "") -> dict[str, Any]:
        return {"stdout": "".join(out), "stderr": "".join(err), "rc": rc, "msg": msg}

    try:
        resp = stream(api.connect_get_namespaced_pod_exec, pod, namespace, command=list(argv), container=container,
                      stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
    except Exception as exc:  # ApiException (the upgrade refused), a refused or broken connection
        return result(None, f"Failed to execute on pod {pod} due to : {first_line(exc)}")
    try:
        while resp.is_open():
            left = deadline - time.monotonic()
            if left <= 0:
                return result(None, TIMED_OUT.format(seconds=int(seconds)))
            resp.update(timeout=min(1.0, left))
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        rc, problem = status(resp.read_channel(3))
    except Exception as exc:  # the connection lost mid-stream
        return result(None, f"the exec on pod {pod} broke off: {first_line(exc)}")
    finally:
        resp.close()
    return result(rc, problem)
