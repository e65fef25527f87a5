"""The Kubernetes twin: a small API server that the real kubernetes.core modules reach through the real
``kubernetes`` client, over HTTPS with a bearer token from a generated kubeconfig (issue 24).

``kube_serve(directory, runtime=...)`` runs one for as long as a block runs and yields ``(twin, kubeconfig)``.
The twin serves on 127.0.0.1, on a port of its own (port 0), from an asyncio loop in a daemon thread, as
netlab_twin.lab ``serve`` runs fakepve: a fresh port keeps the client's discovery cache
(``$TMPDIR/k8srcp-<sha256(host-user)>.json``, kubernetes.core ``module_utils/client/discovery.py``) from
being reused across twins. What runs the pods is the runtime (runtime.py: CannedRuntime, or the lab's).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from netlab_twin.kube import api, config, faults, pods
from netlab_twin.kube.runtime import CannedRuntime, Runtime
from netlab_twin.kube.store import Store

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
FAULTS_ENV = "NETLAB_KTWIN_FAULTS"
T = TypeVar("T")


class KubeTwin:
    """One twin: its store, runtime, faults, request log and TLS listener. ``start()`` returns the kubeconfig;
    ``close()`` stops everything it started (listener, loop thread, the runtime's processes).

    ``protocols``: the exec subprotocols offered, the client's first that is here wins (apimachinery
    ``wsstream`` ``handshake``); ``(V4,)`` tests a server without v5."""

    def __init__(self, directory: str | Path, runtime: Runtime | None = None,
                 protocols: tuple[str, ...] = (V5, V4)) -> None:
        self.directory = Path(directory)
        self.runtime: Runtime = runtime if runtime is not None else CannedRuntime()
        self.protocols = tuple(protocols)
        self.store = Store()
        self.faults = faults.Faults()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, raw query) in arrival order
        self.token = ""
        self.port = 0
        self.kubeconfig: Path | None = None
        self.objects: api.Objects = api.Objects(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.exec_sessions: set[Any] = set()  # exec.py's live sessions, killed at close
        self.outages = 0  # times the listener was closed (api_gone, stop_listening)
        self.execs: list[dict[str, Any]] = []  # per exec: pod, container, argv, protocol chosen, status sent

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # Life ---------------------------------------------------------------------------------------------
    def start(self) -> Path:
        """Serve; returns the kubeconfig's path (also ``self.kubeconfig``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        cert, key, self.token = config.credentials(self.directory)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(cert, key)
        if env := os.environ.get(FAULTS_ENV):
            self.faults.load(env)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="kube-twin", daemon=True)
        self._thread.start()
        try:
            self.call(self._start())
        except BaseException:
            self.close()
            raise
        self.kubeconfig = config.kubeconfig(self.directory, self.url, cert, self.token)
        return self.kubeconfig

    async def _start(self) -> None:
        self.objects = pods.Lifecycle(self)
        await self.objects.seed(self.runtime.cluster_objects())
        self._runner = web.AppRunner(make_app(self), shutdown_timeout=2, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        if not self.port:
            server = site._server  # the bound port of port 0
            assert isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the twin's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A background task of the twin (on its loop), cancelled at close."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Stop serving and everything started: exec processes, pod workers, the runtime, the loop thread."""
        if self.loop is None:
            return
        try:
            if self.loop.is_running():
                self.call(self._shutdown(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self._thread:
                self._thread.join(30)
            self.loop.close()
            self.loop = None

    async def _shutdown(self) -> None:
        for session in list(self.exec_sessions):
            await session.abort()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.runtime.close()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

    # The api_gone fault ---------------------------------------------------------------------------------
    async def before_request(self, request: web.Request) -> None:
        """Apply the api_gone fault to a request that matches it: stop listening, drop the connections."""
        fault = self.faults.take("api_gone", path=request.path)
        if fault is None:
            return
        await self.stop_listening(fault.args.get("back_after"))
        raise api.Gone(request.path)

    async def stop_listening(self, back_after: float | None = None) -> None:
        """Close the listener and every open connection, as an API server that went away; listen again on
        the same port after ``back_after`` seconds if given."""
        assert self._runner is not None
        self.outages += 1
        for site in list(self._runner.sites):
            await site.stop()
        server = self._runner.server
        for conn in server.connections if server else []:
            if conn.transport is not None:
                conn.transport.abort()
        if back_after is not None:
            self.spawn(self._back(back_after))

    async def _back(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._listen()

    # Reading it from the tests ---------------------------------------------------------------------------
    def paths(self) -> list[str]:
        """The logged requests as ``METHOD path[?query]``."""
        return [f"{m} {p}" + (f"?{q}" if q else "") for m, p, q in self.requests]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """An object as the store holds it (None if absent), read on the twin's loop."""
        from netlab_twin.kube import discovery

        res = discovery.by_kind(kind)
        assert res is not None, kind

        async def read() -> dict[str, Any] | None:
            return self.store.get(res, namespace, name) if self.store.exists(res, namespace, name) else None

        return self.call(read())

    def __enter__(self) -> KubeTwin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_app(twin: KubeTwin) -> web.Application:
    app = api.make_app(twin)
    return app


@contextmanager
def kube_serve(directory: str | Path, runtime: Runtime | None = None, protocols: tuple[str, ...] = (V5, V4),
               faults_json: str | None = None) -> Iterator[tuple[KubeTwin, Path]]:
    """A KubeTwin serving for as long as the block runs: ``(twin, kubeconfig path)``. Faults may be armed on
    ``twin.faults`` inside the block, or given here as NETLAB_KTWIN_FAULTS JSON (``faults_json``)."""
    twin = KubeTwin(directory, runtime=runtime, protocols=protocols)
    if faults_json:
        twin.faults.load(faults_json)
    try:
        yield twin, twin.start()
    finally:
        twin.close()


def dumps_faults(*armed: dict[str, Any]) -> str:
    """NETLAB_KTWIN_FAULTS for a twin in another process: ``dumps_faults({"fault": "image_pull", "pod": "x"})``."""
    return json.dumps(list(armed))


__all__ = ["FAULTS_ENV", "V4", "V5", "KubeTwin", "dumps_faults", "kube_serve"]
