"""Action plugin of netlab.lab.kube_exec: one command in a pod, through the API server's exec, from the controller.

A bounded, in-process k8s_exec (plugin_utils/transport/kube_stream.py says why): the same arguments and the
same return values, a deadline of its own, and a status without an exit code said in words.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_stream

# Longest an exec may take when neither the task nor its arguments name a bound.
DEFAULT_SECONDS = 30


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("namespace", "pod", "container", "command", "seconds", "kubeconfig", "context"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        missing = [key for key in ("namespace", "pod", "container", "command") if not args.get(key)]
        if missing:
            raise AnsibleActionFail(f"kube_exec needs {', '.join(missing)}")
        command = args["command"]
        argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
        try:
            api = kube_stream.connect({"kubeconfig": args.get("kubeconfig"), "context": args.get("context")})
        except ConnectionError as exc:
            return {**result, "failed": True, "rc": None, "stdout": "", "stderr": "", "msg": str(exc)}
        # The task's own timeout started before this action: it ends the exec first, in ansible-core's words,
        # and the stream is closed on the way out (kube_stream.run). This deadline is for a task without one.
        seconds = float(args.get("seconds") or self._task.timeout or DEFAULT_SECONDS)
        done = kube_stream.run(api, args["namespace"], args["pod"], args["container"], argv, seconds)
        failed = done["rc"] != 0
        if failed and not done["msg"]:
            done["msg"] = f"the command exited {done['rc']}"
        return {**result, **done, "return_code": done["rc"], "changed": False, "failed": failed}
