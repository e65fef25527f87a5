"""The cluster objects the Kubernetes twin shows for a local lab, built from what its nodes say about themselves.

Pure functions on ``NodeInfo`` (read from each node by lab.py): the Node objects, the CNI's DaemonSet, for
Cilium one agent pod per node, the Namespaces a cluster starts with, and the agent's ``cilium-dbg status -o
json``. What the project reads from them (plugins/plugin_utils/transport/cni_state.py and kube_read.py) must say
of the twin what the local transport says of the same lab: the CNI from the DaemonSet's name, label and
images, flannel's view from the Node annotations, Cilium's modes from the status, the node records from
``status.nodeInfo``/``capacity``.

What is real and what the twin invents:
- real (read from the node): addresses, cpu and memory, kernel, OS, architecture, pod CIDR, the VXLAN
  device's MAC, the datapath settings (the node fact lab_cni wrote);
- invented, and marked with the annotation ``netlab.io/twin: model``: the DaemonSet (no CNI agent runs:
  the datapath is lab_cni's model), the Cilium agent pods (no process) and their status document, whose
  ``cilium.msg`` says so. The images are those RKE2 v1.33.5+rke2r1's charts deploy (rancher/rke2
  ``charts/chart_versions.yaml``: rke2-canal v3.30.3-build2025090900, rke2-cilium 1.18.103 = Cilium 1.18.1,
  rancher/rke2-charts ``packages/rke2-*/``), so cni_state.image_versions reads the versions a real RKE2 runs.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from netlab_twin.kube.runtime import ExecError

KUBELET_VERSION = "v1.33.5+netlab-twin"
CILIUM_VERSION = "1.18.1"
# The marker on every object the twin makes up rather than reads from a node.
TWIN_ANNOTATION = {"netlab.io/twin": "model"}
IMAGES = {
    "canal": {"calico-node": "rancher/hardened-calico:v3.30.3-build20250909",
              "kube-flannel": "rancher/hardened-flannel:v0.27.3-build20250901"},
    "cilium": {"cilium-agent": f"rancher/mirrored-cilium-cilium:v{CILIUM_VERSION}"},
}
# rancher/rke2-charts: packages/rke2-canal templates/daemonset.yaml ({{ .Release.Name }}, k8s-app: canal) and
# the upstream cilium chart's templates/cilium-agent/daemonset.yaml (cilium, k8s-app: cilium).
DAEMONSETS = {"canal": ("rke2-canal", "canal"), "cilium": ("cilium", "cilium")}
# The kubelet's defaults: maxPods 110; evictionHard memory.available<100Mi comes off allocatable memory.
MAX_PODS = "110"
EVICTION_KIB = 100 * 1024
# flannel's annotations (flannel pkg/subnet/kube/annotations.go, default prefix flannel.alpha.coreos.com).
FLANNEL = "flannel.alpha.coreos.com"


@dataclass
class NodeInfo:
    """One lab node as lab.py read it: its container's name and role, its node fact and its machine."""

    name: str
    fact: dict[str, Any]
    server: bool = False
    cpus: int = 1
    mem_kib: int = 0
    kernel: str = ""
    os_image: str = ""
    arch: str = "amd64"
    system_uuid: str = ""
    runtime: str = ""
    vtep_mac: str = ""
    # (network namespace, pod IP) of the model's pods, as /etc/netlab/pods lists them.
    slots: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ip(self) -> str:
        return str(self.fact.get("ip", ""))

    @property
    def cni(self) -> str:
        return str(self.fact.get("cni", ""))


# What lab.py reads in each node, in one exec: the fact, the model's pods, the machine, flannel's VXLAN device.
READ_NODE = "; ".join(f"{part} 2>/dev/null; echo @@" for part in (
    "cat /etc/ansible/facts.d/netlab.fact", "grep -v -e '^#' -e '^$' /etc/netlab/pods", "nproc",
    "awk '/^MemTotal:/ { print $2 }' /proc/meminfo", "uname -r", "uname -m", '. /etc/os-release && echo "$PRETTY_NAME"',
    "cat /etc/machine-id", "cat /sys/class/net/flannel.1/address"))


def node_info(name: str, output: str, server: bool, runtime: str) -> NodeInfo:
    """The node as READ_NODE's output says; ValueError for a node without the datapath fact."""
    out = [part.strip() for part in output.split("@@\n")]
    try:
        fact = json.loads(out[0])
    except ValueError:
        raise ValueError(f"node {name} has no datapath fact (/etc/ansible/facts.d/netlab.fact): "
                         "run ansible-playbook site.yml --tags cluster first") from None
    machine = out[7].ljust(32, "0")
    return NodeInfo(
        name=name, fact=fact, server=server, cpus=int(out[2] or 1), mem_kib=int(out[3] or 0), kernel=out[4],
        os_image=out[6], arch={"x86_64": "amd64", "aarch64": "arm64"}.get(out[5], out[5]), runtime=runtime,
        # The kubelet reports the machine's DMI product UUID; a node container has the host's, so its systemd
        # machine id, formatted as a UUID, stands in (the twin's choice).
        system_uuid=f"{machine[:8]}-{machine[8:12]}-{machine[12:16]}-{machine[16:20]}-{machine[20:32]}",
        vtep_mac=out[8], slots=[(words[0], words[1]) for words in map(str.split, out[1].splitlines())
                                if len(words) >= 2])


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def namespaces() -> list[dict[str, Any]]:
    """The namespaces every cluster starts with; the namespace controller labels each with its name."""
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            for name in ("default", "kube-system", "kube-public", "kube-node-lease")]


def node(info: NodeInfo) -> dict[str, Any]:
    """A Node as the kubelet registers it (Node v1 core), from the node's own readings."""
    labels = {"kubernetes.io/hostname": info.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": info.arch,
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": info.arch}
    spec: dict[str, Any] = {"podCIDR": info.fact.get("pod_cidr"), "podCIDRs": [info.fact.get("pod_cidr")]}
    if info.server:
        # RKE2 labels its servers so; the taint is kubeadm's control-plane taint, which the benchmark's pods
        # tolerate (kube_objects: tolerations Exists) and which its run records (kube_read.node_records).
        labels.update({"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true",
                       "node-role.kubernetes.io/master": "true"})
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    annotations = {}
    if info.cni == "canal":
        # flannel's kube subnet manager publishes the node's VXLAN endpoint (tests/data/node-flannel-vxlan.json).
        annotations = {f"{FLANNEL}/backend-data": json.dumps({"VtepMAC": info.vtep_mac}, separators=(",", ":")),
                       f"{FLANNEL}/backend-type": "vxlan", f"{FLANNEL}/kube-subnet-manager": "true",
                       f"{FLANNEL}/public-ip": info.ip}
    capacity = {"cpu": str(info.cpus), "memory": f"{info.mem_kib}Ki", "pods": MAX_PODS}
    allocatable = {**capacity, "memory": f"{max(info.mem_kib - EVICTION_KIB, 0)}Ki"}
    stamp = now()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": info.name, "labels": labels, "annotations": annotations},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": info.ip}, {"type": "Hostname", "address": info.name}],
            "capacity": capacity, "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
                            "lastTransitionTime": stamp}],
            "nodeInfo": {"kernelVersion": info.kernel, "osImage": info.os_image, "kubeletVersion": KUBELET_VERSION,
                         "kubeProxyVersion": KUBELET_VERSION, "containerRuntimeVersion": info.runtime,
                         "operatingSystem": "linux", "architecture": info.arch, "systemUUID": info.system_uuid,
                         "machineID": info.system_uuid.replace("-", ""), "bootID": ""},
        },
    }


def daemonset(cni: str, nodes: int) -> dict[str, Any]:
    """The CNI's DaemonSet as RKE2's chart names and labels it, every node's pod ready (the model runs)."""
    name, app = DAEMONSETS[cni]
    containers = [{"name": container, "image": image} for container, image in IMAGES[cni].items()]
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": app},
                     "annotations": dict(TWIN_ANNOTATION), "generation": 1},
        "spec": {"selector": {"matchLabels": {"k8s-app": app}},
                 "template": {"metadata": {"labels": {"k8s-app": app}},
                              "spec": {"hostNetwork": True, "containers": containers,
                                       "tolerations": [{"operator": "Exists"}]}}},
        "status": {"desiredNumberScheduled": nodes, "currentNumberScheduled": nodes, "numberReady": nodes,
                   "numberAvailable": nodes, "updatedNumberScheduled": nodes, "numberMisscheduled": 0,
                   "observedGeneration": 1},
    }


def agent_pod(info: NodeInfo) -> dict[str, Any]:
    """The Cilium agent of one node: Running and Ready, hostNetwork, no process (exec answers from the model)."""
    image = IMAGES["cilium"]["cilium-agent"]
    stamp = now()
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"cilium-{info.name}", "namespace": "kube-system",
                     "labels": {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent",
                                "app.kubernetes.io/part-of": "cilium"},
                     "annotations": dict(TWIN_ANNOTATION)},
        "spec": {"nodeName": info.name, "hostNetwork": True, "restartPolicy": "Always",
                 "containers": [{"name": "cilium-agent", "image": image}],
                 "tolerations": [{"operator": "Exists"}]},
        "status": {
            "phase": "Running", "hostIP": info.ip, "hostIPs": [{"ip": info.ip}], "podIP": info.ip,
            "podIPs": [{"ip": info.ip}], "startTime": stamp,
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": stamp}
                           for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": "cilium-agent", "ready": True, "started": True, "restartCount": 0,
                                   "image": image, "imageID": "", "state": {"running": {"startedAt": stamp}}}],
        },
    }


def cluster(infos: list[NodeInfo]) -> list[dict[str, Any]]:
    """Everything the twin holds before any client call, for the CNI the nodes' facts name."""
    cnis = {info.cni for info in infos}
    if len(cnis) != 1 or not cnis <= set(DAEMONSETS):
        raise ValueError(f"the lab's nodes must run one CNI of {', '.join(DAEMONSETS)}; their facts say {sorted(cnis)}")
    cni = cnis.pop()
    objects = [*namespaces(), *(node(info) for info in infos), daemonset(cni, len(infos))]
    if cni == "cilium":
        objects += [agent_pod(info) for info in infos]
    return objects


def _flag(value: Any) -> bool:
    """A setting the fact may hold as a bool or as Jinja's rendering of one."""
    return value is True or str(value).lower() in ("true", "yes", "1")


def cilium_status(info: NodeInfo) -> dict[str, Any]:
    """``cilium-dbg status -o json`` of the node's agent (a StatusResponse, cilium api/v1/models) for the model's
    settings (lab_cni_settings in the node fact), in the shape of tests/data/cilium-status-1.18-native.json.

    Cilium 1.14 and later report kube-proxy replacement True/False; 1.16 and later the routing modes under
    ``routing`` (``tunnel-protocol`` only in tunnel mode); ``masquerading.mode`` is BPF or iptables."""
    settings = info.fact.get("settings") or {}
    kpr = _flag(settings.get("kube_proxy_replacement"))
    tunnel = settings.get("routing") == "vxlan"
    device = str(info.fact.get("interface") or "eth0")
    routing = {"inter-host-routing-mode": "Tunnel" if tunnel else "Native",
               "intra-host-routing-mode": "Legacy" if settings.get("host_routing") == "legacy" else "BPF"}
    if tunnel:
        routing["tunnel-protocol"] = "vxlan"
    features = {name: {"enabled": kpr} for name in ("hostPort", "externalIPs", "socketLB", "sessionAffinity")}
    features["nodePort"] = {"enabled": kpr, **({"mode": "SNAT", "algorithm": "Random", "portMin": 30000,
                                                "portMax": 32767} if kpr else {})}
    return {
        "cilium": {"state": "Ok", "msg": f"{CILIUM_VERSION} (v{CILIUM_VERSION}-netlab-twin) netlab twin model: "
                                         "built from the node fact's datapath settings, not a Cilium agent"},
        "kvstore": {"state": "Disabled"},
        "kubernetes": {"state": "Ok", "msg": f"1.33 ({KUBELET_VERSION}) [linux/{info.arch}]",
                       "k8s-api-versions": ["EndpointSliceOrEndpoint", "cilium/v2::CiliumNode", "core/v1::Pods",
                                            "core/v1::Service"]},
        "kube-proxy-replacement": {"mode": "True" if kpr else "False", "devices": [device],
                                   "deviceList": [{"name": device, "ip": [info.ip]}],
                                   "directRoutingDevice": device, "features": features},
        "host-firewall": {"mode": "Disabled", "devices": [device]},
        "ipam": {"ipv4": [ip for _, ip in info.slots], "status": ""},
        "masquerading": {"enabled": True, "enabledProtocols": {"ipv4": True},
                         "mode": "BPF" if settings.get("masquerade") == "bpf" else "iptables"},
        "routing": routing,
        "cluster": {"self": f"kube-system/{info.name}", "ciliumHealth": {"state": "Ok"}},
        "stale": {},
    }


class AgentAnswer:
    """An exec the Cilium agent model answers itself: one stdout chunk, exit code 0 (an agent that is Ok)."""

    def __init__(self, stdout: bytes) -> None:
        self._chunks: list[tuple[int, bytes]] = [(1, stdout)]

    async def read(self) -> tuple[int, bytes] | None:
        return self._chunks.pop(0) if self._chunks else None

    async def wait(self) -> int:
        return 0

    async def kill(self) -> None:
        self._chunks.clear()


def agent_exec(info: NodeInfo, argv: list[str]) -> AgentAnswer:
    """``cilium-dbg status -o json`` (also ``cilium``, ``--output json``) in the node's agent; any other command
    is the runtime's error, since the model runs no agent process. The role's wrappers, which the agent's image
    runs (kube_calls.in_pod's ``sh -c '... "$@"' sh ARGV``, ``timeout N ARGV``), are taken off first."""
    while True:
        if argv[:2] == ["sh", "-c"] and len(argv) > 3 and '"$@"' in argv[2]:
            argv = argv[4:]
        elif argv[:1] == ["timeout"] and len(argv) > 2:
            argv = argv[2:]
        else:
            break
    words = [word for word in argv if word not in ("-o", "--output", "json")]
    if words[:1] not in (["cilium-dbg"], ["cilium"]) or words[1:] != ["status"] or "json" not in argv:
        raise ExecError("the twin's Cilium agent is a model without processes: it answers only "
                        "cilium-dbg status -o json")
    return AgentAnswer(json.dumps(cilium_status(info), indent=2).encode() + b"\n")
