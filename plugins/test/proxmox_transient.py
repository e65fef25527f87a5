"""The test netlab.lab.proxmox_transient; documented in its sidecar file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import proxmox


def proxmox_transient(result: Any) -> bool:
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(f"proxmox_transient: expects a registered task result, got {type(result).__name__}")
    return proxmox.transient(result)


class TestModule:
    def tests(self) -> dict[str, Callable[[Any], bool]]:
        return {"proxmox_transient": proxmox_transient}
