"""Filters for installing and checking RKE2; each is documented in its sidecar file."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import rke2


def rke2_install_env(method: str, version: str, node_type: str, artifact_path: str = "") -> dict[str, str]:
    try:
        return rke2.install_environment(method, version, node_type, artifact_path)
    except rke2.InstallError as exc:
        raise AnsibleFilterError(f"rke2_install_env: {exc}") from exc


def rke2_datapath(raw: str, cni: str, expected: dict[str, Any], pod_link: Any = None) -> dict[str, Any]:
    try:
        return rke2.datapath(raw, cni, expected, pod_link)
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"rke2_datapath: cannot read the {cni} datapath: {exc}") from exc


def rke2_canal_mtu(nic_mtu: int, backend: str) -> int:
    try:
        return rke2.canal_mtu(nic_mtu, backend)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"rke2_canal_mtu: {exc}") from exc


def rke2_ingress(version: str, controller: str) -> dict[str, Any]:
    try:
        return rke2.ingress_config(version, controller)
    except ValueError as exc:
        raise AnsibleFilterError(f"rke2_ingress: {exc}") from exc


def rke2_profile_values(settings: dict[str, Any]) -> dict[str, Any]:
    try:
        return rke2.profile_values(settings)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"rke2_profile_values: not a profile's settings, {exc!r} missing") from exc


def rke2_chart_problems(version: str, cni: str, settings: dict[str, Any] | None = None) -> list[str]:
    return rke2.chart_problems(version, cni, settings)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rke2_install_env": rke2_install_env, "rke2_ready_nodes": rke2.ready_nodes,
                "rke2_datapath": rke2_datapath, "rke2_canal_mtu": rke2_canal_mtu,
                "rke2_ingress": rke2_ingress, "rke2_chart_problems": rke2_chart_problems,
                "rke2_profile_values": rke2_profile_values}
