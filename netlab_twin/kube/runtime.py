"""Stand-in for kube-core's runtime.py (the Runtime contract of the Kubernetes twin): only the exceptions and the
ExecProcess protocol that lab.py needs. kube-core's file replaces this one when its branch is merged."""

from __future__ import annotations

from typing import Protocol


class PodStartError(Exception):
    """The runtime cannot start the pod's container: a kubelet waiting reason or a Failed phase."""

    def __init__(self, reason: str, message: str, phase: str = "Pending") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.phase = phase


class ExecError(Exception):
    """exec could not run the command (not a non-zero exit): upstream's InternalError on channel 3."""


class ExecProcess(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...

    async def wait(self) -> int: ...

    async def kill(self) -> None: ...
