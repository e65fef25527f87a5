"""CNI profiles: named datapath settings, checked for RKE2 and for the local model.

The profiles themselves are data (playbooks/vars/profiles.yml, the one place they and each CNI's
reference are defined). This module says which settings each CNI can run and which combinations
Cilium's agent accepts. A profile's settings (``resolve()["settings"]``, the keys of SETTINGS and those of
OPTIONAL that differ from their default) are
the one dict each role takes: ``rke2_profile_settings``, which the rke2 role renders into its charts'
values (rke2.profile_values; whether the release's chart takes them is rke2.chart_problems), and
``lab_cni_profile_settings``, which the local model runs (its record of what it runs, lab_cni_settings,
has the same keys). Pure functions, unit
tested; the filter netlab.lab.cni_profile calls them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

SETTINGS = ("routing", "kube_proxy_replacement", "host_routing", "masquerade", "mtu")
CHOICES: dict[str, tuple[Any, ...]] = {
    "routing": ("native", "vxlan"),
    "kube_proxy_replacement": (True, False),
    "host_routing": ("bpf", "legacy"),
    "masquerade": ("bpf", "iptables"),
}
# What each CNI's chart can be told. Canal is flannel with kube-proxy and the host stack: its routing vxlan is
# flannel's VXLAN backend, native its host-gw backend (each node routes the others' pod CIDRs via them).
CNI_CHOICES: dict[str, dict[str, tuple[Any, ...]]] = {
    "canal": {"routing": ("vxlan", "native"), "kube_proxy_replacement": (False,), "host_routing": ("legacy",),
              "masquerade": ("iptables",)},
    "cilium": CHOICES,
}
MIN_MTU, MAX_MTU = 1280, 9000
# Settings a profile may leave out, with the value it then has: what RKE2's charts run by default and the
# local model runs. A profile's resolved settings hold them only where they differ from it, so the runs of
# before them read the same.
OPTIONAL: dict[str, Any] = {"datapath_mode": "veth", "encryption": "none", "bandwidth_manager": False,
                            "notrack": False, "congestion": "cubic", "kube_proxy_mode": "iptables", "big_tcp": False}
OPTIONAL_CHOICES: dict[str, tuple[Any, ...]] = {
    "datapath_mode": ("veth", "netkit"),  # Cilium's bpf.datapathMode
    "encryption": ("none", "wireguard", "ipsec"),  # Cilium's encryption.type; flannel's wireguard backend
    "bandwidth_manager": (False, True),  # Cilium's bandwidthManager.enabled (EDT on the fq qdisc)
    "notrack": (False, True),  # Cilium's installNoConntrackIptablesRules (raw-table NOTRACK for pod traffic)
    # The TCP congestion control of the benchmark's sockets (bench_congestion); with the bandwidth manager,
    # Cilium's bandwidthManager.bbr, which sets it for the pods.
    "congestion": ("cubic", "bbr"),
    # kube-proxy's --proxy-mode where it serves Services: iptables, or nftables (Kubernetes 1.31+, a verdict map).
    "kube_proxy_mode": ("iptables", "nftables"),
    "big_tcp": (False, True),  # Cilium's enableIPv4BIGTCP (IPv4 GSO/GRO maximum sizes of 192 KiB)
}
CNI_OPTIONAL: dict[str, dict[str, tuple[Any, ...]]] = {
    "canal": {"datapath_mode": ("veth",), "encryption": ("none", "wireguard"), "bandwidth_manager": (False,),
              "notrack": (False,), "congestion": ("cubic", "bbr"), "kube_proxy_mode": ("iptables", "nftables"),
              "big_tcp": (False,)},
    "cilium": OPTIONAL_CHOICES,
}
# What each setting needs of the kernel (kernel.py reads whether it has it), and whether the local model runs
# it: none of these, which run on a Proxmox lab or an existing cluster.
KERNEL_NEEDS: dict[tuple[str, Any], tuple[str, ...]] = {
    ("datapath_mode", "netkit"): ("CONFIG_NETKIT",),
    ("encryption", "wireguard"): ("CONFIG_WIREGUARD",),
    # Cilium's IPsec key: rfc4106(gcm(aes)) in ESP, set up over XFRM netlink.
    ("encryption", "ipsec"): ("CONFIG_XFRM_USER", "CONFIG_INET_ESP", "CONFIG_CRYPTO_GCM"),
    ("bandwidth_manager", True): ("CONFIG_NET_SCH_FQ",),
}
# IPv4 BIG TCP (gso_ipv4_max_size, gro_ipv4_max_size) came with Linux 6.3.
BIG_TCP_IPV4_SINCE = (6, 3)
# The shipped profiles (netlab_profiles) and each CNI's reference (netlab_profile_defaults).
SHIPPED = Path(__file__).resolve().parents[3] / "playbooks" / "vars" / "profiles.yml"


class ProfileError(ValueError):
    """A profile that does not exist or cannot be applied."""


def _problems_of(cni: str, name: str, profile: Any) -> list[str]:
    if not isinstance(profile, dict) or not isinstance(profile.get("settings"), dict):
        return [f"profile {cni}/{name} must be a mapping with settings"]
    settings = profile["settings"]
    problems = [f"{key} is missing" for key in SETTINGS if key not in settings]
    problems += [f"{key} is not a setting (known: {', '.join((*SETTINGS, *OPTIONAL))})" for key in settings
                 if key not in SETTINGS and key not in OPTIONAL]
    for key, allowed in {**CNI_CHOICES.get(cni, {}), **CNI_OPTIONAL.get(cni, {})}.items():
        value = settings.get(key)
        if key in settings and value not in allowed:
            known = CHOICES.get(key) or OPTIONAL_CHOICES[key]
            problems.append(f"{key} {value!r} is not one of {', '.join(map(str, known))}" if value not in known
                            else f"{cni} cannot run {key} {value!r} (only {', '.join(map(str, allowed))})")
    mtu = settings.get("mtu")
    if "mtu" in settings and (isinstance(mtu, bool) or not isinstance(mtu, int)
                              or not (mtu == 0 or MIN_MTU <= mtu <= MAX_MTU)):
        problems.append(f"mtu {mtu!r} must be 0 (the CNI's own) or {MIN_MTU} to {MAX_MTU}")
    if problems:
        return [f"profile {cni}/{name}: {p}" for p in problems]
    # Cilium's own rules: the agent refuses, or falls back from, these combinations.
    if cni == "cilium":
        if settings["masquerade"] == "bpf" and not settings["kube_proxy_replacement"]:
            problems.append("BPF masquerade needs kube-proxy replacement (the agent fails to start without it)")
        if settings["host_routing"] == "bpf" and not (settings["kube_proxy_replacement"]
                                                       and settings["masquerade"] == "bpf"):
            problems.append("BPF host routing needs kube-proxy replacement and BPF masquerade "
                            "(the agent falls back to legacy host routing without them)")
        if settings.get("datapath_mode") == "netkit" and settings["host_routing"] != "bpf":
            problems.append("netkit devices need BPF host routing (the agent refuses bpf.datapathMode netkit "
                            "with legacy host routing)")
        if settings.get("bandwidth_manager") and not settings["kube_proxy_replacement"]:
            problems.append("the bandwidth manager needs kube-proxy replacement")
        # The agent refuses installNoConntrackIptablesRules in tunnel mode, and with iptables masquerading
        # (it needs BPF masquerading, which needs kube-proxy replacement).
        if settings.get("notrack") and not (settings["routing"] == "native" and settings["masquerade"] == "bpf"):
            problems.append("notrack (installNoConntrackIptablesRules) needs native routing and BPF masquerade "
                            "(the agent fails to start without them)")
        # Cilium's BIG TCP requirements: BPF host routing (so kube-proxy replacement and BPF masquerade), no
        # tunnel, no encryption.
        if settings.get("big_tcp") and not (settings["routing"] == "native" and settings["host_routing"] == "bpf"
                                            and settings.get("encryption", "none") == "none"):
            problems.append("BIG TCP needs native routing, BPF host routing and no encryption (the agent does not "
                            "enable it otherwise)")
    if settings.get("kube_proxy_mode", "iptables") != "iptables" and settings["kube_proxy_replacement"]:
        problems.append("kube_proxy_mode is kube-proxy's: with kube-proxy replacement there is no kube-proxy")
    if cni == "canal" and settings["routing"] == "native" and settings.get("encryption", "none") != "none":
        problems.append("flannel runs one backend: host-gw (routing native) or wireguard (encryption), not both")
    return [f"profile {cni}/{name}: {p}" for p in problems]


def resolve(profiles: dict[str, Any], cni: str, name: str = "", defaults: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile ``name`` of ``cni`` (empty: the CNI's default) among ``profiles`` and ``extra``.

    Returns {cni, name, description, settings}; raises ProfileError naming what is wrong.
    """
    merged = {key: dict(value) for key, value in (profiles or {}).items()}
    for key, value in (extra or {}).items():
        merged.setdefault(key, {}).update(value or {})
    if cni not in merged:
        raise ProfileError(f"no profiles for cni {cni!r} (known: {', '.join(sorted(merged))})")
    name = name or (defaults or {}).get(cni, "")
    if name not in merged[cni]:
        raise ProfileError(f"no profile {name!r} for {cni} (known: {', '.join(merged[cni])})")
    profile = merged[cni][name]
    problems = _problems_of(cni, name, profile)
    if problems:
        raise ProfileError("; ".join(problems))
    given = profile["settings"]
    settings = {key: given[key] for key in SETTINGS}
    settings |= {key: given[key] for key, default in OPTIONAL.items() if key in given and given[key] != default}
    return {"cni": cni, "name": name, "description": str(profile.get("description", "")), "settings": settings}


def setting(settings: dict[str, Any], key: str) -> Any:
    """A resolved profile's setting, an optional one's default where it is left out."""
    return settings.get(key, OPTIONAL.get(key))


def _release(text: str) -> tuple[int, int] | None:
    """A kernel release's major and minor number ("6.18.44-fc" -> (6, 18)); None where it does not start so."""
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def kernel_needs(settings: dict[str, Any]) -> list[tuple[str, Any, tuple[str, ...]]]:
    """The profile's settings that need something of the kernel: (setting, value, the options it needs)."""
    return [(key, value, options) for (key, value), options in KERNEL_NEEDS.items() if setting(settings, key) == value]


def model_problems(profile: dict[str, Any], kernel: dict[str, Any] | None) -> list[str]:
    """Why the datapath model cannot run a resolved profile (``checked``'s); empty when it can. Each setting
    the model does not run is named, said before anything is created; on the local lab, whose nodes share the
    controller's kernel (``kernel`` as kernel.read reads it: ``{release, source, has}``), with the kernel
    options it needs that this kernel lacks or cannot be told to have. Such a profile runs where RKE2 runs it."""
    problems = []
    release = _release((kernel or {}).get("release") or "")
    if profile.get("settings", {}).get("big_tcp") and release and release < BIG_TCP_IPV4_SINCE:
        problems.append(f"profile {profile.get('cni')}/{profile.get('name')} sets big_tcp true, which needs Linux "
                        f"{'.'.join(map(str, BIG_TCP_IPV4_SINCE))} or newer (IPv4 BIG TCP); the lab's nodes share "
                        f"this kernel, {kernel.get('release')}")
    for key, value, options in kernel_needs(profile.get("settings") or {}):
        has = (kernel or {}).get("has") or {}
        lacks = [option for option in options if has.get(option) is False]
        unknown = [option for option in options if has.get(option) is None]
        if kernel is None:
            why = "the datapath model does not run it"
        elif lacks:
            why = (f"this kernel ({kernel.get('release')}) lacks {', '.join(lacks)} (read from "
                   f"{kernel.get('source')}); the lab's nodes share it and cannot load it")
        elif unknown:
            why = (f"nothing tells whether this kernel ({kernel.get('release')}) has {', '.join(unknown)} (no kernel "
                   "config and no /proc/kallsyms)")
        else:
            why = f"this kernel has {', '.join(options)}, but the local model does not run it"
        said = str(value).lower() if isinstance(value, bool) else value
        problems.append(f"profile {profile.get('cni')}/{profile.get('name')} sets {key} {said}, which the datapath "
                        f"model cannot run: {why}. It runs where RKE2 runs it (netlab_cluster rke2 on a Proxmox lab) "
                        "or on an existing cluster")
    return problems


@functools.cache
def reference(cni: str) -> dict[str, Any]:
    """The settings of a CNI's reference profile as shipped (what a run recorded without settings, from
    before profiles, measured)."""
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return resolve(shipped["netlab_profiles"], cni, "", shipped["netlab_profile_defaults"])["settings"]


def checked(profiles: dict[str, Any], cni: str, name: str = "", defaults: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``resolve`` with its problems listed rather than raised, so preflight can say all of them at once,
    and the settings in one line (``summary``); an empty profile for no CNI (an existing cluster runs what
    it runs)."""
    empty: dict[str, Any] = {"cni": cni, "name": name, "description": "", "settings": {}, "summary": "",
                             "problems": []}
    if not cni:
        return empty
    try:
        profile = resolve(profiles, cni, name, defaults, extra)
    except ProfileError as exc:
        return {**empty, "problems": [str(exc)]}
    return {**profile, "summary": describe(profile["settings"]), "problems": []}


def describe(settings: dict[str, Any]) -> str:
    """A profile's settings in one line, as reports show them."""
    routing = "native routing" if settings.get("routing") == "native" else f"{settings.get('routing')} tunnel"
    services = ("kube-proxy replacement" if settings.get("kube_proxy_replacement")
                else f"kube-proxy ({settings['kube_proxy_mode']})" if "kube_proxy_mode" in settings else "kube-proxy")
    mtu = f"MTU {settings['mtu']}" if settings.get("mtu") else "MTU auto"
    more = [f"{setting(settings, 'datapath_mode')} devices"] if "datapath_mode" in settings else []
    more += [f"{settings['encryption']} encryption"] if "encryption" in settings else []
    more += ["bandwidth manager"] if settings.get("bandwidth_manager") else []
    more += ["no conntrack for pod traffic"] if settings.get("notrack") else []
    more += ["BIG TCP"] if settings.get("big_tcp") else []
    more += [f"{settings['congestion']} congestion control"] if "congestion" in settings else []
    return ", ".join([f"{routing}, {services}, {settings.get('host_routing')} host routing, "
                      f"{settings.get('masquerade')} masquerade", *more, mtu])
