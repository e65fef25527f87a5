"""Failure injection: which fault is armed, for which pod (an fnmatch pattern) or request, how many times.

The twin applies a fault *before* calling the runtime (an ``image_pull`` pod never reaches ``start``), so
every runtime gets them. Armed from a test (``twin.faults.arm("image_pull", pod="iperf3-server-cross")``) or,
for a twin in another process, from NETLAB_KTWIN_FAULTS: a JSON list of ``{"fault": NAME, "pod": PATTERN,
"times": N, ...args}`` (or an object ``{NAME: {args}}``). ``times`` None: sticky; N: consumed after N uses.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from dataclasses import dataclass, field
from typing import Any

# name -> what it does and its arguments (the twin's own behaviour; upstream shapes are named where applied).
NAMES = {
    "image_pull": "pod stays Pending: ErrImagePull for `seconds` (2), then ImagePullBackOff (kubelet messages)",
    "crash": "the container exits `exit_code` (1) after start: CrashLoopBackOff with lastState.terminated",
    "reject": "phase Failed, `reason` (NodePorts) and `message`, as the kubelet's admission rejects a pod",
    "config_error": "container waiting CreateContainerConfigError with `message`",
    "exec_internal": "exec answers an InternalError Status on channel 3 (`message`), the kubelet's non-exit error",
    "exec_no_status": "exec output, then close without a channel-3 status",
    "exec_stall": "exec handshake, then nothing until the client leaves",
    "api_gone": "at the first request whose path contains `path` (''): close the listener and connections; "
                "listen again after `back_after` seconds if given",
    "sa_late": "the ServiceAccount default appears `seconds` after its Namespace (0.3 without the fault)",
    "broken_api_group": "/apis lists `group`/`version` (metrics.k8s.io/v1beta1), whose discovery answers 500, as a "
                        "stale aggregated APIService does",
    "stale_ns": "a namespace `name` of an earlier run (the project's label) with a hostNetwork pod holding its "
                "host ports on `node`, seeded at start (or at once when armed on a running twin)",
}


@dataclass
class Fault:
    name: str
    pod: str = "*"
    times: int | None = None
    args: dict[str, Any] = field(default_factory=dict)
    used: int = 0


class Faults:
    """The armed faults; safe to arm from the test's thread while the twin's loop takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        self.on_arm: Any = None  # the twin's hook for faults that act at once (stale_ns)

    def arm(self, fault_name: str, /, pod: str = "*", times: int | None = None, **args: Any) -> Fault:
        if fault_name not in NAMES:
            raise ValueError(f"unknown fault {fault_name!r}; the twin knows {', '.join(sorted(NAMES))}")
        fault = Fault(fault_name, pod, times, args)
        with self._lock:
            self._armed.append(fault)
        if self.on_arm:
            self.on_arm(fault)
        return fault

    def disarm(self, name: str | None = None) -> None:
        with self._lock:
            self._armed = [f for f in self._armed if name is not None and f.name != name]

    def peek(self, name: str, pod: str = "") -> Fault | None:
        """The first armed fault ``name`` for pod, not consumed."""
        with self._lock:
            return next((f for f in self._armed if f.name == name and fnmatch.fnmatchcase(pod, f.pod)), None)

    def take(self, name: str, pod: str = "", path: str = "") -> Fault | None:
        """The first armed fault ``name`` for this pod (or request path), counted as used once."""
        with self._lock:
            for fault in self._armed:
                if fault.name != name or not fnmatch.fnmatchcase(pod, fault.pod):
                    continue
                if path and fault.args.get("path", "") not in path:
                    continue
                fault.used += 1
                if fault.times is not None and fault.used >= fault.times:
                    self._armed.remove(fault)
                return fault
        return None

    def all(self, name: str) -> list[Fault]:
        with self._lock:
            return [f for f in self._armed if f.name == name]

    def load(self, text: str) -> None:
        """Arm what NETLAB_KTWIN_FAULTS says."""
        doc = json.loads(text)
        entries = [{"fault": k, **(v or {})} for k, v in doc.items()] if isinstance(doc, dict) else doc
        for entry in entries:
            entry = dict(entry)
            name = entry.pop("fault")
            self.arm(name, entry.pop("pod", "*"), entry.pop("times", None), **entry)
