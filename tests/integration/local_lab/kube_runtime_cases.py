"""The Kubernetes twin's LabRuntime on a running local lab: the benchmark's own pod and Service objects
(kube_objects.manifests) started, exec'd into, served and stopped by the runtime directly, on an asyncio loop
as the twin's API server would call it; the cluster objects read by the Kubernetes transport's own readers.

Steps of the local lab's history (test_local_lab.py): on the Cilium reference lab before the Kubernetes
transport's run through the twin, and on the Canal lab before Canal's; no lab of their own.
"""

import asyncio
import ipaddress
import json
import os
import signal
import time

import pytest
from lab_checks import node

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cni_state, kube_objects, kube_read, proof
from netlab_twin.kube import lab as kube_lab
from netlab_twin.kube.lab import LabRuntime
from netlab_twin.kube.runtime import ExecError

CLIENT, SERVER = "netlab-agent-1", "netlab-agent-2"
PORT = 5201


def slots(name: str) -> dict[str, str]:
    """netns -> IP of a node's model pods, as /etc/netlab/pods lists them."""
    lines = node(name).check_output("grep -v '^#' /etc/netlab/pods").splitlines()
    return dict(line.split() for line in lines if line.strip())


def marked(name: str, owner: str) -> str:
    """The pids of the node's processes that carry an owner's marker."""
    return node(name).run(f"grep -lzs '^NETLAB_KT={owner}/' /proc/[0-9]*/environ").stdout.strip()


async def run(rt, pod, argv, container=kube_objects.CONTAINER):
    proc = await rt.exec(pod, container, argv)
    out = {1: b"", 2: b""}
    while (chunk := await proc.read()) is not None:
        out[chunk[0]] += chunk[1]
    return await proc.wait(), out[1].decode(), out[2].decode()


def bench_objects() -> tuple[dict, dict[str, dict]]:
    """The benchmark's Service and pods for a cross-node, same-node and Service test, with the uid the API adds."""
    docs = kube_objects.manifests("kt", [CLIENT, SERVER], ["cross-node", "same-node", "service"],
                                  "netlab/iperf3@sha256:" + "e" * 64, PORT)
    service = next(d for d in docs if d["kind"] == "Service")
    pods = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == "Pod"}
    for index, pod in enumerate(pods.values()):
        pod["metadata"]["uid"] = f"00000000-0000-4000-8000-{index:012d}"
    return service, pods


def cluster_objects_read_as_the_lab_runs(runtime: LabRuntime) -> None:
    """The Kubernetes transport's readers find, through the twin's objects, what the node facts say: Cilium from
    the DaemonSet, each node's machine, and the model's settings in the agents' cilium-dbg status."""
    objects = runtime.cluster_objects()
    daemonsets = [o for o in objects if o["kind"] == "DaemonSet"]
    assert kube_read.identify_cni({"resources": daemonsets})["cni"] == "cilium"
    assert daemonsets[0]["metadata"]["annotations"] == {"netlab.io/twin": "model"}
    nodes = [o for o in objects if o["kind"] == "Node"]
    records = {r["name"]: r for r in kube_read.node_records([CLIENT, SERVER, "netlab-server-1"], {"resources": nodes})}
    for name in (CLIENT, SERVER):
        fact = json.loads(node(name).check_output("cat /etc/ansible/facts.d/netlab.fact"))
        assert records[name]["address"] == fact["ip"]
        assert records[name]["cpu"] == node(name).check_output("nproc").strip()
        assert records[name]["kernel"] == node(name).check_output("uname -r").strip()
        assert records[name]["kubelet"] == "v1.33.5+netlab-twin" and not records[name]["taints"]
    assert records["netlab-server-1"]["taints"] == [{"key": "node-role.kubernetes.io/control-plane",
                                                     "effect": "NoSchedule"}]
    agents = {o["spec"]["nodeName"]: o for o in objects if o["kind"] == "Pod"}
    assert sorted(agents) == sorted(runtime.nodes) and all(
        a["metadata"]["labels"]["k8s-app"] == "cilium" and a["status"]["phase"] == "Running" for a in agents.values())

    rc, out, _ = asyncio.run(run(runtime, agents[CLIENT], ["cilium-dbg", "status", "-o", "json"], "cilium-agent"))
    state = cni_state.cilium_status(out)
    settings = runtime.nodes[CLIENT].fact["settings"]
    assert rc == 0 and "netlab twin model" in state["message"]
    assert (state["routing"], state["kube_proxy_replacement"], state["host_routing"], state["masquerading"]) == (
        "Native" if settings["routing"] == "native" else "Tunnel", str(settings["kube_proxy_replacement"]),
        settings["host_routing"].upper() if settings["host_routing"] == "bpf" else "Legacy",
        "IPTables" if settings["masquerade"] == "iptables" else "BPF")
    with pytest.raises(ExecError):
        asyncio.run(run(runtime, agents[CLIENT], ["sh", "-c", "true"], "cilium-agent"))


def pods_execs_and_service_on_the_lab(runtime: LabRuntime) -> None:
    service, pods = bench_objects()
    client_slots, server_slots = slots(CLIENT), slots(SERVER)

    async def scenario() -> dict:
        seen: dict = {}
        started = time.monotonic()
        seen["status"] = {c: await runtime.start(p) for c, p in pods.items()}
        seen["start_s"] = time.monotonic() - started
        await asyncio.sleep(0.5)
        seen["running"] = {c: await runtime.running(p) for c, p in pods.items()}
        client = pods["client"]
        seen["addr"] = await run(runtime, client, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
        seen["id"] = await run(runtime, client, ["sh", "-c", "id -u; id -g"])
        seen["rc3"] = await run(runtime, client, ["sh", "-c", "echo out; echo err >&2; exit 3"])
        with pytest.raises(ExecError, match="executable file not found"):
            await run(runtime, client, ["no-such-binary", "x"])
        server_ip = seen["status"]["server-cross"]["podIP"]
        started = time.monotonic()
        seen["iperf3"] = await run(runtime, client, ["iperf3", "-c", server_ip, "-p", str(PORT), "-t", "1", "-J"])
        seen["iperf3_s"] = time.monotonic() - started

        vip = str(ipaddress.ip_network(runtime.service_cidr())[commands.SERVICE_HOST])
        service["spec"]["clusterIP"] = vip
        await runtime.service_sync(service, [server_ip])
        seen["services"] = node(CLIENT).check_output("ls /var/lib/netlab/services").split()
        before = json.loads(node(CLIENT).check_output(f"{proof.DATAPATH} counters"))
        seen["via_vip"] = await run(runtime, client, ["iperf3", "-c", vip, "-p", str(PORT), "-t", "1", "-J"])
        after = json.loads(node(CLIENT).check_output(f"{proof.DATAPATH} counters"))
        seen["translated"] = after["bpf.sock_xlate"] - before["bpf.sock_xlate"]

        # An exec the client leaves: killed in the node, not only its podman exec.
        sleeper = await runtime.exec(client, kube_objects.CONTAINER, ["sleep", "300"])
        await asyncio.sleep(0.5)
        seen["sleeping"] = node(CLIENT).run(f"pgrep -u {kube_objects.UID} -x sleep").stdout.split()
        await sleeper.kill()
        seen["slept"] = node(CLIENT).run(f"pgrep -u {kube_objects.UID} -x sleep").stdout.split()

        await runtime.stop(pods["server-same"])
        await runtime.stop(pods["server-same"])  # idempotent
        seen["stopped"] = marked(CLIENT, f"{runtime.owner}/{pods['server-same']['metadata']['uid']}")
        seen["client_left"] = marked(CLIENT, runtime.owner)
        started = time.monotonic()
        await runtime.close()
        seen["close_s"] = time.monotonic() - started
        return seen

    seen = asyncio.run(scenario())
    print({k: v for k, v in seen.items() if k.endswith("_s")})
    assert seen["status"]["client"]["podIP"] == client_slots["pod0"]
    assert seen["status"]["server-same"]["podIP"] == client_slots["pod1"]
    assert seen["status"]["server-cross"]["podIP"] == server_slots["pod0"]
    assert seen["status"]["client"]["hostIP"] == runtime.nodes[CLIENT].ip
    assert seen["running"] == {c: None for c in pods}
    rc, out, _ = seen["addr"]
    assert rc == 0 and f"inet {client_slots['pod0']}/" in out
    assert seen["id"][:2] == (0, f"{kube_objects.UID}\n{kube_objects.UID}\n")  # runAsUser, runAsGroup
    assert seen["rc3"] == (3, "out\n", "err\n")
    rc, out, err = seen["iperf3"]
    assert rc == 0, err
    assert json.loads(out)["end"]["sum_received"]["bits_per_second"] > 0
    assert any(name.startswith(f"{kube_objects.SERVICE}.{PORT}.") for name in seen["services"])
    rc, out, err = seen["via_vip"]
    assert rc == 0, err
    assert json.loads(out)["end"]["sum_received"]["bits_per_second"] > 0
    assert seen["translated"] > 0, "the Service's connections did not go through the socket LB"
    assert seen["sleeping"] and not seen["slept"]
    assert not seen["stopped"] and seen["client_left"]

    # close(): no process, no folder, no Service of this runtime left on any node.
    for name in runtime.nodes:
        assert not marked(name, runtime.owner)
        assert node(name).run(f"test -e {kube_lab.STATE}/{runtime.owner}").rc != 0
        assert kube_objects.SERVICE not in node(name).run("ls /var/lib/netlab/services").stdout


def a_crashed_runtime_is_cleaned_up() -> None:
    """A runtime whose process is gone (its owner id names a pid that does not exist) left a pod running; the next
    runtime removes it before it starts anything."""
    _, pods = bench_objects()
    crashed = LabRuntime(owner="999999999-deadbeef")

    async def crash() -> None:
        await crashed.start(pods["server-cross"])
        # The twin's process dies, and the podman exec it waited on with it: the pod's process runs on.
        for run in crashed._pods.values():
            os.killpg(run.proc.pid, signal.SIGKILL)
            await run.proc.wait()

    asyncio.run(crash())
    assert marked(SERVER, crashed.owner)
    LabRuntime()  # its constructor removes what dead owners left
    assert not marked(SERVER, crashed.owner)
    assert node(SERVER).run(f"test -e {kube_lab.STATE}/{crashed.owner}").rc != 0


def canal_nodes_and_a_service_through_kube_proxy() -> None:
    """On Canal: the DaemonSet and flannel's Node annotations read as the nodes run them, and a Service through
    kube-proxy's chains (their labelled rule counts the connection), gone from iptables at close."""
    runtime = LabRuntime()
    objects = runtime.cluster_objects()
    cni = kube_read.identify_cni({"resources": [o for o in objects if o["kind"] == "DaemonSet"]})
    assert (cni["cni"], cni["daemonset"]) == ("canal", "rke2-canal")
    assert not [o for o in objects if o["kind"] == "Pod"]
    nodes = {"resources": [o for o in objects if o["kind"] == "Node"]}
    datapath = kube_read.cluster_datapath(cni, [CLIENT, SERVER], nodes)
    # The DaemonSet is the twin's own: the datapath line says no CNI agent answered.
    assert datapath["summary"] == ("canal: flannel vxlan (calico-node v3.30.3-build20250909, "
                                   "kube-flannel v0.27.3-build20250901), as the Kubernetes twin's model answers, "
                                   "not a CNI agent")
    for name in (CLIENT, SERVER):
        flannel, fact = datapath["nodes"][name], runtime.nodes[name].fact
        assert flannel["vtep_mac"] == node(name).check_output("cat /sys/class/net/flannel.1/address").strip()
        assert (flannel["public_ip"], flannel["pod_cidr"]) == (fact["ip"], fact["pod_cidr"])

    service, pods = bench_objects()
    rule = f"netlab:service.{kube_objects.SERVICE}"

    async def scenario() -> dict:
        seen = {c: await runtime.start(pods[c]) for c in ("client", "server-cross")}
        vip = str(ipaddress.ip_network(runtime.service_cidr())[commands.SERVICE_HOST])
        service["spec"]["clusterIP"] = vip
        await runtime.service_sync(service, [seen["server-cross"]["podIP"]])
        await runtime.service_sync(service, [seen["server-cross"]["podIP"]])  # idempotent
        seen["rules"] = node(CLIENT).check_output("iptables-save -t nat").count(rule)
        before = json.loads(node(CLIENT).check_output(f"{proof.DATAPATH} counters"))
        await asyncio.sleep(0.3)
        seen["via_vip"] = await run(runtime, pods["client"], ["iperf3", "-c", vip, "-p", str(PORT), "-t", "1", "-J"])
        after = json.loads(node(CLIENT).check_output(f"{proof.DATAPATH} counters"))
        seen["through_chain"] = after[f"iptables.service.{kube_objects.SERVICE}"] - before[
            f"iptables.service.{kube_objects.SERVICE}"]
        await runtime.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["client"]["podIP"] == slots(CLIENT)["pod0"]
    assert seen["rules"] == 2  # the Service's port, TCP and UDP: one KUBE-SERVICES jump each
    rc, out, err = seen["via_vip"]
    assert rc == 0, err
    assert json.loads(out)["end"]["sum_received"]["bits_per_second"] > 0
    assert seen["through_chain"] > 0
    for name in runtime.nodes:
        assert rule not in node(name).check_output("iptables-save -t nat")
        assert not marked(name, runtime.owner)
