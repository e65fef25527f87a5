"""The filter that resolves a CNI profile; documented in its sidecar file cni_profile.yml."""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles


def cni_profile(catalogue: dict[str, Any], cni: str, name: str = "", defaults: dict[str, str] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return profiles.checked(catalogue, cni, name, defaults, extra)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cni_profile": cni_profile}
