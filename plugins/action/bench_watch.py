"""Action plugin of netlab.lab.bench_watch: the run's watchdog for one node (plugin_utils/transport/watchdog.py).

``state: present``, delegated to a node (with become): starts a watchdog on the controller that, when this
ansible-playbook dies, runs ``cleanup`` on the node through the node's own ssh command line (the one the
connection plugin builds: its user, key, options and become). ``state: absent``: stops this playbook's
watchdogs once the run has cleaned up on its own.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.netlab.lab.plugins.lookup.bench_controller import playbook_pid
from ansible_collections.netlab.lab.plugins.plugin_utils.lab import run_lock
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import watchdog

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("cleanup", "state"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        state = self._task.args.get("state", "present")
        if state not in ("present", "absent"):
            raise AnsibleActionFail(f"bench_watch: state must be present or absent (got {state!r})")
        if self._task.check_mode:
            return {**result, "changed": False, "skipped": True, "msg": "check mode: no watchdog"}
        playbook = playbook_pid()
        if state == "absent":
            return {**result, "changed": False, "stopped": watchdog.disarm(run_lock.lock_dir(), playbook)}
        cleanup = self._task.args.get("cleanup")
        if not isinstance(cleanup, list) or not cleanup or not all(isinstance(a, str) for a in cleanup):
            raise AnsibleActionFail("bench_watch needs cleanup, the node's command as a list of strings")
        node = str((task_vars or {}).get("inventory_hostname") if self._task.delegate_to is None
                   else self._task.delegate_to)
        argv = self._node_argv(shlex.join(cleanup))
        if argv is None:
            display.warning(f"bench_watch: no watchdog for {node}: its connection ({self._connection.transport}) is "
                            "neither ssh nor podman; a run killed before its cleanup leaves its servers there until "
                            "their own timeout")
            return {**result, "changed": False, "skipped": True, "msg": "no watchdog for this connection"}
        state_file = run_lock.lock_dir() / f"watch-{playbook}-{node}.json"
        spec = {"playbook": {"pid": playbook, "start": watchdog.start_time(playbook)}, "argv": argv,
                "node": node, "state_file": str(state_file)}
        try:
            started = watchdog.spawn(spec)
        except RuntimeError as exc:
            raise AnsibleActionFail(f"bench_watch: {exc}") from None
        return {**result, "changed": False, "watchdog": started, "state_file": str(state_file)}

    def _node_argv(self, command: str) -> list[str] | None:
        """The argv that runs command on the task's host, as the connection would (become included): the
        node's own ssh command line, podman exec in its container, or the command itself on the controller's
        local connection; None for another connection."""
        connection = self._connection
        if connection.become:
            command = connection.become.build_become_command(command, connection._shell)
            if connection.become.get_option("become_pass"):
                raise AnsibleActionFail("bench_watch: the watchdog cannot type a become password; "
                                        "give the nodes' user password-less sudo, or connect as root")
        if connection.transport == "local" or connection.transport.endswith(".local"):
            return ["/bin/sh", "-c", command]
        if connection.transport.endswith("podman"):
            container = connection.get_option("remote_addr") or self._play_context.remote_addr
            return [connection.get_option("podman_executable") or "podman", "exec", container, "/bin/sh", "-c",
                    command]
        if not connection.transport.endswith("ssh"):
            return None
        if connection.get_option("password"):
            raise AnsibleActionFail("bench_watch: the watchdog cannot type an ssh password; use a key")
        host = connection.get_option("host") or self._play_context.remote_addr
        # Private to the ssh plugin, as its exec_command uses it: the run's own options, user and key.
        built = connection._build_command(connection.get_option("ssh_executable"), "ssh", host, command)
        return [part.decode() if isinstance(part, bytes) else part for part in built]
