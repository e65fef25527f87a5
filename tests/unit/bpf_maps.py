"""BPF maps as bpftool, not our code, creates, writes and reads them: the other side of the socket LB codec's
tests (test_service_scale, test_svcmap). bpffs() in conftest.py mounts a private bpffs with the maps."""

import json
import subprocess
from pathlib import Path


def create(pins: Path, name: str, key: int, value: int) -> None:
    """A hash map pinned as pins/name with the given key and value sizes."""
    subprocess.run(["bpftool", "map", "create", str(pins / name), "type", "hash", "key", str(key),
                    "value", str(value), "entries", "64", "name", name[:15]], check=True)


def dump(path: Path) -> dict[bytes, bytes]:
    """A pinned map's entries, key to value."""
    entries = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)],
                                        capture_output=True, text=True, check=True).stdout)
    return {bytes(int(b, 16) for b in e["key"]): bytes(int(b, 16) for b in e["value"]) for e in entries}


def update(path: Path, key: bytes, value: bytes) -> None:
    subprocess.run(["bpftool", "map", "update", "pinned", str(path), "key", "hex", *(f"{b:02x}" for b in key),
                    "value", "hex", *(f"{b:02x}" for b in value)], check=True)
