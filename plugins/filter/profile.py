"""The filter that resolves a CNI profile; documented in its sidecar file cni_profile.yml."""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles


def cni_profile(catalogue: dict[str, Any], cni: str, name: str = "", defaults: dict[str, str] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile with its problems listed rather than raised, so preflight can say all of them at once."""
    empty: dict[str, Any] = {"cni": cni, "name": name, "description": "", "settings": {}, "summary": "",
                             "model": {}, "problems": []}
    if not cni:
        return empty
    try:
        profile = profiles.resolve(catalogue, cni, name, defaults, extra)
    except profiles.ProfileError as exc:
        return {**empty, "problems": [str(exc)]}
    return {**profile, "summary": profiles.describe(profile["settings"]), "model": profiles.model_inputs(profile),
            "problems": []}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cni_profile": cni_profile}
