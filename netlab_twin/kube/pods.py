"""What the controllers and the kubelet do to the twin's objects: pod admission and defaults, the pod's
life on the Runtime (Pending -> Running/Ready, CrashLoopBackOff, waiting reasons, Failed), graceful pod and
namespace deletion, the ServiceAccount ``default`` of each namespace, Service clusterIPs and backends.

Upstream: defaults ``pkg/apis/core/v1/defaults.go`` (SetDefaults_Pod, SetDefaults_PodSpec, SetDefaults_Container,
``defaultHostNetworkPorts``, SetDefaults_Service); ServiceAccount admission
``plugin/pkg/admission/serviceaccount/admission.go`` (10 attempts for ``default``, then Forbidden); phases,
conditions and container states https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/; waiting
reasons ErrImagePull/ImagePullBackOff (kubelet ``pkg/kubelet/images/types.go``), CreateContainerConfigError
(``pkg/kubelet/kuberuntime`` ErrCreateContainerConfig), CrashLoopBackOff (``kuberuntime`` back-off); the
kubelet's NodePorts admission (``pkg/kubelet/lifecycle/predicate.go``); namespace deletion (namespace
controller ``pkg/controller/namespace/deletion``: Terminating, contents removed, then the Namespace).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from netlab_twin.kube import discovery
from netlab_twin.kube.api import Objects
from netlab_twin.kube.runtime import PodStartError
from netlab_twin.kube.services import backends, free_cluster_ip, service_defaults
from netlab_twin.kube.store import Obj, forbidden, merge, now

if TYPE_CHECKING:
    from netlab_twin.kube import KubeTwin
    from netlab_twin.kube.discovery import Resource
    from netlab_twin.kube.faults import Fault

R = discovery.RESOURCES
PODS, NAMESPACES, SERVICES, ACCOUNTS = R[("", "pods")], R[("", "namespaces")], R[("", "services")], \
    R[("", "serviceaccounts")]
SA_DELAY = 0.3  # the token controller's ServiceAccount default appears this long after its Namespace
SA_ATTEMPTS, SA_INTERVAL = 10, 0.1  # ServiceAccount admission's retries for "default"
WATCH_INTERVAL = 1.0  # how often a running pod's main process is checked
STALE_NS = "netlab-bench-stale-run"

# The scheduler's NodePorts plugin's ErrReason, which the kubelet's admission quotes.
NODE_PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"


def pod_defaults(pod: Obj) -> Obj:
    """The defaults the API server fills in on create (defaults.go and the ServiceAccount admission)."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])  # the deprecated alias, kept in step
    spec.setdefault("enableServiceLinks", True)
    for container in spec.get("containers", []):
        image = container.get("image", "")
        latest = "@" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
            if spec.get("hostNetwork"):  # defaultHostNetworkPorts
                port.setdefault("hostPort", port.get("containerPort"))
    return pod


def qos_class(pod: Obj) -> str:
    """status.qosClass (``pkg/apis/core/helper/qos``), enough for requests/limits of cpu and memory."""
    resources = [c.get("resources", {}) for c in pod["spec"].get("containers", [])]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and r.get("requests", r["limits"]) == r["limits"] and {"cpu", "memory"} <= set(r["limits"])
           for r in resources):
        return "Guaranteed"
    return "Burstable"


def conditions(ready: bool, started: str, why: str = "") -> list[Obj]:
    """PodScheduled, Initialized, ContainersReady, Ready; the last two False with ContainersNotReady."""
    out = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
           {"type": "Initialized", "status": "True", "lastTransitionTime": started}]
    for kind in ("ContainersReady", "Ready"):
        entry = {"type": kind, "status": "True" if ready else "False", "lastTransitionTime": started}
        if not ready:
            entry.update(reason="ContainersNotReady", message=f"containers with unready status: [{why}]")
        out.append(entry)
    return out


def container_status(container: Obj, state: Obj, image_id: str = "", restarts: int = 0,
                     last: Obj | None = None) -> Obj:
    running = "running" in state
    return {"name": container["name"], "ready": running, "started": running, "restartCount": restarts,
            "image": container.get("image", ""), "imageID": image_id, "state": state, "lastState": last or {}}


def _host_ports(pod: Obj) -> set[tuple[int, str]]:
    return {(p["hostPort"], p.get("protocol", "TCP")) for c in pod["spec"].get("containers", [])
            for p in c.get("ports", []) if p.get("hostPort")}


class Lifecycle(Objects):
    """Objects with the cluster's behaviour on top of the plain registry (api.Objects)."""

    def __init__(self, twin: KubeTwin) -> None:
        super().__init__(twin)
        self.runtime = twin.runtime
        self.pod_tasks: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.backends: dict[tuple[str, str], list[str]] = {}
        twin.faults.on_arm = self._armed

    def _armed(self, fault: Fault) -> None:
        """A stale_ns armed on a running twin is seeded at once (on the twin's loop)."""
        if fault.name == "stale_ns" and self.twin.loop is not None and self.twin.loop.is_running():
            self.twin.loop.call_soon_threadsafe(lambda: self.twin.spawn(self._stale(fault)))

    async def seed(self, objects: list[Obj]) -> None:
        await super().seed(objects)
        for name in self.store.names(NAMESPACES):
            self.store.create(ACCOUNTS, name, {"metadata": {"name": "default"}})
        for fault in self.twin.faults.all("stale_ns"):
            await self._stale(fault)

    async def _stale(self, fault: Fault) -> None:
        """A namespace an interrupted earlier run left (the project's label), its hostNetwork server still
        holding the benchmark's host ports on a node."""
        name, node = fault.args.get("name", STALE_NS), fault.args.get("node")
        nodes = self.store.names(R[("", "nodes")])
        labels = {"app.kubernetes.io/name": "netlab-iperf3", "netlab.io/run": name}
        await self.create(NAMESPACES, None, {"metadata": {"name": name, "labels": labels}})
        self.store.create(ACCOUNTS, name, {"metadata": {"name": "default"}})
        ports = fault.args.get("ports", [5201, 12865])
        pod = {"metadata": {"name": "iperf3-server-host", "labels": {**labels, "app.kubernetes.io/component":
                                                                        "server-host"}},
               "spec": {"nodeName": node or (nodes[1] if len(nodes) > 1 else nodes[0]), "hostNetwork": True,
                        "containers": [{"name": "iperf3", "image": fault.args.get("image", "netlab-bench:stale"),
                                        "ports": [{"containerPort": p} for p in ports]}]}}
        await self.create(PODS, name, pod)

    # Create ---------------------------------------------------------------------------------------------
    async def create(self, res: Resource, namespace: str | None, obj: Obj) -> Obj:
        if res is PODS:
            return await self._create_pod(namespace or "", obj)
        if res is SERVICES:
            return await self._create_service(namespace or "", obj)
        made = await super().create(res, namespace, obj)
        if res is NAMESPACES:
            fault = self.twin.faults.take("sa_late", made["metadata"]["name"])
            self.twin.spawn(self._service_account(made["metadata"]["name"],
                                                  fault.args.get("seconds", 5) if fault else SA_DELAY))
        return made

    async def _service_account(self, namespace: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.store.exists(NAMESPACES, None, namespace) and not self.store.exists(ACCOUNTS, namespace, "default"):
            self.store.create(ACCOUNTS, namespace, {"metadata": {"name": "default"}})

    async def _create_pod(self, namespace: str, obj: Obj) -> Obj:
        name = obj.get("metadata", {}).get("name", "")
        self.admit_namespace(PODS, namespace, name)
        account = obj.get("spec", {}).get("serviceAccountName") or "default"
        for _ in range(SA_ATTEMPTS):
            if self.store.exists(ACCOUNTS, namespace, account):
                break
            await asyncio.sleep(SA_INTERVAL)
        else:
            raise forbidden(PODS, name, f"error looking up service account {namespace}/{account}: "
                                        f'serviceaccount "{account}" not found')
        pod = pod_defaults({k: v for k, v in obj.items() if k != "status"})
        pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod)}
        made = self.store.create(PODS, namespace, pod)
        self.pod_tasks[(namespace, name)] = self.twin.spawn(self._run_pod(namespace, name))
        return made

    # A pod's life -----------------------------------------------------------------------------------------
    def _set_status(self, namespace: str, name: str, status: Obj) -> None:
        if self.store.exists(PODS, namespace, name):
            self.store.update(PODS, namespace, name, lambda pod: pod.update(status=status))

    async def _run_pod(self, namespace: str, name: str) -> None:
        await asyncio.sleep(0.05)  # the kubelet sees the pod a moment after the API stored it
        pod = self.store.get(PODS, namespace, name)
        container = pod["spec"]["containers"][0]
        started, qos = now(), pod["status"]["qosClass"]
        base = {"qosClass": qos, "startTime": started, "hostIP": self.runtime_host(pod)}
        faults = self.twin.faults

        def waiting(reason: str, message: str) -> Obj:
            return {**base, "phase": "Pending", "conditions": conditions(False, started, container["name"]),
                    "containerStatuses": [container_status(container, {"waiting": {"reason": reason,
                                                                                   "message": message}})]}

        conflict = self._port_conflict(pod)
        if conflict or (fault := faults.take("reject", name)):
            reason = "NodePorts" if conflict else fault.args.get("reason", "NodePorts")
            # kubelet rejectPod: "Pod was rejected: " + PredicateFailureError.Error() (SOURCES.md).
            why = f": {NODE_PORTS_REASON}" if reason == "NodePorts" else ""
            message = (fault.args.get("message") if not conflict else None) or f"Pod was rejected: Predicate " \
                f"{reason} failed{why}"
            self._set_status(namespace, name, {"phase": "Failed", "reason": reason, "message": message,
                                               "qosClass": qos, "startTime": started})
            return
        if fault := faults.take("image_pull", name):
            image = container.get("image", "")
            self._set_status(namespace, name, waiting("ErrImagePull", fault.args.get("message") or (
                f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": not found')))
            await asyncio.sleep(fault.args.get("seconds", 2))
            self._set_status(namespace, name, waiting("ImagePullBackOff", f'Back-off pulling image "{image}"'))
            return
        if fault := faults.take("config_error", name):
            self._set_status(namespace, name, waiting("CreateContainerConfigError", fault.args.get(
                "message", 'secret "netlab-missing" not found')))
            return
        crash = faults.take("crash", name)
        try:
            addresses = {"podIP": "", "hostIP": base["hostIP"], "imageID": ""} if crash else \
                await self.runtime.start(pod)
        except PodStartError as err:
            if err.phase == "Failed":
                self._set_status(namespace, name, {"phase": "Failed", "reason": err.reason, "message": err.message,
                                                   "qosClass": qos, "startTime": started})
            else:
                self._set_status(namespace, name, waiting(err.reason, err.message))
            return
        if crash:
            await self._crashed(namespace, name, container, started, crash.args.get("exit_code", 1), base)
            return
        ips = {"hostIP": addresses["hostIP"], "podIP": addresses["podIP"], "podIPs": [{"ip": addresses["podIP"]}]}
        self._set_status(namespace, name, {
            **base, **ips, "phase": "Running", "conditions": conditions(True, started),
            "containerStatuses": [container_status(container, {"running": {"startedAt": started}},
                                                   addresses["imageID"])]})
        await self.sync_services(namespace)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            current = self.store.get(PODS, namespace, name) if self.store.exists(PODS, namespace, name) else None
            if current is None or current["metadata"].get("deletionTimestamp"):
                return
            rc = await self.runtime.running(current)
            if rc is not None:
                await self._crashed(namespace, name, container, started, rc, {**base, **ips})
                return

    async def _crashed(self, namespace: str, name: str, container: Obj, started: str, rc: int, base: Obj) -> None:
        """The main process exited under restartPolicy Always: CrashLoopBackOff, the exit in lastState."""
        pod = self.store.get(PODS, namespace, name)
        terminated = {"terminated": {"exitCode": rc, "reason": "Completed" if rc == 0 else "Error",
                                     "startedAt": started, "finishedAt": now()}}
        back_off = (f"back-off 10s restarting failed container={container['name']} pod={name}_{namespace}"
                    f"({pod['metadata']['uid']})")
        status = container_status(container, {"waiting": {"reason": "CrashLoopBackOff", "message": back_off}},
                                  restarts=1, last=terminated)
        self._set_status(namespace, name, {**base, "phase": "Running", "conditions": conditions(
            False, started, container["name"]), "containerStatuses": [status]})
        await self.sync_services(namespace)

    def runtime_host(self, pod: Obj) -> str:
        node = pod["spec"].get("nodeName", "")
        if not self.store.exists(R[("", "nodes")], None, node):
            return ""
        found = self.store.get(R[("", "nodes")], None, node)["status"].get("addresses", [])
        return next((a["address"] for a in found if a["type"] == "InternalIP"), "")

    def _port_conflict(self, pod: Obj) -> bool:
        """The kubelet's NodePorts admission: another active pod on the node holds one of its host ports."""
        wanted, node = _host_ports(pod), pod["spec"].get("nodeName")
        if not wanted:
            return False
        for other in self.store.list(PODS)["items"]:
            if other["metadata"]["uid"] == pod["metadata"]["uid"] or other["spec"].get("nodeName") != node:
                continue
            if other.get("status", {}).get("phase") in ("Failed", "Succeeded") or "startTime" not in other.get(
                    "status", {}):
                continue
            if wanted & _host_ports(other):
                return True
        return False

    async def patch(self, res: Resource, namespace: str | None, name: str, patch: Obj) -> Obj:
        """Merge, then default again, as the API server decodes (and defaults) a patched object: a patch that
        repeats the created definition then changes nothing."""
        if res is not PODS and res is not SERVICES:
            return await super().patch(res, namespace, name, patch)
        merged = merge(self.store.get(res, namespace, name), patch)
        merged["metadata"]["name"] = name
        return self.store.replace(res, namespace, pod_defaults(merged) if res is PODS else
                                  service_defaults(merged, merged["spec"].get("clusterIP", "")))

    # Services --------------------------------------------------------------------------------------------
    async def _create_service(self, namespace: str, obj: Obj) -> Obj:
        self.admit_namespace(SERVICES, namespace, obj.get("metadata", {}).get("name", ""))
        svc = {k: v for k, v in obj.items() if k != "status"}
        wanted = svc.get("spec", {}).get("clusterIP")
        svc = service_defaults(svc, wanted or free_cluster_ip(self.store, self.runtime.service_cidr()))
        svc["status"] = {"loadBalancer": {}}
        made = self.store.create(SERVICES, namespace, svc)
        await self.sync_services(namespace)
        return made

    async def sync_services(self, namespace: str) -> None:
        """Give each selecting Service of the namespace its Ready pods' IPs (the EndpointSlice controller)."""
        pods = self.store.list(PODS, namespace)["items"]
        for svc in self.store.list(SERVICES, namespace)["items"]:
            selector = svc["spec"].get("selector")
            if not selector or svc["metadata"].get("deletionTimestamp"):
                continue
            ips = backends(selector, pods)
            key = (namespace, svc["metadata"]["name"])
            if self.backends.get(key) != ips:
                self.backends[key] = ips
                await self.runtime.service_sync({**svc, "metadata": {**svc["metadata"], "namespace": namespace}},
                                                ips)

    # Delete ------------------------------------------------------------------------------------------------
    async def delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        if res is NAMESPACES:
            current = self.store.get(NAMESPACES, None, name)
            if current["metadata"].get("deletionTimestamp"):
                return current

            def terminating(ns: Obj) -> None:
                ns["metadata"].setdefault("deletionTimestamp", now())
                ns["status"]["phase"] = "Terminating"

            marked = self.store.update(NAMESPACES, None, name, terminating)
            self.twin.spawn(self._delete_namespace(name))
            return marked
        if res is PODS:
            current = self.store.get(PODS, namespace, name)
            if current["metadata"].get("deletionTimestamp"):
                return current
            marked = self.store.update(PODS, namespace, name, lambda pod: pod["metadata"].update(
                deletionTimestamp=now(), deletionGracePeriodSeconds=pod["spec"].get("terminationGracePeriodSeconds",
                                                                                    30)))
            self.twin.spawn(self._delete_pod(namespace or "", name))
            return marked
        if res is SERVICES:
            await self.runtime.service_delete(self.store.get(SERVICES, namespace, name))
            self.backends.pop((namespace or "", name), None)
        return await super().delete(res, namespace, name)

    async def _delete_pod(self, namespace: str, name: str) -> None:
        task = self.pod_tasks.pop((namespace, name), None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if self.store.exists(PODS, namespace, name):
            await self.runtime.stop(self.store.get(PODS, namespace, name))
        if self.store.exists(PODS, namespace, name):
            self.store.delete(PODS, namespace, name)
        await self.sync_services(namespace)

    async def _delete_namespace(self, name: str) -> None:
        await asyncio.sleep(0.2)  # the namespace controller's turn
        for pod in self.store.names(PODS, name):
            await self._delete_pod(name, pod)
        for svc in self.store.names(SERVICES, name):
            await self.runtime.service_delete(self.store.get(SERVICES, name, svc))
            self.backends.pop((name, svc), None)
        for group, resource, ns, obj in [k for k in self.store.objects if k[2] == name]:
            res = discovery.resource(group, resource)
            if res is not None and res.namespaced and ns == name:
                self.store.delete(res, ns, obj)
        if self.store.exists(NAMESPACES, None, name):
            self.store.delete(NAMESPACES, None, name)


__all__ = ["Lifecycle", "pod_defaults", "service_defaults"]
