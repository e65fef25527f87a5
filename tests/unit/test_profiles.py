"""CNI profiles: the shipped data checked, resolved and rendered for both roles; bad profiles refused."""

from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from ansible_collections.netlab.lab.plugins.filter.profile import cni_profile
from ansible_collections.netlab.lab.plugins.plugin_utils.lab import rke2
from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof

ROOT = Path(__file__).parents[2]
DATA = yaml.safe_load((ROOT / "playbooks/vars/profiles.yml").read_text())
SHIPPED, DEFAULTS = DATA["netlab_profiles"], DATA["netlab_profile_defaults"]
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles/rke2/defaults/main.yml").read_text())
NATIVE_BPF = SHIPPED["cilium"]["native-bpf"]["settings"]


@pytest.mark.parametrize(("cni", "name"), [(cni, name) for cni in SHIPPED for name in SHIPPED[cni]])
def test_every_shipped_profile_resolves(cni, name):
    profile = profiles.resolve(SHIPPED, cni, name)
    # The optional settings only where they differ from their default.
    assert set(profiles.SETTINGS) <= profile["settings"].keys() <= set(profiles.SETTINGS) | set(profiles.OPTIONAL)
    assert all(profile["settings"][key] != default for key, default in profiles.OPTIONAL.items()
               if key in profile["settings"])
    assert profile["description"]


def test_the_default_is_each_cnis_reference():
    assert profiles.resolve(SHIPPED, "cilium", "", DEFAULTS)["settings"] == NATIVE_BPF
    assert profiles.resolve(SHIPPED, "canal", "", DEFAULTS)["name"] == "vxlan"


def test_the_step_chain_changes_one_cilium_setting_at_a_time():
    chain = ["tunnel", "kube-proxy", "native-legacy", "native-bpf"]
    settings = [SHIPPED["cilium"][name]["settings"] for name in chain]
    changed = [{k for k in a if a[k] != b[k]} for a, b in pairwise(settings)]
    # KPR brings BPF masquerade with it: Cilium's BPF masquerade needs kube-proxy replacement.
    assert changed == [{"routing"}, {"kube_proxy_replacement", "masquerade"}, {"host_routing"}]


def test_rke2_values_per_profile():
    tunnel = rke2.profile_values(profiles.resolve(SHIPPED, "cilium", "tunnel")["settings"])
    assert {key: value for key, value in tunnel.items() if key in (
        "cilium_routing_mode", "cilium_kube_proxy_replacement", "cilium_bpf_masquerade", "cilium_host_legacy_routing",
        "cilium_mtu", "canal_mtu")} == {"cilium_routing_mode": "tunnel", "cilium_kube_proxy_replacement": False,
                                        "cilium_bpf_masquerade": False, "cilium_host_legacy_routing": False,
                                        "cilium_mtu": 0, "canal_mtu": 0}
    # The optional settings at their defaults: what the charts run unless told.
    assert (tunnel["cilium_datapath_mode"], tunnel["cilium_encryption"], tunnel["cilium_bandwidth_manager"],
            tunnel["canal_backend"]) == ("veth", "none", False, "vxlan")
    legacy = rke2.profile_values(profiles.resolve(SHIPPED, "cilium", "native-legacy")["settings"])
    assert (legacy["cilium_routing_mode"], legacy["cilium_host_legacy_routing"]) == ("native", True)
    reference = rke2.profile_values(profiles.resolve(SHIPPED, "cilium", "native-bpf")["settings"])
    assert reference["cilium_host_legacy_routing"] is False


def test_each_role_takes_the_settings_as_one_dict():
    """The rke2 role's rke2_profile_settings and the lab_cni role's lab_cni_profile_settings: their argument
    specs check the profile's keys and values, their default is Cilium's reference; the keys of lab_cni's
    record of what it runs, lab_cni_settings, are the profile's settings too. The rke2 role takes the optional
    settings too; the model runs none of them (preflight refuses them: cni_profile_model_problems)."""
    for role in ("rke2", "lab_cni"):
        spec = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())["argument_specs"]["main"]
        options = spec["options"][f"{role}_profile_settings"]["options"]
        # The model runs four of the optional settings (the project refuses the others before it runs).
        modelled = ["notrack", "congestion", "kube_proxy_mode", "big_tcp"]
        optional = list(profiles.OPTIONAL) if role == "rke2" else modelled
        assert list(options) == [*profiles.SETTINGS, *optional], role
        assert all(options[key]["required"] for key in profiles.SETTINGS), role
        for key, allowed in profiles.CHOICES.items():
            assert tuple(options[key].get("choices", (True, False))) == allowed, (role, key)
        for key in optional:
            assert not options[key].get("required") and options[key]["default"] == profiles.OPTIONAL[key], key
            assert set(options[key].get("choices", (True, False))) == set(profiles.OPTIONAL_CHOICES[key]), key
        defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text())
        assert defaults[f"{role}_profile_settings"] == profiles.reference("cilium"), role
    lab_cni = yaml.safe_load((ROOT / "roles/lab_cni/vars/main.yml").read_text())
    assert list(lab_cni["_lab_cni_settings"]) == list(profiles.SETTINGS)
    assert all(f"'{key}'" in lab_cni["lab_cni_settings"] for key in optional)


def test_the_reference_profiles_come_from_the_shipped_catalogue():
    assert profiles.reference("cilium") == NATIVE_BPF
    assert profiles.reference("canal") == SHIPPED["canal"][DEFAULTS["canal"]]["settings"]
    assert profiles.SHIPPED == ROOT / "playbooks/vars/profiles.yml"


def test_a_users_profile_is_added_and_checked_as_the_shipped_ones():
    extra = {"cilium": {"low-mtu": {"description": "the reference at 1280", "settings": {**NATIVE_BPF, "mtu": 1280}}}}
    profile = profiles.resolve(SHIPPED, "cilium", "low-mtu", DEFAULTS, extra)
    assert profile["settings"]["mtu"] == 1280
    assert profiles.resolve(SHIPPED, "cilium", "tunnel", DEFAULTS, extra)["name"] == "tunnel"


@pytest.mark.parametrize(("cni", "name", "settings", "message"), [
    ("cilium", "nope", None, r"no profile 'nope' for cilium \(known: tunnel, kube-proxy"),
    ("flannel", "x", None, r"no profiles for cni 'flannel'"),
    ("cilium", "bad", {**NATIVE_BPF, "routing": "geneve"}, r"routing 'geneve' is not one of native, vxlan"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "kube_proxy_replacement": True},
     r"canal cannot run kube_proxy_replacement True \(only False\)"),
    ("canal", "bad", {**SHIPPED["canal"]["host-gw"]["settings"], "encryption": "wireguard"},
     r"flannel runs one backend: host-gw \(routing native\) or wireguard"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "notrack": True}, r"canal cannot run notrack True"),
    ("cilium", "bad", {**NATIVE_BPF, "congestion": "reno"}, r"congestion 'reno' is not one of cubic, bbr"),
    ("cilium", "bad", {**SHIPPED["cilium"]["tunnel-bpf"]["settings"], "notrack": True},
     r"notrack \(installNoConntrackIptablesRules\) needs native routing and BPF masquerade"),
    ("cilium", "bad", {**SHIPPED["cilium"]["tunnel-bpf"]["settings"], "big_tcp": True},
     r"BIG TCP needs native routing, BPF host routing and no encryption"),
    ("cilium", "bad", {**SHIPPED["cilium"]["native-legacy"]["settings"], "big_tcp": True},
     r"BIG TCP needs native routing, BPF host routing and no encryption"),
    ("cilium", "bad", {**NATIVE_BPF, "big_tcp": True, "encryption": "wireguard"},
     r"BIG TCP needs native routing, BPF host routing and no encryption"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "big_tcp": True}, r"canal cannot run big_tcp True"),
    ("cilium", "bad", {**NATIVE_BPF, "kube_proxy_mode": "nftables"},
     r"kube_proxy_mode is kube-proxy's: with kube-proxy replacement there is no kube-proxy"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "kube_proxy_mode": "ipvs"},
     r"kube_proxy_mode 'ipvs' is not one of iptables, nftables"),
    ("cilium", "bad", {**SHIPPED["cilium"]["kube-proxy"]["settings"], "notrack": True},
     r"notrack \(installNoConntrackIptablesRules\) needs native routing and BPF masquerade"),
    ("cilium", "bad", {**NATIVE_BPF, "kube_proxy_replacement": False},
     r"BPF masquerade needs kube-proxy replacement"),
    ("cilium", "bad", {**NATIVE_BPF, "masquerade": "iptables"},
     r"BPF host routing needs kube-proxy replacement and BPF"),
    ("cilium", "bad", {**NATIVE_BPF, "mtu": 500}, r"mtu 500 must be 0 \(the CNI's own\) or 1280 to 9000"),
    ("cilium", "bad", {**NATIVE_BPF, "mtu": True}, r"mtu True must be"),
    ("cilium", "bad", {k: v for k, v in NATIVE_BPF.items() if k != "mtu"}, r"mtu is missing"),
    ("cilium", "bad", {**NATIVE_BPF, "tunnel": "geneve"}, r"tunnel is not a setting \(known: routing.*encryption"),
    ("cilium", "bad", {**NATIVE_BPF, "encryption": "macsec"}, r"encryption 'macsec' is not one of none, wireguard"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "encryption": "ipsec"},
     r"canal cannot run encryption 'ipsec' \(only none, wireguard\)"),
    ("canal", "bad", {**SHIPPED["canal"]["vxlan"]["settings"], "datapath_mode": "netkit"},
     r"canal cannot run datapath_mode 'netkit'"),
    ("cilium", "bad", {**SHIPPED["cilium"]["native-legacy"]["settings"], "datapath_mode": "netkit"},
     r"netkit devices need BPF host routing"),
    ("cilium", "bad", {**SHIPPED["cilium"]["kube-proxy"]["settings"], "bandwidth_manager": True},
     r"the bandwidth manager needs kube-proxy replacement"),
])
def test_bad_profiles_are_refused_with_the_reason(cni, name, settings, message):
    extra = {cni: {name: {"settings": settings}}} if settings is not None else None
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.resolve(SHIPPED, cni, name, DEFAULTS, extra)
    # The filter lists the problem instead, so preflight states it before anything is created.
    assert cni_profile(SHIPPED, cni, name, DEFAULTS, extra)["problems"]


def test_the_filter_renders_both_roles_inputs_and_a_summary():
    found = cni_profile(SHIPPED, "cilium", "tunnel", DEFAULTS, {})
    assert found["problems"] == [] and rke2.profile_values(found["settings"])["cilium_routing_mode"] == "tunnel"
    assert found["summary"] == "vxlan tunnel, kube-proxy, legacy host routing, iptables masquerade, MTU auto"
    assert cni_profile(SHIPPED, "", "", DEFAULTS, {})["settings"] == {}


def test_the_rke2_release_must_ship_a_cilium_chart_that_takes_the_values():
    assert rke2.chart_problems("v1.33.5+rke2r1", "cilium") == []
    assert rke2.chart_problems("v1.29.0+rke2r1", "cilium") == []
    assert "use RKE2 v1.29 or newer" in rke2.chart_problems("v1.28.15+rke2r1", "cilium")[0]
    assert rke2.chart_problems("v1.28.15+rke2r1", "canal") == []
    assert "must look like" in rke2.chart_problems("latest", "canal")[0]


def test_the_host_routing_says_which_counters_a_cross_node_test_moves():
    legacy = proof.expected("cilium", "cross-node", SHIPPED["cilium"]["native-legacy"]["settings"])
    assert legacy["iptables.forward"] is True and legacy["bpf.from_container_neigh"] is False
    tunnel = proof.expected("cilium", "cross-node", SHIPPED["cilium"]["tunnel"]["settings"])
    assert tunnel["bpf.from_container_encap"] is True and tunnel["bpf.from_overlay_stack"] is True
    bpf = proof.expected("cilium", "cross-node", NATIVE_BPF)
    assert bpf["iptables.forward"] is False and bpf["bpf.from_netdev_peer"] is True
    # A run before profiles is of the reference.
    assert proof.expected("cilium", "cross-node") == bpf
    service = proof.expected("cilium", "service", SHIPPED["cilium"]["kube-proxy"]["settings"])
    assert service["bpf.sock_xlate"] is False and service[f"iptables.service.{proof.SERVICE}"] is True


@pytest.mark.parametrize(("cni", "name", "values"), [
    ("cilium", "native-netkit", {"cilium_datapath_mode": "netkit", "cilium_encryption": "none"}),
    ("cilium", "native-wireguard", {"cilium_encryption": "wireguard", "cilium_notrack": False}),
    ("cilium", "native-ipsec", {"cilium_encryption": "ipsec", "cilium_datapath_mode": "veth"}),
    ("cilium", "native-bandwidth-manager", {"cilium_bandwidth_manager": True, "cilium_encryption": "none"}),
    ("canal", "wireguard", {"canal_backend": "wireguard", "canal_mtu": 0}),
])
def test_the_real_lab_profiles_render_their_chart_values(cni, name, values):
    settings = profiles.resolve(SHIPPED, cni, name)["settings"]
    rendered = rke2.profile_values(settings)
    assert {key: rendered[key] for key in values} == values
    # Said in the run's profile line too.
    assert profiles.describe(settings).count(",") == 5


def _kernel(has):
    return {"release": "6.18.44", "source": "/proc/config.gz", "has": has}


def test_the_model_refuses_what_it_does_not_run_naming_what_the_kernel_lacks():
    netkit = cni_profile(SHIPPED, "cilium", "native-netkit", DEFAULTS, {})
    lacks = profiles.model_problems(netkit, _kernel({"CONFIG_NETKIT": False}))
    assert lacks == ["profile cilium/native-netkit sets datapath_mode netkit, which the datapath model cannot run: "
                     "this kernel (6.18.44) lacks CONFIG_NETKIT (read from /proc/config.gz); the lab's nodes share it "
                     "and cannot load it. It runs where RKE2 runs it (netlab_cluster rke2 on a Proxmox lab) or on an "
                     "existing cluster"]
    ipsec = cni_profile(SHIPPED, "cilium", "native-ipsec", DEFAULTS, {})
    partly = profiles.model_problems(ipsec, _kernel({"CONFIG_XFRM_USER": True, "CONFIG_INET_ESP": False,
                                                     "CONFIG_CRYPTO_GCM": False}))
    assert "lacks CONFIG_INET_ESP, CONFIG_CRYPTO_GCM (read" in partly[0] and "XFRM" not in partly[0]
    unknown = profiles.model_problems(cni_profile(SHIPPED, "canal", "wireguard", DEFAULTS, {}),
                                      {"release": "6.1.0", "source": None, "has": {"CONFIG_WIREGUARD": None}})
    assert "nothing tells whether this kernel (6.1.0) has CONFIG_WIREGUARD" in unknown[0]
    has = profiles.model_problems(cni_profile(SHIPPED, "cilium", "native-bandwidth-manager", DEFAULTS, {}),
                                  _kernel({"CONFIG_NET_SCH_FQ": True}))
    assert "this kernel has CONFIG_NET_SCH_FQ, but the local model does not run it" in has[0]
    # The model on Proxmox VMs: their kernel is not known before they exist.
    assert "the datapath model does not run it" in profiles.model_problems(netkit, None)[0]
    # What the model runs is not refused.
    for name in ("native-bpf", "tunnel-bpf", "tunnel"):
        assert profiles.model_problems(cni_profile(SHIPPED, "cilium", name, DEFAULTS, {}), _kernel({})) == []


@pytest.mark.parametrize(("cni", "name", "values"), [
    ("cilium", "native-legacy-notrack", {"cilium_notrack": True, "cilium_host_legacy_routing": True,
                                         "cilium_routing_mode": "native"}),
    # BBR alone is the benchmark sockets' (bench_congestion); bandwidthManager.bbr only with the bandwidth manager.
    ("cilium", "native-bbr", {"cilium_bandwidth_manager_bbr": False, "cilium_notrack": False}),
    ("canal", "host-gw", {"canal_backend": "host-gw", "canal_mtu": 0}),
])
def test_the_new_model_profiles_render_their_chart_values(cni, name, values):
    rendered = rke2.profile_values(profiles.resolve(SHIPPED, cni, name)["settings"])
    assert {key: rendered[key] for key in values} == values
    bwm_bbr = {**SHIPPED["cilium"]["native-bandwidth-manager"]["settings"], "congestion": "bbr"}
    assert rke2.profile_values(bwm_bbr)["cilium_bandwidth_manager_bbr"] is True
    # The datapath model runs them: nothing of the kernel is asked.
    profile = profiles.resolve(SHIPPED, cni, name)
    assert profiles.model_problems(profile, {"release": "6.18", "source": "/proc/config.gz", "has": {}}) == []


def test_notrack_keeps_legacy_host_routing_out_of_conntrack_and_nat():
    legacy = SHIPPED["cilium"]["native-legacy"]["settings"]
    notrack = SHIPPED["cilium"]["native-legacy-notrack"]["settings"]
    for placement in ("same-node", "cross-node", "service"):
        without, with_it = proof.expected("cilium", placement, legacy), proof.expected("cilium", placement, notrack)
        assert (without["iptables.notrack"], with_it["iptables.notrack"]) == (False, True), placement
        assert with_it["iptables.forward"] is True and with_it["iptables.nat-prerouting"] is False, placement
        assert "iptables.nat-prerouting" not in without or placement == "service", placement
    # Under BPF host routing nothing reaches netfilter, notrack or not.
    assert proof.expected("cilium", "cross-node", {**NATIVE_BPF, "notrack": True})["iptables.notrack"] is False


def test_host_gw_routes_to_the_peer_where_vxlan_encapsulates():
    vxlan = proof.expected("canal", "cross-node", SHIPPED["canal"]["vxlan"]["settings"])
    host_gw = proof.expected("canal", "cross-node", SHIPPED["canal"]["host-gw"]["settings"])
    assert (vxlan["vxlan.tx_packets"], vxlan["iptables.routed-to-peer"]) == (True, False)
    assert (host_gw["vxlan.tx_packets"], host_gw["iptables.routed-to-peer"]) == (False, True)
    assert host_gw["iptables.felix-from-workload"] and host_gw["iptables.felix-to-workload"]
    assert proof.expected("canal", "service", SHIPPED["canal"]["host-gw"]["settings"])[
        f"iptables.service.{proof.SERVICE}"] is True
    # A run from before profiles is of Canal's reference, VXLAN.
    assert proof.expected("canal", "cross-node") == vxlan
    found = proof.check("canal", "cross-node", {"iptables.routed-to-peer": 9, "iptables.forward": 9,
                                                "iptables.felix-from-workload": 4, "iptables.felix-to-workload": 5},
                        SHIPPED["canal"]["host-gw"]["settings"])
    assert found["contradictions"] == []
    assert proof.MECHANISMS["iptables.routed-to-peer"] in found["mechanisms"]


def test_nftables_kube_proxy_serves_the_service_tests():
    nftables, iptables = (SHIPPED["canal"][name]["settings"] for name in ("nftables", "vxlan"))
    service = proof.expected("canal", "service", nftables)
    assert (service[f"nftables.service.{proof.SERVICE}"], service[f"iptables.service.{proof.SERVICE}"]) == (True, False)
    assert proof.expected("canal", "service", iptables)[f"nftables.service.{proof.SERVICE}"] is False
    # Cilium without kube-proxy replacement keeps kube-proxy, in either mode; with it neither counter moves.
    kube_proxy = {**SHIPPED["cilium"]["kube-proxy"]["settings"], "kube_proxy_mode": "nftables"}
    assert proof.expected("cilium", "service", kube_proxy)[f"nftables.service.{proof.SERVICE}"] is True
    assert proof.expected("cilium", "service", NATIVE_BPF)[f"nftables.service.{proof.SERVICE}"] is False
    assert rke2.profile_values(profiles.resolve(SHIPPED, "canal", "nftables")["settings"])["kube_proxy_mode"] == (
        "nftables")
    assert profiles.describe(nftables).startswith("vxlan tunnel, kube-proxy (nftables),")


@pytest.mark.parametrize(("version", "refused"), [("v1.30.14+rke2r1", True), ("v1.31.0+rke2r1", False),
                                                  ("v1.33.5+rke2r1", False)])
def test_nftables_kube_proxy_needs_kubernetes_1_31(version, refused):
    settings = profiles.resolve(SHIPPED, "canal", "nftables")["settings"]
    problems = rke2.chart_problems(version, "canal", settings)
    assert bool(problems) is refused
    if refused:
        assert "has the nftables mode only as an alpha behind the NFTablesProxyMode feature gate" in problems[0]
    assert rke2.chart_problems("v1.30.14+rke2r1", "cilium", SHIPPED["cilium"]["kube-proxy"]["settings"]) == []


def test_big_tcp_packets_are_its_proof_on_tcp_between_nodes():
    bigtcp = SHIPPED["cilium"]["native-bigtcp"]["settings"]
    # Without BIG TCP a packet of more than 64 KiB is impossible; with it one is shown where seen, not required.
    assert "nic.big_tcp" not in proof.expected("cilium", "cross-node", bigtcp, "tcp")
    assert "nic.big_tcp" not in proof.expected("cilium", "cross-node", bigtcp, "udp")
    assert "nic.big_tcp" not in proof.expected("cilium", "same-node", bigtcp, "tcp")
    assert proof.expected("cilium", "cross-node", NATIVE_BPF, "tcp")["nic.big_tcp"] is False
    # Counter growth of an iperf3 TCP test: 117 KB per packet out of the client's interface (the tuning review's
    # probe measured 117,413 bytes/skb at 185 KB sizes), small ACKs in.
    grown = {"bpf.from_container_neigh": 2300, "bpf.from_netdev_peer": 2400, "bpf.from_container_peer": 0,
             "nic.tx_packets": 2290, "nic.tx_bytes": 268_877_993, "nic.rx_packets": 2400, "nic.rx_bytes": 160_000}
    assert proof.big_packets(grown)
    found = proof.check("cilium", "cross-node", grown, bigtcp, "tcp")
    assert proof.MECHANISMS["nic.big_tcp"] in found["mechanisms"] and found["contradictions"] == []
    # 55 KB per packet: what the same transfer makes at the default 64 KiB: not shown, and no contradiction.
    small = {**grown, "nic.tx_packets": 4841, "nic.tx_bytes": 267_771_141}
    assert not proof.big_packets(small)
    unshown = proof.check("cilium", "cross-node", small, bigtcp, "tcp")
    assert unshown["contradictions"] == [] and proof.MECHANISMS["nic.big_tcp"] not in unshown["mechanisms"]
    assert proof.check("cilium", "cross-node", small, NATIVE_BPF, "tcp")["contradictions"] == []
    # Big packets where the profile has no BIG TCP: the model's path is not what ran.
    assert proof.check("cilium", "cross-node", grown, NATIVE_BPF, "tcp")["contradictions"] == [
        f"{proof.MECHANISMS['nic.big_tcp']} moved (1)"]
    assert rke2.profile_values(profiles.resolve(SHIPPED, "cilium", "native-bigtcp")["settings"])["cilium_big_tcp"]


@pytest.mark.parametrize(("release", "refused"), [("6.1.0-28-amd64", True), ("6.3.0", False),
                                                  ("6.18.44-fc-v1300", False)])
def test_big_tcp_needs_linux_6_3_on_the_lab(release, refused):
    profile = profiles.resolve(SHIPPED, "cilium", "native-bigtcp")
    problems = profiles.model_problems(profile, {"release": release, "source": "/proc/config.gz", "has": {}})
    assert bool(problems) is refused
    if refused:
        assert "sets big_tcp true, which needs Linux 6.3 or newer (IPv4 BIG TCP)" in problems[0]


def test_a_big_tcp_run_s_report_says_where_cilium_enables_it_and_what_crossed():
    from ansible_collections.netlab.lab.plugins.plugin_utils.report import run_report

    carried = {"scenario": "cross-node-tcp-1", "proof": {"mechanisms": [proof.MECHANISMS["nic.big_tcp"]]}}
    other = {"scenario": "cross-node-udp", "proof": {"mechanisms": []}}
    [note] = run_report.big_tcp_note({"profile_settings": {"big_tcp": True}, "results": [carried, other]})
    assert note.startswith("BIG TCP: Cilium enables it only on NICs whose drivers take it (mlx4, mlx5, ice")
    assert note.endswith("packets of more than 64 KiB crossed the node's interface in cross-node-tcp-1.")
    unproven = run_report.big_tcp_note({"profile_settings": {"big_tcp": True}, "results": [other]})[0]
    assert unproven.endswith("no test's counters show packets of more than 64 KiB.")
    cluster = run_report.big_tcp_note({"profile_settings": {"big_tcp": True}, "results": [{"proof": None}]})[0]
    assert cluster.endswith("this run has no datapath counters to show it.")
    assert run_report.big_tcp_note({"profile_settings": NATIVE_BPF, "results": [carried]}) == []
