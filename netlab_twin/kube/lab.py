"""LabRuntime: the Kubernetes twin's pods, execs and Services made real on the local lab's podman nodes.

What each Kubernetes mechanism becomes on a node of roles/lab_cni's datapath model:
- a Pod's network namespace (the CNI's ADD) is the first free ``podN`` the model made on the pod's
  ``spec.nodeName`` (/etc/netlab/pods lists them with their IPs); a hostNetwork pod runs in the node's own
  namespace and has the node's address;
- the container's main process (the CRI's StartContainer) is its ``command`` + ``args``, run detached in the
  node as the pod's user (securityContext runAsUser/runAsGroup, default 65534) with every capability dropped,
  ``setpriv`` from util-linux in the node image; its exit code is kept for the kubelet's restart logic;
- exec (the CRI's ExecSync/Exec) runs the argv the same way, streamed as it comes;
- a ClusterIP Service is the model's Service, ``netlab-datapath service-add`` on every node as the local
  transport runs it (plan/commands.py ``local_service``): kube-proxy's iptables chains or Cilium's socket LB.

Every process the runtime starts carries ``NETLAB_KT=<owner>/<pod uid>/<main|exec-N>`` in its environment, and
the runtime's files (pid and exit code per pod, the Services it made) live in ``/run/netlab-kt/<owner>/`` in each
node. ``owner`` is ``<pid>-<uuid>`` of this process, as netlab_twin/twin.py labels its containers: ``close()``
removes what its owner made, and a new runtime first removes what owners whose process is gone left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlab_twin import lanes
from netlab_twin.kube import lab_objects
from netlab_twin.kube.lab_objects import NodeInfo
from netlab_twin.kube.runtime import ExecError, ExecProcess, PodStartError

ROOT = Path(__file__).resolve().parents[2]
STATE = "/run/netlab-kt"
# The model's script, as plugins/plugin_utils/transport/proof.py DATAPATH names it.
DATAPATH = "/usr/local/sbin/netlab-datapath"
SERVICE_CIDR = "198.18.128.0/17"  # roles/lab_cni/defaults lab_cni_service_cidr
NOBODY = 65534
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 65536
# The helper every in-node call runs (sh -c), one verb a call; it says what each does.
NODE_SCRIPT = (Path(__file__).parent / "lab_node.sh").read_text(encoding="utf-8")


# ip netns exec mounts a sysfs of the pod's namespace over /sys, which hides the node's cgroups; a pod reads its
# own CPU there (cpu.POD: upstream, a container's cgroup is mounted in it). The twin's pods are their node's
# container, so the node's cgroups are kept aside on /mnt in a mount namespace of the pod's own (unshare -m:
# nothing leaks to the node) and mounted back over the new sysfs; a mount can be bound only from the caller's
# own namespace, which ip netns exec's is a copy of.
def _in_netns(netns: str) -> list[str]:
    return ["unshare", "-m", "sh", "-c", 'mount --rbind /sys/fs/cgroup /mnt 2>/dev/null; exec "$@"', "sh",
            "ip", "netns", "exec", netns, "sh", "-c", 'mount --rbind /mnt /sys/fs/cgroup 2>/dev/null; exec "$@"',
            "sh"]


@dataclass
class _Pod:
    node: NodeInfo
    netns: str | None  # None: hostNetwork
    ip: str
    argv: list[str]  # the in-node prefix that runs a command as the pod's container
    execs: int = 0
    # The attached podman exec that waits for the main process: running() reads its exit without a poll.
    proc: asyncio.subprocess.Process | None = None


def _killpg(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _uid(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', 'default')}.{meta.get('name', '')}")


class LabExec:
    """One exec's streams. The node's wrapper prints ``mark`` on stdout right before it execs the argv: without
    it the runtime, not the command, failed (podman's own 125/126/127, or the wrapper's missing binary)."""

    def __init__(self, proc: asyncio.subprocess.Process, mark: str, stop: Any) -> None:
        self._proc, self._mark, self._stop = proc, (mark + "\n").encode(), stop
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._started = False
        self._held: list[bytes] = []  # stderr before the mark: the runtime's own message
        self._open = 2
        self._tasks = [asyncio.ensure_future(self._pump(proc.stdout, 1)),
                       asyncio.ensure_future(self._pump(proc.stderr, 2))]

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int) -> None:
        head, foreign = b"", False
        try:
            while stream is not None:
                data = await stream.read(CHUNK)
                if not data:
                    break
                if channel == 1 and not self._started:
                    head += data
                    if foreign or len(head) < len(self._mark):
                        continue
                    if not head.startswith(self._mark):
                        foreign = True  # not the wrapper's output: drained, kept for the error message
                        continue
                    self._started, data = True, head[len(self._mark):]
                    for held in self._held:
                        await self._queue.put((2, held))
                    self._held.clear()
                    if not data:
                        continue
                if channel == 2 and not self._started:
                    self._held.append(data)
                    continue
                await self._queue.put((channel, data))
        finally:
            if head and not self._started:
                self._held.append(head)
            self._open -= 1
            if not self._open:
                await self._queue.put(None)

    async def read(self) -> tuple[int, bytes] | None:
        if self._open == 0 and self._queue.empty():
            return None
        return await self._queue.get()

    async def wait(self) -> int:
        rc = await self._proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self._started:
            detail = b"".join(self._held).decode(errors="replace").strip() or f"podman exec exited {rc}"
            if "executable file not found" in detail:
                # containerd's words for runc's failed execve, which the kubelet passes on as InternalError.
                detail = ("OCI runtime exec failed: exec failed: unable to start container process: "
                          f"{detail}: unknown")
            raise ExecError(detail)
        return rc

    async def kill(self) -> None:
        # Killing podman exec leaves the command running in the node: it is found there by its marker.
        await self._stop()
        _killpg(self._proc)


class LabRuntime:
    """The Runtime of netlab_twin.kube (runtime.py) on the local lab: ``nodes`` are the node containers'
    names (default: the running ones of the podman lab, label ``netlab.lab``), each with its datapath fact."""

    def __init__(self, nodes: Sequence[str] | None = None, owner: str | None = None) -> None:
        conf = os.environ.get("CONTAINERS_CONF") or str(ROOT / "containers.conf")
        self._env = {**os.environ, "CONTAINERS_CONF": conf}
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._dir = f"{STATE}/{self.owner}"
        names = list(nodes) if nodes is not None else self._running_nodes()
        if not names:
            raise ValueError("no local lab node runs (podman ps: no container labelled netlab.lab); "
                             "build the lab first: ansible-playbook site.yml --tags provision,cluster")
        runtime = self._sync("version", "--format", "{{.Client.Version}}").strip()
        self.nodes = {name: self._read_node(name, f"podman://{runtime}") for name in names}
        self._agents = ({f"cilium-{name}": info for name, info in self.nodes.items()}
                        if self.cni == "cilium" else {})
        self._pods: dict[str, _Pod] = {}
        self._services: dict[str, set[tuple[int, str]]] = {}
        for name in names:
            self._remove_leftovers(name)

    # ------------------------------------------------------------------ reading the lab

    def _sync(self, *args: str, timeout: float = 60) -> str:
        proc = lanes.run(["podman", *args], timeout=timeout, env=self._env)
        if proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def _running_nodes(self) -> list[str]:
        out = self._sync("ps", "--filter", "label=netlab.lab", "--format", "{{.Names}}")
        return sorted(name for name in out.split() if name.startswith("netlab-"))

    def _read_node(self, name: str, runtime: str) -> NodeInfo:
        """The node's fact, its pods (/etc/netlab/pods) and its machine, in one exec."""
        out = self._sync("exec", name, "sh", "-c", lab_objects.READ_NODE)
        role = self._sync("inspect", "--format", '{{index .Config.Labels "netlab.role"}}', name).strip()
        return lab_objects.node_info(name, out, role == "server", runtime)

    @property
    def cni(self) -> str:
        return next(iter(self.nodes.values())).cni

    # ------------------------------------------------------------------ the Runtime

    def cluster_objects(self) -> list[dict[str, Any]]:
        return lab_objects.cluster(list(self.nodes.values()))

    def service_cidr(self) -> str:
        return str(next(iter(self.nodes.values())).fact.get("service_cidr") or SERVICE_CIDR)

    async def start(self, pod: dict[str, Any]) -> dict[str, Any]:
        spec, uid = pod.get("spec") or {}, _uid(pod)
        info = self.nodes.get(str(spec.get("nodeName")))
        if info is None:
            raise PodStartError("NodeNotFound", f"node {spec.get('nodeName')!r} is not a node of the lab "
                                f"({', '.join(self.nodes)})")
        container = (spec.get("containers") or [{}])[0]
        command = [str(part) for part in (container.get("command") or []) + (container.get("args") or [])]
        if not container.get("command"):
            # The lab runs the node's own binaries: an image's ENTRYPOINT is not known here.
            raise PodStartError("CreateContainerError", "the twin runs only containers that set command: "
                                "the image's entrypoint is not known on the lab")
        run = self._pods.get(uid)
        if run is None:
            run = self._place(pod, info, container)
        else:  # a restart (restartPolicy): the same sandbox, hence the same namespace and IP
            await self._node(info.name, "stop", uid, f"{self.owner}/{uid}/", "0")
        self._pods[uid] = run
        # Attached, not podman exec -d: the wrapper exits with the main process, so no poll asks the node.
        run.proc = await asyncio.create_subprocess_exec(
            "podman", "exec", info.name, "sh", "-c", NODE_SCRIPT, "kt", "start", self._dir, uid,
            *self._marked(f"{self.owner}/{uid}/main"), *run.argv, *self._user(pod, container), *command,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self._env, start_new_session=True)
        assert run.proc.stdout is not None and run.proc.stderr is not None
        try:
            pid = await asyncio.wait_for(run.proc.stdout.readline(), 30)
        except TimeoutError:
            pid = b""
        if not pid.strip().isdigit():
            _killpg(run.proc)
            err = (await run.proc.stderr.read()).decode(errors="replace").strip()
            raise PodStartError("RunContainerError", f"the lab could not start the container: {err or 'no pid'}")
        image = str(container.get("image", ""))
        # imageID carries a digest upstream; an image pinned by digest is its own ID, another gets one made up.
        image_id = image if "@sha256:" in image else f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
        return {"podIP": run.ip, "hostIP": info.ip, "imageID": image_id}

    def _place(self, pod: dict[str, Any], info: NodeInfo, container: dict[str, Any]) -> _Pod:
        """The pod's sandbox: the node's namespace (hostNetwork) or the first podN no pod of this runtime holds."""
        if (pod.get("spec") or {}).get("hostNetwork"):
            return _Pod(info, None, info.ip, [])
        taken = {run.netns for run in self._pods.values() if run.node is info}
        free = [(netns, ip) for netns, ip in info.slots if netns not in taken]
        if not free:
            raise PodStartError("Unschedulable", f"no free pod network namespace on {info.name}: the lab model "
                                f"has {len(info.slots)} (lab_cni_pods_per_node), all taken")
        netns, ip = free[0]
        return _Pod(info, netns, ip, _in_netns(netns))

    def _user(self, pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
        """``env -i`` (the container's environment only) then setpriv: the pod's user and group (container
        securityContext over the pod's; 65534 when neither says), no supplementary groups, no capabilities
        (the benchmark's pods drop ALL). Marked so that the runtime finds the process and its children."""
        pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
        ctx = {**pod_ctx, **(container.get("securityContext") or {})}
        user, group = ctx.get("runAsUser", NOBODY), ctx.get("runAsGroup", NOBODY)
        env = [f"{item['name']}={item.get('value', '')}" for item in container.get("env") or [] if "name" in item]
        workdir = ["-C", str(container["workingDir"])] if container.get("workingDir") else []
        return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "env", *workdir, f"HOSTNAME={(pod.get('metadata') or {}).get('name', '')}",
                *env]

    async def running(self, pod: dict[str, Any]) -> int | None:
        run = self._pods.get(_uid(pod))
        if run is None:
            return None
        if run.proc is None or run.proc.returncode is None:
            return None
        if run.proc.returncode in (125, 126, 127):
            # podman's own codes, or the command's: the wrapper's record tells them apart.
            _, out, _ = await self._node(run.node.name, "rc", _uid(pod))
            return int(out) if out.strip().isdigit() else run.proc.returncode
        return run.proc.returncode

    async def stop(self, pod: dict[str, Any]) -> None:
        uid = _uid(pod)
        run = self._pods.get(uid)
        if run is None:
            return
        grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        # SIGTERM, then SIGKILL after the grace period (the kubelet's KillContainer), at most 5 s here.
        await self._node(run.node.name, "stop", uid, f"{self.owner}/{uid}/", str(min(grace, 5) * 10))
        await self._reap(run)
        self._pods.pop(uid, None)

    async def _reap(self, run: _Pod) -> None:
        """The main process's podman exec, gone with it (or killed: the process in the node is killed already)."""
        if run.proc is not None:
            try:
                await asyncio.wait_for(run.proc.wait(), 5)
            except TimeoutError:
                _killpg(run.proc)
                await run.proc.wait()

    async def exec(self, pod: dict[str, Any], container: str, argv: list[str]) -> ExecProcess:
        """Run argv in the pod's container, streaming its output.

        The rule for exit codes: argv always runs through the runtime's own wrapper, which looks argv[0] up
        in PATH first and prints a mark before it execs it. No mark means the runtime could not run the command
        (podman's own 125/126/127, the container gone, or argv[0] not found): ExecError, upstream's InternalError
        ``OCI runtime exec failed: ... executable file not found in $PATH``. After the mark every exit code is
        the command's own, 126 and 127 of a shell included: NonZeroExitCode."""
        name = (pod.get("metadata") or {}).get("name", "")
        if name in self._agents and (pod.get("metadata") or {}).get("namespace") == "kube-system":
            return lab_objects.agent_exec(self._agents[name], argv)
        uid = _uid(pod)
        run = self._pods.get(uid)
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if run is None:
            raise ExecError(f"container {container} of pod {name} is not running on the lab")
        if container not in names or not argv:
            raise ExecError(f"container {container!r} is not valid for pod {name}" if argv else "no command")
        run.execs += 1
        marker = f"{self.owner}/{uid}/exec-{run.execs}"
        mark = f"netlab-kt-started {uuid.uuid4().hex}"
        spec_container = next(c for c in pod["spec"]["containers"] if c.get("name") == container)
        proc = await asyncio.create_subprocess_exec(
            "podman", "exec", run.node.name, "sh", "-c", NODE_SCRIPT, "kt", "exec", self._dir, mark, argv[0],
            *self._marked(marker), *run.argv, *self._user(pod, spec_container), *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self._env, start_new_session=True)
        return LabExec(proc, mark, lambda: self._node(run.node.name, "stop", uid, marker, "0"))

    async def service_sync(self, service: dict[str, Any], backends: list[str]) -> None:
        """The Service's every port (targetPort: a number; named ports are not resolved) on every node."""
        name, spec = service["metadata"]["name"], service.get("spec") or {}
        ports = [(int(p["port"]), str(p.get("protocol", "TCP")).lower(), int(p.get("targetPort") or p["port"]))
                 for p in spec.get("ports") or []]
        wanted = {(port, proto) for port, proto, _ in ports}
        stale = self._services.get(name, set()) - wanted
        self._services[name] = wanted

        async def on(node: str) -> None:
            await self._node(node, "record", name)
            if stale or not backends:
                # A port the Service lost, or no ready endpoint left: off first. Without endpoints the VIP then
                # goes nowhere (the model's unreachable route), where kube-proxy would REJECT.
                await self._datapath(node, "service-del", name)
            for port, proto, target in ports if backends else []:
                await self._datapath(node, "service-add", name, str(spec["clusterIP"]), str(port), proto,
                                     *(f"{ip}:{target}" for ip in backends))

        await asyncio.gather(*(on(node) for node in self.nodes))

    async def service_delete(self, service: dict[str, Any]) -> None:
        name = service["metadata"]["name"]
        self._services.pop(name, None)

        async def on(node: str) -> None:
            await self._datapath(node, "service-del", name)
            await self._node(node, "unrecord", name)

        await asyncio.gather(*(on(node) for node in self.nodes))

    async def close(self) -> None:
        """Every process this runtime started, its Services and its folder in every node; the slots are free."""
        await asyncio.gather(*(self._node(node, "clean", self.owner, state=STATE) for node in self.nodes))
        await asyncio.gather(*(self._reap(run) for run in self._pods.values()))
        self._pods.clear()
        self._services.clear()

    # ------------------------------------------------------------------ podman

    def _marked(self, marker: str) -> list[str]:
        return ["env", "-i", f"PATH={PATH}", "HOME=/", f"NETLAB_KT={marker}"]

    async def _podman(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec("podman", *args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    env=self._env, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:
            _killpg(proc)
            raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def _node(self, node: str, verb: str, *args: str, state: str | None = None) -> tuple[int, str, str]:
        """NODE_SCRIPT's verb in the node, in the folder of this runtime's owner (``state``: another)."""
        return await self._podman("exec", node, "sh", "-c", NODE_SCRIPT, "kt", verb, state or self._dir, *args)

    async def _datapath(self, node: str, *args: str) -> None:
        rc, _, err = await self._podman("exec", node, DATAPATH, *args)
        if rc != 0:
            raise RuntimeError(f"{node}: netlab-datapath {' '.join(args)} failed ({rc}): {err.strip()}")

    def _remove_leftovers(self, node: str) -> None:
        """What owners whose process is gone left in the node: a crashed twin's processes, files, Services."""
        owners = self._sync("exec", node, "sh", "-c", NODE_SCRIPT, "kt", "owners", STATE).split()
        for owner in owners:
            pid = owner.split("-")[0]
            if owner != self.owner and not lanes.alive(int(pid) if pid.isdigit() else 0):
                self._sync("exec", node, "sh", "-c", NODE_SCRIPT, "kt", "clean", STATE, owner)
