"""Action plugin of netlab.lab.kube_lease: the lab's lock on a cluster, a Lease (transport/kube_lease.py)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.netlab.lab.plugins.action.lab_lock import refusal
from ansible_collections.netlab.lab.plugins.plugin_utils.lab import run_lock
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_lease, kube_stream

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("name", "namespace", "seconds", "run_id", "kubeconfig", "context"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        try:
            name = run_lock.check_key(args.get("name"))
            namespace = run_lock.check_key(args.get("namespace"))
            seconds = int(args.get("seconds", 600))
        except (run_lock.LockError, TypeError, ValueError) as exc:
            raise AnsibleActionFail(f"kube_lease: {exc}") from None
        if not 30 <= seconds <= 86400:
            raise AnsibleActionFail(f"kube_lease: seconds must be between 30 and 86400 (got {seconds})")
        if self._task.check_mode:
            return {**result, "changed": False, "skipped": True, "msg": "check mode: the Lease is not taken"}
        try:
            core = kube_stream.connect({"kubeconfig": args.get("kubeconfig"), "context": args.get("context")})
        except ConnectionError as exc:
            raise AnsibleActionFail(f"the lab's Lease cannot be taken: {exc}") from None
        holder = run_lock.me(str(args.get("run_id") or ""))
        try:
            answer = kube_lease.acquire(core, name, namespace, holder, seconds)
        except Exception as exc:  # ApiException (RBAC, a lost API server): the run stops before any change
            raise AnsibleActionFail(f"the lab's Lease {namespace}/{name} cannot be taken: "
                                    f"{kube_stream.first_line(exc)}") from None
        lease = {"name": name, "namespace": namespace, "host": holder["host"], "pid": holder["pid"]}
        if answer["state"] == "refused":
            return {**result, "failed": True, "changed": False, "holder": answer["holder"],
                    "msg": refusal(f"The cluster's Lease {namespace}/{name}", answer["holder"])}
        if answer["state"] == "taken_over":
            display.display(f"The cluster's Lease {namespace}/{name} was left by a run that is gone "
                            f"({run_lock.describe(answer['holder'])}): taken over.")
        # The Lease is the run's own bookkeeping (deleted at its end), not a change the run makes to the cluster.
        return {**result, "changed": False, "state": answer["state"], "lease": lease,
                "previous": answer["holder"] if answer["state"] == "taken_over" else {}}
