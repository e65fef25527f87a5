"""The filters that resolve a CNI profile and say what the datapath model cannot run of it; documented in their
sidecar files cni_profile.yml and cni_profile_model_problems.yml."""

from __future__ import annotations

from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles


def cni_profile(catalogue: dict[str, Any], cni: str, name: str = "", defaults: dict[str, str] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return profiles.checked(catalogue, cni, name, defaults, extra)


def cni_profile_model_problems(profile: dict[str, Any], kernel: dict[str, Any] | None = None) -> list[str]:
    return profiles.model_problems(profile, kernel)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cni_profile": cni_profile, "cni_profile_model_problems": cni_profile_model_problems}
