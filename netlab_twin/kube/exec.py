"""``/api/v1/namespaces/<ns>/pods/<name>/exec`` over WebSocket, as the kubelet's streaming server answers it
through the API server.

- Handshake: aiohttp's WebSocketResponse picks the client's first offered subprotocol that the twin speaks
  (apimachinery ``util/httpstream/wsstream/conn.go`` ``handshake`` does the same); kubernetes 37 offers
  ``v5.channel.k8s.io,v4.channel.k8s.io`` and reads the choice back (``stream/ws_client.py`` ``WSClient``).
- Frames: binary ``[channel][payload]``, 1 stdout, 2 stderr, 3 status (wsstream ``conn.go`` ``write``); first
  an empty stdout frame, as ``kubelet/pkg/cri/streaming/remotecommand/websocket.go`` ``createWebSocketStreams``
  writes to say the streams are open; output streamed as it comes, at most 64 KiB a frame.
- End: the status on channel 3 as the kubelet writes it (``remotecommand/exec.go`` ``ServeExec``,
  ``httpstream.go`` ``v4WriteStatusFunc`` = json.Marshal of a metav1.Status without TypeMeta), then close 1000.
  Exit 0: Success; an exit code: NonZeroExitCode with causes[{reason: ExitCode, message: "<rc>"}]; any other
  error (the runtime's ExecError: a missing binary, a gone container): ``apierrors.NewInternalError``.
- The client going away (k8s_exec killed by a task timeout) kills the process (ExecProcess.kill).
Faults: exec_internal, exec_no_status, exec_stall (faults.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from netlab_twin.kube import discovery
from netlab_twin.kube.api import truthy
from netlab_twin.kube.runtime import ExecError, ExecProcess
from netlab_twin.kube.store import Obj, bad_request

if TYPE_CHECKING:
    from netlab_twin.kube import KubeTwin

PODS = discovery.RESOURCES[("", "pods")]
FRAME = 64 * 1024
STDOUT, STDERR, STATUS = 1, 2, 3
SUCCESS: Obj = {"metadata": {}, "status": "Success"}


def nonzero_status(argv: list[str], rc: int) -> Obj:
    """NonZeroExitCode; the message quotes the runtime's CodeExitError (containerd: ``error executing command
    [argv], exit code N``, Go's %v of a []string)."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command [{' '.join(argv)}], "
                       f"exit code {rc}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}


def internal_status(error: str) -> Obj:
    """ServeExec's ``apierrors.NewInternalError(fmt.Errorf("error executing command in container: %v", err))``."""
    text = f"error executing command in container: {error}"
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {text}",
            "reason": "InternalError", "details": {"causes": [{"message": text}]}, "code": 500}


def _check(pod: Obj, container: str, argv: list[str], query: Any) -> None:
    """The API server's and kubelet's refusals, before the upgrade (a non-101 answer: k8s_exec fails cleanly
    with "Failed to execute on pod P due to : ..."). ``pkg/registry/core/pod/strategy.go`` ExecLocation."""
    name = pod["metadata"]["name"]
    if not argv:
        raise bad_request("you must specify at least 1 command")
    if not any(truthy(query.get(s)) for s in ("stdin", "stdout", "stderr")):
        raise bad_request("you must specify at least one of stdin, stdout, stderr")
    if container not in [c["name"] for c in pod["spec"].get("containers", [])]:
        raise bad_request(f"container {container} is not valid for pod {name}")
    phase = pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
    states = {s["name"]: s.get("state", {}) for s in pod.get("status", {}).get("containerStatuses", [])}
    if "running" not in states.get(container, {}):
        raise bad_request(f'unable to upgrade connection: container not found ("{container}")')


class Session:
    """One exec stream: its WebSocket, its process, and whether the client is still there."""

    def __init__(self, twin: KubeTwin, ws: web.WebSocketResponse) -> None:
        self.twin, self.ws = twin, ws
        self.proc: ExecProcess | None = None
        self.gone: asyncio.Future[Any] | None = None

    async def send(self, channel: int, data: bytes) -> None:
        for start in range(0, max(len(data), 1), FRAME):
            await self.ws.send_bytes(bytes([channel]) + data[start:start + FRAME])

    async def _client_gone(self) -> None:
        """Returns once the client closed or dropped the connection (it sends nothing else: stdin=false)."""
        while True:
            msg = await self.ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    async def _or_gone(self, coro: Any) -> Any:
        """The coroutine's result, or raise ConnectionResetError when the client left first."""
        assert self.gone is not None
        task = asyncio.ensure_future(coro)
        await asyncio.wait({task, self.gone}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            raise ConnectionResetError("exec client went away")
        return task.result()

    async def run(self, pod: Obj, container: str, argv: list[str]) -> Obj | None:
        """Stream the exec; returns the status sent (None when none was: a stall, a cut stream, a gone client)."""
        name = pod["metadata"]["name"]
        faults = self.twin.faults
        self.gone = asyncio.ensure_future(self._client_gone())
        try:
            await self.send(STDOUT, b"")
            if faults.take("exec_stall", name):
                await self.gone
                return None
            if fault := faults.take("exec_internal", name):
                return await self.finish(internal_status(fault.args.get("message", "failed to exec in container: "
                                                                        "container is in CONTAINER_EXITED state")))
            cut = faults.take("exec_no_status", name)
            try:
                self.proc = await self.twin.runtime.exec(pod, container, argv)
                while (chunk := await self._or_gone(self.proc.read())) is not None:
                    await self.send(*chunk)
                rc = await self._or_gone(self.proc.wait())
            except ExecError as err:
                return await self.finish(internal_status(str(err)))
            if cut:
                await self.ws.close(code=1000)
                return None
            return await self.finish(SUCCESS if rc == 0 else nonzero_status(argv, rc))
        except (ConnectionResetError, ConnectionError):
            if self.proc is not None:
                await self.proc.kill()
            return None
        finally:
            self.gone.cancel()

    async def finish(self, status: Obj) -> Obj:
        await self.send(STATUS, json.dumps(status, separators=(",", ":")).encode())
        await self.ws.close(code=1000)
        return status

    async def abort(self) -> None:
        """The twin stops: kill the process, close the stream (going away)."""
        if self.proc is not None:
            await self.proc.kill()
        if not self.ws.closed:
            await self.ws.close(code=1001)


async def serve(twin: KubeTwin, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    pod = twin.store.get(PODS, namespace, name)  # 404 Status before any upgrade
    argv = request.query.getall("command", [])
    container = request.query.get("container") or pod["spec"]["containers"][0]["name"]
    _check(pod, container, argv, request.query)
    ws = web.WebSocketResponse(protocols=twin.protocols, compress=False, timeout=5)
    if not ws.can_prepare(request).ok:
        raise bad_request("Upgrade request required")
    await ws.prepare(request)
    session = Session(twin, ws)
    twin.exec_sessions.add(session)
    entry: dict[str, Any] = {"pod": f"{namespace}/{name}", "container": container, "argv": argv,
                             "protocol": ws.ws_protocol, "status": None}
    twin.execs.append(entry)
    try:
        entry["status"] = await session.run(pod, container, argv)
    finally:
        twin.exec_sessions.discard(session)
    return ws
