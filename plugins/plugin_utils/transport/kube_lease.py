"""The lab's lock on a cluster: a coordination.k8s.io/v1 Lease, taken, renewed and checked through one API client.

Taken with a create (409 AlreadyExists when it is there), then read: refused while its holder is alive
(run_lock.lease_decision), else taken over with a replace that carries the read resourceVersion, so of two
controllers taking over at once the API server lets one through and answers the other 409 Conflict (refused,
naming the winner). The namespace is the project's own, labelled ``app.kubernetes.io/part-of=netlab`` and not
with the runs' ``app.kubernetes.io/name`` label, so the stale-namespace check never counts it as a run's.
The kubernetes.core k8s module cannot do the create-or-409 step (state=present reads first, then patches an
object that is there, which would overwrite a live holder), so this goes through kubernetes.core's own client
factory (kube_stream.connect), as the role's execs do.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import run_lock

LABELS = {"app.kubernetes.io/part-of": "netlab", "app.kubernetes.io/component": "lab-lock"}


class LeaseLost(RuntimeError):
    """The Lease is no longer this run's (another controller took it over after it expired)."""


def _coordination(core: Any) -> Any:
    from kubernetes.client.api import coordination_v1_api

    return coordination_v1_api.CoordinationV1Api(core.api_client)


def _code(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _ensure_namespace(core: Any, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(LABELS)}}
    try:
        core.create_namespace(body, _preload_content=False)
    except Exception as exc:
        if _code(exc) != 409:
            raise


def _read(leases: Any, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        # The JSON as the server sent it: MicroTime strings stay as they were written.
        return json.loads(leases.read_namespaced_lease(name, namespace, _preload_content=False).data)
    except Exception as exc:
        if _code(exc) == 404:
            return None
        raise


def acquire(core: Any, name: str, namespace: str, holder: run_lock.Holder, seconds: int,
            now: float | None = None) -> dict[str, Any]:
    """``{"state": s, "holder": h}`` as run_lock.acquire_file answers, for the Lease ``namespace/name``."""
    _ensure_namespace(core, namespace)
    leases = _coordination(core)
    for _ in range(3):  # a Lease deleted between our create and our read or replace: create again
        try:
            leases.create_namespaced_lease(namespace, run_lock.lease_body(name, namespace, holder, seconds, LABELS),
                                          _preload_content=False)
            return {"state": "taken", "holder": holder}
        except Exception as exc:
            if _code(exc) != 409:
                raise
        found = _read(leases, name, namespace)
        if found is None:
            continue
        decision = run_lock.lease_decision(found, holder, time.time() if now is None else now)
        if decision == "held":
            return {"state": "held", "holder": run_lock.lease_holder(found)}
        if decision == "refused":
            return {"state": "refused", "holder": run_lock.lease_holder(found)}
        body = run_lock.lease_body(name, namespace, holder, seconds, LABELS, found)
        try:
            leases.replace_namespaced_lease(name, namespace, body, _preload_content=False)
            return {"state": "taken_over", "holder": run_lock.lease_holder(found)}
        except Exception as exc:
            if _code(exc) == 404:
                continue
            if _code(exc) != 409:
                raise
        winner = _read(leases, name, namespace)  # another controller took it over first
        return {"state": "refused", "holder": run_lock.lease_holder(winner or found)}
    raise RuntimeError(f"the Lease {namespace}/{name} was created and deleted three times while this run tried "
                       "to take it")


def renew(core: Any, name: str, namespace: str, holder: run_lock.Holder) -> None:
    """Move the Lease's renewTime to now (a replace on the read resourceVersion); LeaseLost if it is not ours."""
    leases = _coordination(core)
    found = _read(leases, name, namespace)
    if found is None or not run_lock.same(run_lock.lease_holder(found), holder):
        who = run_lock.describe(run_lock.lease_holder(found)) if found else "nobody (deleted)"
        raise LeaseLost(f"the lab's Lease {namespace}/{name} is no longer this run's: it is held by {who}")
    found["spec"]["renewTime"] = run_lock.iso_now()
    if holder.get("run_id"):  # known once the run has started: a refused run then names it
        found["metadata"].setdefault("annotations", {})[run_lock.RUN_ID] = str(holder["run_id"])
    try:
        leases.replace_namespaced_lease(name, namespace, found, _preload_content=False)
    except Exception as exc:
        if _code(exc) == 409:
            raise LeaseLost(f"the lab's Lease {namespace}/{name} was changed by another controller") from None
        raise
