"""What the Kubernetes transport's unit tests share: a run, its nodes and image, the planner's settings,
and the cluster objects as k8s_info returns them (test_kube_objects, test_kube_read, test_kube_calls).
The roles' defaults they read are fixtures in conftest.py."""

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_objects

IMAGE = "netlab/iperf3@sha256:" + "0" * 64
RUN = "20261122T190312Z-cilium"
NODES = ["netlab-agent-1", "netlab-agent-2"]
SETTINGS = {"duration": 30, "omit": 2, "repeats": 1, "port": 5201, "udp_bitrate": "1G", "timeout_margin": 30}
TRANSPORT = {"namespace": "netlab-bench-x"}


def render(entries, run=RUN):
    placements = [e["placement"] for e in matrix.normalize_matrix(entries)]
    return kube_objects.manifests(run, NODES, placements, IMAGE, 5201)


def pod_item(component, node, ip, phase="Running"):
    # Shaped as k8s_info returns a Pod (Kubernetes API reference v1.33, Pod v1 core: metadata,
    # spec.nodeName, status.phase/podIP/containerStatuses[].imageID).
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"iperf3-{component}", "labels": {"app.kubernetes.io/component": component}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "podIP": ip, "containerStatuses": [{"imageID": IMAGE}]}}


def node_item(name, ip, taints=None, provider_id=None):
    # A Node as in the Kubernetes API reference v1.33 (Node v1 core): spec.providerID and spec.taints,
    # status.addresses (InternalIP, Hostname), status.capacity and status.nodeInfo (systemUUID ...).
    spec = {"podCIDR": "10.42.1.0/24"}
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec, "status": {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "8", "memory": "32859948Ki", "pods": "110"},
        "nodeInfo": {"kubeletVersion": "v1.33.5+rke2r1", "kernelVersion": "6.12.48-1-amd64",
                     "osImage": "Debian GNU/Linux 13 (trixie)", "containerRuntimeVersion": "containerd://2.1.4",
                     "systemUUID": f"{name}-uuid", "machineID": "m", "architecture": "amd64",
                     "operatingSystem": "linux"}}}


# k8s_info returns {"resources": [...]}; a looped call {"results": [{"resources": [...]}, ...]}.
PODS = {"resources": [pod_item("client", NODES[0], "10.42.1.5"), pod_item("server-same", NODES[0], "10.42.1.6"),
                      pod_item("server-cross", NODES[1], "10.42.2.7"),
                      pod_item("client-host", NODES[0], "192.168.1.11"),
                      pod_item("server-host", NODES[1], "192.168.1.12")]}
SERVICES = {"resources": [{"metadata": {"name": "iperf3-cross"}, "spec": {"clusterIP": "10.43.17.4"}}]}
# The control-plane taint as kubeadm/RKE2 document it (Kubernetes docs, "Taints and Tolerations").
CONTROL_PLANE = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
NODE_OBJECTS = {"results": [{"resources": [node_item(NODES[0], "192.168.1.11", provider_id="aws:///eu-west-1a/i-0a")]},
                            {"resources": [node_item(NODES[1], "192.168.1.12", taints=CONTROL_PLANE)]}]}
