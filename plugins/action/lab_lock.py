"""Action plugin of netlab.lab.lab_lock: the lab's lock on the controller (plugin_utils/lab/run_lock.py)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import run_lock
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import watchdog

display = Display()


def refusal(what: str, holder: run_lock.Holder) -> str:
    return f"{what} is held by another run ({run_lock.describe(holder)}); wait for it to end, or stop it"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("key", "state", "run_id"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        state = args.get("state", "present")
        if state not in ("present", "absent"):
            raise AnsibleActionFail(f"lab_lock: state must be present or absent (got {state!r})")
        try:
            key = run_lock.check_key(args.get("key"))
        except run_lock.LockError as exc:
            raise AnsibleActionFail(f"lab_lock: {exc}") from None
        path = run_lock.lock_dir() / f"{key}.lock"
        holder = run_lock.me(str(args.get("run_id") or ""))
        if state == "absent":
            return {**result, "changed": False, "released": run_lock.release_file(path, holder), "path": str(path)}
        if self._task.check_mode:
            return {**result, "changed": False, "skipped": True, "msg": "check mode: the lock is not taken"}
        answer = run_lock.acquire_file(path, holder)
        if answer["state"] == "refused":
            return {**result, "failed": True, "changed": False, "path": str(path), "holder": answer["holder"],
                    "msg": refusal(f"The lab {key}", answer["holder"])}
        if answer["state"] == "taken_over":
            display.display(f"The lab {key}'s lock was left by a run that is gone "
                            f"({run_lock.describe(answer['holder'])}): taken over.")
            # A killed run's watchdogs are cleaning its nodes up: nothing of it may run beside this run.
            hanging = watchdog.wait_gone(run_lock.lock_dir(), int(answer["holder"].get("pid") or 0))
            if hanging:
                display.warning(f"The gone run's watchdogs for {', '.join(hanging)} did not finish within "
                                f"{watchdog.WAIT_SECONDS} s: what it ran there may still run.")
        # The lock is the run's own bookkeeping, not the lab's state: a rerun that changes nothing stays at 0.
        return {**result, "changed": False, "path": str(path), "state": answer["state"],
                "holder": holder, "previous": answer["holder"] if answer["state"] == "taken_over" else {}}
