"""One run per lab: the lab's lock, on the controller (a file) or in the cluster (a coordination.k8s.io/v1 Lease).

A run that changes the lab (provision, cluster, bench, scale, teardown) takes the lock before it changes
anything. The holder is named by its host and its ansible-playbook process (lookup ``bench_controller``),
with the command it runs and since when, so a refused run says whom it waits for. A holder is gone when,
on this host, its pid no longer runs ansible-playbook (a run killed or failed before its release); a Lease
of another host is gone when its renewTime + leaseDurationSeconds has passed. A gone holder's lock is taken
over, and the caller says so.

The file lock: created with O_EXCL (one creator wins); taken over by writing a temporary file, renaming it
over the lock (atomic on one file system) and reading it back a moment later to confirm (of two take-overs
at once, the one whose file stays wins; the other reads the winner and is refused). No Ansible imports but the lookup's
process helpers.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.netlab.lab.plugins.lookup.bench_controller import is_playbook, playbook_pid

# A lab's key becomes a file name and a Lease's name: letters, digits, '.', '_' and '-'.
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
# A lock file found empty or half written is read again for this long (its creator is writing it).
SETTLE_SECONDS = 1.0
# A take-over reads the lock back this long after its rename: runs that judged the same gone holder at the
# same moment have all renamed by then, and only the last one's file is read by all of them.
CONFIRM_SECONDS = 0.2
# The Lease's annotations: what holderIdentity (host/pid) cannot carry.
COMMAND = "netlab.io/command"
RUN_ID = "netlab.io/run-id"

Holder = dict[str, Any]


class LockError(ValueError):
    """Bad input: the lock cannot be taken as asked (nothing was changed)."""


def lock_dir() -> Path:
    """Where the controller's locks live: $NETLAB_LOCK_DIR, else $XDG_STATE_HOME/netlab/locks
    (~/.local/state/netlab/locks): per user, kept across reboots like the lab's podman state."""
    if os.environ.get("NETLAB_LOCK_DIR"):
        return Path(os.environ["NETLAB_LOCK_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "netlab" / "locks"


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise LockError(f"the lab's lock key must be letters, digits, '.', '_' or '-' (got {key!r})")
    return key


def iso_now(now: float | None = None) -> str:
    """RFC 3339 in UTC with microseconds, as metav1.MicroTime marshals (``2006-01-02T15:04:05.000000Z07:00``)."""
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (MicroTime or Time); None if it does not parse."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def command_of(pid: int) -> str:
    """The argv of a process on this host, quoted as a shell would take it; '' when it cannot be read."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return shlex.join(part.decode(errors="replace") for part in argv if part)


def me(run_id: str = "", pid: int | None = None) -> Holder:
    """This run as a holder: host, ansible-playbook pid, its command, since now, and the run id when known."""
    pid = pid or playbook_pid()
    return {"host": socket.gethostname(), "pid": pid, "command": command_of(pid), "since": iso_now(),
            "run_id": run_id or ""}


def same(one: Holder, other: Holder) -> bool:
    return str(one.get("host")) == str(other.get("host")) and str(one.get("pid")) == str(other.get("pid"))


def alive_here(holder: Holder, alive: Callable[[int], bool] = is_playbook) -> bool:
    """Whether a holder may still run: on this host, its pid runs ansible-playbook; another host's is taken
    as alive (its processes cannot be seen from here)."""
    if str(holder.get("host")) != socket.gethostname():
        return True
    pid = str(holder.get("pid", ""))
    return pid.isdigit() and alive(int(pid))


def describe(holder: Holder) -> str:
    """``run <id>, pid <pid> on <host> since <time>: <command>`` (the run id where known)."""
    run = f"run {holder['run_id']}, " if holder.get("run_id") else ""
    command = holder.get("command") or "command unknown"
    return f"{run}pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}: {command}"


# --- the controller's lock file --------------------------------------------------------------------------


# What _read answers for a lock file that is not there (released meanwhile).
MISSING: Holder = {}


def _read(path: Path) -> Holder | None:
    """The holder a lock file names; MISSING when it is gone; None for an empty or unparsable file (read
    again while it may settle: its creator may be writing it)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            found = json.loads(path.read_text())
            if isinstance(found, dict) and "pid" in found and "host" in found:
                return found
        except FileNotFoundError:
            return MISSING
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def acquire_file(path: Path, holder: Holder, alive: Callable[[int], bool] = is_playbook) -> dict[str, Any]:
    """Take the lock file for ``holder``. Returns ``{"state": s, "holder": h}``: s is ``taken`` (created),
    ``held`` (this run holds it already: site.yml's stage playbooks each ask), ``taken_over`` (h is the gone
    holder) or ``refused`` (h is the live holder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(holder, sort_keys=True) + "\n"
    for _ in range(3):  # a lock released between our create and our read: create again
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            return {"state": "taken", "holder": holder}
        found = _read(path)
        if found is MISSING:
            continue
        if found is not None and same(found, holder):
            return {"state": "held", "holder": found}
        if found is not None and alive_here(found, alive):
            return {"state": "refused", "holder": found}
        gone = found or {"host": "?", "pid": "?", "command": "an unreadable lock file", "since": "?"}
        temp = path.with_name(f".{path.name}.{holder['host']}.{holder['pid']}.tmp")
        temp.write_text(text)
        os.replace(temp, path)
        time.sleep(CONFIRM_SECONDS)
        now = _read(path)
        if now is MISSING:
            continue
        if now is not None and same(now, holder):
            return {"state": "taken_over", "holder": gone}
        return {"state": "refused", "holder": now or gone}
    raise LockError(f"the lock {path} was created and removed three times while this run tried to take it")


def release_file(path: Path, holder: Holder) -> bool:
    """Remove the lock file if ``holder`` holds it; whether it did."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(found, dict) or not same(found, holder):
        return False
    path.unlink(missing_ok=True)
    return True


def release_all(directory: Path, holder: Holder) -> list[str]:
    """Remove every lock in ``directory`` that ``holder`` holds (the end of its run); their keys."""
    if not directory.is_dir():
        return []
    return [path.stem for path in sorted(directory.glob("*.lock")) if release_file(path, holder)]


# --- the cluster's Lease ---------------------------------------------------------------------------------


def lease_holder(lease: dict[str, Any]) -> Holder:
    """The holder a Lease names: holderIdentity ``host/pid``, acquireTime, and the annotations."""
    spec = lease.get("spec") or {}
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    host, _, pid = str(spec.get("holderIdentity") or "").rpartition("/")
    return {"host": host or "?", "pid": int(pid) if pid.isdigit() else pid or "?",
            "command": notes.get(COMMAND, ""), "since": spec.get("acquireTime") or "?",
            "run_id": notes.get(RUN_ID, ""), "renew": spec.get("renewTime") or "",
            "seconds": spec.get("leaseDurationSeconds")}


def lease_alive(lease: dict[str, Any], now: float, alive: Callable[[int], bool] = is_playbook) -> bool:
    """Whether a Lease's holder may still run: same host, its pid runs ansible-playbook; another host, its
    renewTime (else acquireTime) + leaseDurationSeconds has not passed. A Lease without a holder is free."""
    holder = lease_holder(lease)
    if holder["host"] == "?":
        return False
    if holder["host"] == socket.gethostname():
        return alive_here(holder, alive)
    renewed = parse_time(holder["renew"] or holder["since"])
    seconds = holder["seconds"]
    if renewed is None or not isinstance(seconds, int):
        return True  # a Lease the project did not write: not ours to judge
    return now < renewed + seconds


def lease_decision(lease: dict[str, Any], holder: Holder, now: float,
                   alive: Callable[[int], bool] = is_playbook) -> str:
    """``held`` (this run's), ``refused`` (a live holder's) or ``take_over`` (a gone holder's)."""
    if same(lease_holder(lease), holder):
        return "held"
    return "refused" if lease_alive(lease, now, alive) else "take_over"


def lease_body(name: str, namespace: str, holder: Holder, seconds: int, labels: dict[str, str],
               gone: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Lease this run writes (coordination.k8s.io/v1 types.go LeaseSpec): holderIdentity ``host/pid``,
    acquireTime and renewTime now (MicroTime), leaseDurationSeconds; the command and run id as annotations.
    Taking over ``gone`` (the Lease as read) it carries gone's resourceVersion, so the replace only succeeds on
    the Lease that was read, and one more leaseTransitions."""
    stamp = iso_now()
    notes = {COMMAND: holder.get("command") or "", RUN_ID: holder.get("run_id") or ""}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels), "annotations": notes}
    spec = {"holderIdentity": f"{holder['host']}/{holder['pid']}", "acquireTime": stamp, "renewTime": stamp,
            "leaseDurationSeconds": int(seconds), "leaseTransitions": 0}
    if gone is not None:
        metadata["resourceVersion"] = gone["metadata"]["resourceVersion"]
        spec["leaseTransitions"] = int((gone.get("spec") or {}).get("leaseTransitions") or 0) + 1
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
