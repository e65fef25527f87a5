"""Node CPU during each test, from /proc/stat read right before and right after it, on both ends.

A reading is one line: the kernel's boot id, the seconds since boot (/proc/uptime) and the ``cpu``
line of /proc/stat (time of all CPUs in USER_HZ ticks by mode). The client's node is read by the
wrapper the test runs in (``around``, or proof.around on the local transport), on stderr lines that
start with MARKER. The server's node is read by its own reader: on the local transport a small server
started with the run's servers (``reader_command``) that answers each connection with one reading,
asked by the client's wrapper; on Kubernetes an exec of READ in the server pod (/proc/stat is not
namespaced: a pod reads its node's). Two readings with the same boot id come from one kernel (the
local lab's nodes are containers of one machine): that CPU is counted once. Pure functions.
"""

from __future__ import annotations

from typing import Any

MARKER = "netlab-cpu "
# Linux reports /proc/stat in USER_HZ ticks, 100 per second on every architecture it runs on
# (include/asm-generic/param.h; sysconf(_SC_CLK_TCK)).
USER_HZ = 100
# The fields of the cpu line (proc(5)), in order.
FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_READING = ('"$(cat /proc/sys/kernel/random/boot_id) $(cut -d " " -f 1 /proc/uptime) '
            '$(head -n 1 /proc/stat)"')
# One reading on stdout (the Kubernetes transport's exec in the server pod).
READ = ["sh", "-c", f"echo {_READING}"]
# Shell function of the wrappers: one reading of this node on stderr, marked with the end it is.
SAMPLE = f'sample() {{ echo "{MARKER}$1 "{_READING} >&2; }}'
# Asks the server node's reader (local transport) for one reading, marked as the server's.
REMOTE = ('remote() { [ -z "$1" ] || echo "' + MARKER + 'server $(python3 -c "import socket, sys; '
          'host, port = sys.argv[1].rsplit(\':\', 1); '
          'print(socket.create_connection((host, int(port)), 2).makefile().read().strip())" "$1")" >&2; }')
_AROUND = f'{SAMPLE}; sample client; "$@"; rc=$?; sample client; exit $rc'


def around(argv: list[str]) -> list[str]:
    """argv run between two readings of its node's /proc/stat (printed on stderr)."""
    return ["sh", "-c", _AROUND, "netlab-cpu", *argv]


def reader_command(port: int) -> str:
    """The local transport's reader of a server node's /proc/stat: answers each connection on ``port``
    with one reading (a shell word: single-quoted Python without a single quote inside)."""
    code = (
        "import socket\n"
        f"server = socket.create_server((\"\", {port}))\n"
        "while True:\n"
        "    conn = server.accept()[0]\n"
        "    boot = open(\"/proc/sys/kernel/random/boot_id\").read().strip()\n"
        "    up = open(\"/proc/uptime\").read().split()[0]\n"
        "    stat = open(\"/proc/stat\").readline().strip()\n"
        "    conn.sendall(f\"{boot} {up} {stat}\\n\".encode())\n"
        "    conn.close()\n"
    )
    return f"python3 -c '{code}'"


def split_stderr(stderr: str | None) -> tuple[dict[str, list[str]], str]:
    """(readings per end in order, the rest of stderr) of a test run between readings."""
    readings: dict[str, list[str]] = {}
    rest = []
    for line in (stderr or "").splitlines():
        if line.startswith(MARKER):
            end, _, reading = line[len(MARKER):].partition(" ")
            if end in ("client", "server") and parse_reading(reading):
                readings.setdefault(end, []).append(reading)
                continue
        rest.append(line)
    return readings, "\n".join(rest)


def parse_reading(text: str | None) -> dict[str, Any] | None:
    """One reading: ``{boot_id, uptime, ticks: {field: n}}``, or None when it is not one."""
    parts = (text or "").split()
    if len(parts) < 3 + len(FIELDS) or parts[2] != "cpu":
        return None
    try:
        return {"boot_id": parts[0], "uptime": float(parts[1]),
                "ticks": {field: int(value) for field, value in zip(FIELDS, parts[3:], strict=False)}}
    except ValueError:
        return None


def _end(pair: dict[str, str]) -> dict[str, Any] | None:
    before, after = parse_reading(pair.get("before")), parse_reading(pair.get("after"))
    if not before or not after or before["boot_id"] != after["boot_id"]:
        return None
    grown = {field: (after["ticks"][field] - before["ticks"][field]) / USER_HZ for field in FIELDS}
    seconds = {
        "user_s": grown["user"] + grown["nice"],
        "system_s": grown["system"],
        "softirq_s": grown["softirq"],
        # Every CPU-second not idle or waiting for I/O: user, nice, system, irq, softirq, steal.
        "busy_s": sum(grown[f] for f in FIELDS if f not in ("idle", "iowait")),
    }
    return {"boot_id": before["boot_id"], "window_s": round(after["uptime"] - before["uptime"], 2),
            **{key: round(value, 2) for key, value in seconds.items()}}


def usage(cpu: dict[str, Any] | None) -> dict[str, Any] | None:
    """CPU-seconds each end spent during a test, and their total over distinct kernels.

    ``shared_kernel``: both ends were read from one kernel (same boot id): the total counts it once;
    None when the server's end was not read (a test within one node, or a failed reading): the client's
    alone. None without a usable client reading.
    """
    if not cpu or "client" not in cpu:
        return None
    client = _end(cpu["client"])
    if client is None:
        return None
    server = _end(cpu["server"]) if "server" in cpu else None
    shared = None if server is None else server["boot_id"] == client["boot_id"]
    keys = ("user_s", "system_s", "softirq_s", "busy_s")
    total = {key: client[key] + server[key] for key in keys} if shared is False else dict(client)
    return {"shared_kernel": shared, "client": client, "server": server,
            "total": {key: round(total[key], 2) for key in keys}}
