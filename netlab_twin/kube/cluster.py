"""The objects a cluster has before any client call, in the API's shapes: Nodes, the CNI's DaemonSet and
its agent pods, the namespaces every cluster starts with. Builders shared by the runtimes (CannedRuntime
here; a lab runtime fills them from its node facts).

Shapes: Node (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/; status
addresses, capacity, nodeInfo as the kubelet posts them, ``pkg/kubelet/nodestatus/setters.go``); the
DaemonSets and their ``k8s-app`` labels as RKE2's charts name them (rancher/rke2-charts packages/rke2-cilium,
packages/rke2-canal; plugins/plugin_utils/transport/cni_state.py reads them); flannel's node annotations
(tests/data/node-flannel-vxlan.json, flannel ``dist/fake-node.yaml``); images of RKE2 v1.33.5+rke2r1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from netlab_twin.kube.discovery import GIT_VERSION

Obj = dict[str, Any]
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
# Images of the CNI charts RKE2 v1.33.5+rke2r1 ships (its scripts/build-images), as the review lists them.
IMAGES = {
    "cilium": {"cilium-agent": "rancher/mirrored-cilium-cilium:v1.18.1"},
    "canal": {"calico-node": "rancher/hardened-calico:v3.30.3-build20250909",
              "kube-flannel": "rancher/hardened-flannel:v0.27.3-build20250909"},
}
DAEMONSETS = {"cilium": ("cilium", "cilium"), "canal": ("rke2-canal", "canal")}  # cni -> (name, k8s-app)


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace as the namespace strategy stores it: the kubernetes.io/metadata.name label (since 1.21),
    the ``kubernetes`` finalizer, phase Active (``pkg/registry/core/namespace/strategy.go`` PrepareForCreate)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**(labels or {}), "kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def node(name: str, ip: str, pod_cidr: str, cpu: str = "2", memory_ki: int = 4_000_000,
         kernel: str = "6.12.0-netlab", os_image: str = "Debian GNU/Linux 13 (trixie)", control_plane: bool = False,
         annotations: dict[str, str] | None = None, system_uuid: str = "") -> Obj:
    """A Ready Node with the fields kube_read.node_records reads (kubelet nodestatus setters)."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    if control_plane:
        labels.update({"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true"})
    resources = {"cpu": cpu, "memory": f"{memory_ki}Ki", "pods": "110", "ephemeral-storage": "20511312Ki"}
    spec: Obj = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    if control_plane:
        spec["taints"] = [dict(CONTROL_PLANE_TAINT)]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(annotations or {})},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": resources, "allocatable": dict(resources),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kernelVersion": kernel, "osImage": os_image, "kubeletVersion": GIT_VERSION,
                         "kubeProxyVersion": GIT_VERSION, "containerRuntimeVersion": "containerd://2.0.5-k3s2",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "systemUUID": system_uuid or str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                         "machineID": "", "bootID": ""},
        },
    }


def flannel_annotations(ip: str, backend: str = "vxlan") -> dict[str, str]:
    """Canal's flannel annotations on a Node, in the shape of tests/data/node-flannel-vxlan.json."""
    return {"flannel.alpha.coreos.com/backend-data": '{"VtepMAC":"96:59:b2:3f:04:ee"}',
            "flannel.alpha.coreos.com/backend-type": backend,
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/public-ip": ip}


def daemonset(cni: str, nodes: int) -> Obj:
    """The CNI's DaemonSet in kube-system, all its pods ready on every node."""
    name, app = DAEMONSETS[cni]
    containers = [{"name": c, "image": image} for c, image in IMAGES[cni].items()]
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        # Invented, and says so (as LabRuntime's does): the readers name it in the run's datapath.
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": app},
                     "annotations": {"netlab.io/twin": "canned"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": app}},
                 "template": {"metadata": {"labels": {"k8s-app": app}},
                              "spec": {"hostNetwork": True, "containers": containers}}},
        "status": {"currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberReady": nodes,
                   "numberAvailable": nodes, "updatedNumberScheduled": nodes, "numberMisscheduled": 0},
    }


def agent_pod(cni: str, node_name: str, ip: str, index: int) -> Obj:
    """One of the DaemonSet's pods on node_name (hostNetwork: its IP is the node's), Running and Ready."""
    name, app = DAEMONSETS[cni]
    containers = [{"name": c, "image": image} for c, image in IMAGES[cni].items()]
    started = "2026-01-01T00:00:00Z"
    ready = [{"type": t, "status": "True", "lastTransitionTime": started}
             for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-{index:05x}"[:63], "namespace": "kube-system",
                     "labels": {"k8s-app": app, "controller-revision-hash": "twin"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                                          "uid": "00000000-0000-0000-0000-000000000001", "controller": True}]},
        "spec": {"nodeName": node_name, "hostNetwork": True, "containers": containers,
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirstWithHostNet"},
        "status": {"phase": "Running", "conditions": ready, "hostIP": ip, "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": started,
                   "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": c["image"],
                                          "ready": True, "started": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": started}}} for c in containers]},
    }


def objects(nodes: tuple[str, ...], cni: str, node_ip: Callable[[str], str]) -> list[Obj]:
    """A cluster of ``nodes`` (the first the control plane) running ``cni``."""
    out = [namespace("default"), namespace("kube-system")]
    for i, name in enumerate(nodes):
        ip = node_ip(name)
        out.append(node(name, ip, f"10.42.{i}.0/24", control_plane=i == 0,
                        annotations=flannel_annotations(ip) if cni == "canal" else None))
    out.append(daemonset(cni, len(nodes)))
    out += [agent_pod(cni, name, node_ip(name), i + 1) for i, name in enumerate(nodes)]
    return out
