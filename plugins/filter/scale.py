"""Filter that checks the Service counts of the scale scenario (documented in service_scale_counts.yml)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.module_utils import service_scale


def service_scale_counts(counts: list[Any], cidr: str, limit: int) -> list[int]:
    try:
        return service_scale.check_counts(list(counts), cidr, int(limit))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"service_scale_counts: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"service_scale_counts": service_scale_counts}
