"""What the rke2 role writes before the first start, checked against RKE2's and the charts' keys.

The scenario converges two clusters (molecule.yml): each node is checked against its own cluster's CNI,
profile and addresses.
"""

from pathlib import Path

import jsonschema
import pytest
import yaml

# Each cluster's nodes (by name prefix): CNI, profile (empty: the CNI's reference, as
# playbooks/vars/profiles.yml names it), the server's and the agent's addresses.
CLUSTERS = {"molecule-rke2-cilium-": ("cilium", "tunnel", "198.18.3.21", "198.18.3.22"),
            "molecule-rke2-": ("canal", "", "198.18.3.11", "198.18.3.12")}
PROFILES = yaml.safe_load((Path(__file__).parents[3] / "playbooks/vars/profiles.yml").read_text())
# Cilium's values per profile: (routingMode, kubeProxyReplacement, bpf.masquerade, bpf.hostLegacyRouting).
CILIUM_PROFILES = {"native-bpf": ("native", True, True, False), "native-legacy": ("native", True, True, True),
                   "kube-proxy": ("native", False, False, False), "tunnel": ("tunnel", False, False, False)}

# RKE2 config-file keys we write (docs.rke2.io reference/server_config and agent_config).
RKE2_KEYS = {"token", "node-name", "node-ip", "server", "cni", "cluster-cidr", "service-cidr", "tls-san",
             "write-kubeconfig-mode", "disable-kube-proxy", "ingress-controller"}
# The rke2-cilium and rke2-canal chart value paths the role may write, each in the chart's values (one list,
# the unit tests' too).
CHART_PATHS = yaml.safe_load((Path(__file__).parents[3] / "tests/data/rke2-chart-paths.yml").read_text())
CILIUM_KEYS = set(CHART_PATHS["cilium"])
# Keys of a widely copied snippet that the chart silently ignores.
NOT_CILIUM_KEYS = {"enableBPFMasquerade", "enableIPMasqAgent"}
CANAL_KEYS = set(CHART_PATHS["canal"])

# helm.cattle.io/v1 HelmChartConfig, as the helm-controller CRD defines it.
HELMCHARTCONFIG = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "helm.cattle.io/v1"},
        "kind": {"const": "HelmChartConfig"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                           "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"valuesContent": {"type": "string"},
                           "failurePolicy": {"enum": ["abort", "reinstall"]}},
        },
    },
}


def paths(values, prefix=""):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


@pytest.fixture
def cluster(node):
    """(prefix, cni, profile, server address, agent address) of the node's cluster."""
    name = node.backend.get_hostname()
    prefix = next(prefix for prefix in CLUSTERS if name.startswith(prefix))
    cni, profile, server_ip, agent_ip = CLUSTERS[prefix]
    return prefix, cni, profile or PROFILES["netlab_profile_defaults"][cni], server_ip, agent_ip


@pytest.fixture
def config(node):
    f = node.file("/etc/rancher/rke2/config.yaml")
    assert f.mode == 0o600 and f.user == "root"
    return yaml.safe_load(f.content_string)


def is_server(node):
    return node.backend.get_hostname().endswith("server")


def test_config_keys_and_values(node, config, cluster):
    _, cni, profile, server_ip, agent_ip = cluster
    assert set(config) <= RKE2_KEYS
    assert len(config["token"]) == 64
    assert config["node-name"] == node.backend.get_hostname()
    if is_server(node):
        assert config["cni"] == cni
        assert config["node-ip"] == server_ip and server_ip in config["tls-san"]
        assert (config["cluster-cidr"], config["service-cidr"]) == ("10.42.0.0/16", "10.43.0.0/16")
        assert "server" not in config, "the first server starts the cluster"
        assert config.get("disable-kube-proxy", False) is (cni == "cilium" and CILIUM_PROFILES[profile][1])
        # No ingress DaemonSet with hostPorts on the benchmark nodes (the flag exists since v1.33.0).
        assert config["ingress-controller"] == "none"
    else:
        assert config["server"] == f"https://{server_ip}:9345"
        assert config["node-ip"] == agent_ip
        assert "cni" not in config


def test_token_is_shared(host, cluster):
    """Within a cluster; each cluster has its own."""
    prefix = cluster[0]
    tokens = {yaml.safe_load(host.get_host(f"podman://{name}").file("/etc/rancher/rke2/config.yaml")
                             .content_string)["token"]
              for name in (f"{prefix}server", f"{prefix}agent")}
    assert len(tokens) == 1
    others = {yaml.safe_load(host.get_host(f"podman://{other}server").file("/etc/rancher/rke2/config.yaml")
                             .content_string)["token"] for other in CLUSTERS if other != prefix}
    assert not tokens & others


def test_helmchartconfig(node, cluster):
    _, cni, profile, _, _ = cluster
    manifest = node.file(f"/var/lib/rancher/rke2/server/manifests/rke2-{cni}-config.yaml")
    if not is_server(node):
        assert not manifest.exists
        return
    assert manifest.mode == 0o600
    doc = yaml.safe_load(manifest.content_string)
    jsonschema.validate(doc, HELMCHARTCONFIG)
    assert doc["metadata"] == {"name": f"rke2-{cni}", "namespace": "kube-system"}
    values = yaml.safe_load(doc["spec"]["valuesContent"])
    if cni == "cilium":
        assert set(paths(values)) <= CILIUM_KEYS and not set(paths(values)) & NOT_CILIUM_KEYS
        routing, kpr, bpf_masquerade, legacy = CILIUM_PROFILES[profile]
        assert values["kubeProxyReplacement"] is kpr
        assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("127.0.0.1", 6443)
        assert values["routingMode"] == routing and values["autoDirectNodeRoutes"] is (routing == "native")
        assert values.get("tunnelProtocol") == ("vxlan" if routing == "tunnel" else None)
        assert values["ipv4NativeRoutingCIDR"] == "10.42.0.0/16"
        assert values["bpf"] == {"masquerade": bpf_masquerade, "hostLegacyRouting": legacy}
        assert "MTU" not in values, "no profile sets the pods' MTU: Cilium detects it"
    else:
        assert set(paths(values)) <= CANAL_KEYS
        # flannel's device on the node's 1500-byte NIC is 1450: the pods' veths match it.
        assert values == {"flannel": {"backend": "vxlan"}, "calico": {"vethuMTU": 1450}}
