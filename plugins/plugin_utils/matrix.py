"""Expand the benchmark matrix into concrete iperf3 tests.

The matrix is data (one entry per scenario); this module decides, for every
provider, which endpoints a scenario uses and which iperf3 command lines run.
Transports only wrap the command lines to run them in the right place.
Pure functions, no Ansible imports, so they are unit tested directly.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils import proof

PLACEMENTS = ("host", "same-node", "cross-node", "service")
PROTOCOLS = ("tcp", "udp")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Seconds between two tries of a test whose server is busy or not listening yet.
RETRY_DELAY = 2
# iperf3's own words (src/iperf_error.c): the server still serves the previous client, or nothing
# listens yet (a server pod just started, the run's server not yet up).
RETRYABLE = ("the server is busy running a test", "Connection refused")
# A pair of nodes (VMs) on one hypervisor: what "cross-node" measures there is no wire.
SAME_HOST = "cross-node, same host: the traffic never reaches a NIC"


ENTRY_KEYS = ("name", "placement", "protocol", "streams", "reverse", "bitrate", "length")
# iperf3's --bitrate: a number with an optional K, M, G or T (bits per second).
BITRATE = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGTkmgt]?$")
# --length of a UDP datagram: at most an IPv4 UDP payload.
MAX_LENGTH = 65507


class MatrixError(ValueError):
    """The matrix or the lab cannot produce a valid plan."""


def _positive_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_bitrate(value: Any) -> bool:
    """Whether iperf3 reads value as a bitrate above zero (1G, 500M, 2.5G, 1000000)."""
    text = str(value)
    return bool(BITRATE.match(text)) and float(text.rstrip("KMGTkmgt")) > 0


def normalize_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Return one matrix entry with defaults filled in, or raise MatrixError."""
    if not isinstance(entry, dict):
        raise MatrixError(f"a matrix entry must be a mapping, got {entry!r}")
    name = str(entry.get("name", ""))
    if not _NAME.match(name):
        raise MatrixError(f"matrix entry name {name!r} must match {_NAME.pattern}")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise MatrixError(f"{name}: unknown key(s) {', '.join(map(str, unknown))}; an entry takes "
                          f"{', '.join(ENTRY_KEYS)}")
    placement = entry.get("placement")
    if placement not in PLACEMENTS:
        raise MatrixError(f"{name}: placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
    protocol = entry.get("protocol", "tcp")
    if protocol not in PROTOCOLS:
        raise MatrixError(f"{name}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    streams = entry.get("streams", 1)
    if not _positive_int(streams, 1, 128):
        raise MatrixError(f"{name}: streams must be an integer from 1 to 128, got {streams!r}")
    if not isinstance(entry.get("reverse", False), bool):
        raise MatrixError(f"{name}: reverse must be true or false, got {entry['reverse']!r}")
    if entry.get("bitrate") is not None and not check_bitrate(entry["bitrate"]):
        raise MatrixError(f"{name}: bitrate {entry['bitrate']!r} is not an iperf3 bitrate such as 1G or 500M")
    if entry.get("length") is not None and not _positive_int(entry["length"], 1, MAX_LENGTH):
        raise MatrixError(f"{name}: length must be an integer from 1 to {MAX_LENGTH}, got {entry['length']!r}")
    if protocol == "tcp" and (entry.get("bitrate") is not None or entry.get("length") is not None):
        raise MatrixError(f"{name}: bitrate and length apply to UDP tests only")
    return {
        "name": name,
        "placement": placement,
        "protocol": protocol,
        "streams": streams,
        "reverse": bool(entry.get("reverse", False)),
        "bitrate": entry.get("bitrate"),
        "length": entry.get("length"),
    }


def normalize_matrix(matrix: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate a whole matrix: non-empty, valid entries, unique names."""
    if not matrix:
        raise MatrixError("the benchmark matrix is empty: define at least one test")
    entries = [normalize_entry(e) for e in matrix]
    names = [e["name"] for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MatrixError(f"duplicate matrix entry names: {', '.join(dupes)}")
    return entries


def endpoints(placement: str, nodes: list[dict[str, Any]]) -> tuple[dict, dict]:
    """Pick (client, server) for a placement.

    ``nodes`` are the two benchmark nodes, each ``{name, ip, pods: [{name, ip}]}``; on
    Kubernetes also ``host_pod`` (the hostNetwork pod to run host tests in) and, on the
    second node, ``service_ip`` (the ClusterIP in front of its server pod). An endpoint's
    ``pod`` is where the command runs: a network namespace on the local lab, a pod on
    Kubernetes, None for the node itself. The client always runs on the first node; a
    third node, if given, holds the same-node pair instead of the first.
    """
    if len(nodes) < 2:
        raise MatrixError("the benchmark needs two nodes")
    first, second = nodes[0], nodes[1]

    def host(node: dict) -> dict:
        return {"host": node["name"], "pod": node.get("host_pod"), "ip": node["ip"]}

    def pod(node: dict, index: int) -> dict:
        pods = node.get("pods") or []
        if len(pods) <= index:
            raise MatrixError(
                f"{placement} needs {index + 1} pod(s) on node {node['name']}, it has {len(pods)}"
            )
        return {"host": node["name"], "pod": pods[index]["name"], "ip": pods[index]["ip"]}

    if placement == "host":
        return host(first), host(second)
    if placement == "same-node":
        same = nodes[2] if len(nodes) > 2 else first
        return pod(same, 0), pod(same, 1)
    if placement == "service":
        if not second.get("service_ip"):
            raise MatrixError(f"placement service needs a Service in front of the server pod on {second['name']}, "
                              "and none was set up")
        return pod(first, 0), {**pod(second, 0), "ip": second["service_ip"]}
    return pod(first, 0), pod(second, 0)


def client_argv(entry: dict[str, Any], server_ip: str, settings: dict[str, Any]) -> list[str]:
    """iperf3 client command line for one test (JSON output on stdout)."""
    argv = [
        "iperf3", "--client", server_ip, "--port", str(settings["port"]), "--json",
        "--time", str(settings["duration"]), "--omit", str(settings["omit"]),
    ]
    if entry["streams"] > 1:
        argv += ["--parallel", str(entry["streams"])]
    if entry["protocol"] == "udp":
        argv += ["--udp", "--bitrate", str(entry["bitrate"] or settings["udp_bitrate"])]
        if entry["length"]:
            argv += ["--length", str(entry["length"])]
    if entry["reverse"]:
        argv.append("--reverse")
    return argv


def server_argv(settings: dict[str, Any], name: str, seconds: int) -> list[str]:
    """Start the run's iperf3 server for one endpoint in the background; return once it listens.

    The server answers the run's tests one after another (a client that finds it busy with the
    previous one tries again). A server left by an interrupted run (its pid file, one per endpoint
    of the node: ``name``) is stopped first, so a resumed run never talks to a stale server, and
    ``timeout`` bounds it by the run's own length (``seconds``), so a run that dies cannot leave a
    listener behind for long.
    """
    port = settings["port"]
    pidfile = f"/run/netlab-iperf3-{name}.pid"
    listening = f"ss -Hltn 'sport = :{port}' | grep -q ."
    script = (
        f"if [ -f {pidfile} ]; then kill $(cat {pidfile}) 2>/dev/null; rm -f {pidfile}; fi; "
        f"for i in $(seq 50); do {listening} || break; sleep 0.1; done; "
        f"setsid timeout {seconds} iperf3 --server --port {port} --pidfile {pidfile} >/dev/null 2>&1 < /dev/null & "
        f"for i in $(seq 100); do {listening} && exit 0; sleep 0.1; done; "
        f"echo 'iperf3 server did not listen on port {port}' >&2; exit 1"
    )
    return ["sh", "-c", script]


def test_timeout(settings: dict[str, Any]) -> int:
    """Seconds after which a test is killed: its own length plus a margin."""
    return int(settings["duration"]) + int(settings["omit"]) + int(settings["timeout_margin"])


def in_netns(argv: list[str], netns: str | None) -> list[str]:
    """Local-lab transport: run argv inside a pod's network namespace."""
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def k8s_exec(argv: list[str], pod: str, transport: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes transport: the arguments of kubernetes.core.k8s_exec that run argv in a pod.

    k8s_exec takes one string and splits it with shlex, so argv is joined with shlex.
    """
    return {"namespace": transport["namespace"], "pod": pod, "container": transport.get("container", "iperf3"),
            "command": shlex.join(argv)}


def bounds(settings: dict[str, Any]) -> dict[str, int]:
    """How one test is bounded and retried.

    ``in_pod_timeout``: coreutils ``timeout`` around iperf3 where it runs, so a killed test's
    iperf3 dies with it; ``task_timeout``: the Ansible task's own bound, a little later;
    ``retries`` x ``delay`` covers the test's own length, the longest a previous client can
    keep a server busy.
    """
    length = int(settings["duration"]) + int(settings["omit"])
    return {"in_pod_timeout": test_timeout(settings), "task_timeout": test_timeout(settings) + 15,
            "retries": max(1, math.ceil(length / RETRY_DELAY)), "delay": RETRY_DELAY}


def retryable(stdout: str | None, stderr: str | None = None) -> bool:
    """Whether a test's output says its server was busy or not listening: try again."""
    text = f"{stdout or ''}\n{stderr or ''}"
    return any(word in text for word in RETRYABLE)


def commands(entry: dict[str, Any], client: dict, server: dict, settings: dict[str, Any],
             transport: dict[str, Any] | None) -> tuple[list[str], dict[str, Any] | None]:
    """(client command, k8s_exec arguments) of one test as the transport runs them.

    Both transports bound the client with ``timeout`` where iperf3 runs. Local lab: inside the
    client pod's namespace on its node, between two reads of the node's datapath counters (the
    test's proof, proof.py). Kubernetes: exec'd in the client pod. On both the servers run for the
    whole run (local: servers(), Kubernetes: the server pods).
    """
    bound = ["timeout", str(test_timeout(settings))]
    argv = client_argv(entry, server["ip"], settings)
    if transport is None:
        return proof.around(in_netns([*bound, *argv], client["pod"])), None
    return [*bound, *argv], k8s_exec([*bound, *argv], client["pod"], transport)


def servers(plan: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Local lab: the iperf3 servers a plan's tests talk to, each once: ``{host, pod, argv}``.

    They are bounded by the whole plan's length (every test to its timeout).
    """
    seconds = len(plan) * test_timeout(settings) + 60
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for test in plan:
        server = test["server"]
        key = (server["host"], server["pod"])
        if key not in found:
            argv = in_netns(server_argv(settings, server["pod"] or "host", seconds), server["pod"])
            found[key] = {"host": server["host"], "pod": server["pod"], "argv": argv}
    return list(found.values())


def segments(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plan cut where its client node changes: ``{host, tests}`` in run order.

    Each segment is run by one call on its client's node (the local transport's action); with the
    usual two benchmark nodes the whole plan is one segment.
    """
    cut: list[dict[str, Any]] = []
    for test in plan:
        if cut and cut[-1]["host"] == test["exec_host"]:
            cut[-1]["tests"].append(test)
        else:
            cut.append({"host": test["exec_host"], "tests": [test]})
    return cut


def placement_note(client: dict, server: dict, hosts: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the two nodes of a test run on one hypervisor (only when both are known)."""
    a, b = client["host"], server["host"]
    if a == b or not hosts or not hosts.get(a) or not hosts.get(b):
        return {"same_host": None, "note": None}
    shared = hosts[a] == hosts[b]
    return {"same_host": shared, "note": SAME_HOST if shared else None}


def build_plan(
    matrix: list[dict[str, Any]], nodes: list[dict[str, Any]], settings: dict[str, Any],
    transport: dict[str, Any] | None = None, hosts: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every test of a run, in run order.

    ``transport`` is None for the local lab, or ``{namespace}`` for Kubernetes (the run's
    namespace; tests are exec'd from the controller). ``hosts`` maps a node to the machine it
    runs on (a Proxmox VM's PVE node), where known. Repeats are interleaved (all scenarios once,
    then again) so that slow drift on the lab spreads over all scenarios instead of biasing one.
    """
    entries = normalize_matrix(matrix)
    for key in ("duration", "omit", "repeats", "port", "timeout_margin"):
        value = settings.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MatrixError(f"setting {key} must be a non-negative integer, got {value!r}")
    if settings["duration"] < 1 or settings["repeats"] < 1:
        raise MatrixError("duration and repeats must be at least 1")

    total = len(entries) * settings["repeats"]
    per_test = settings["duration"] + settings["omit"]
    plan = []
    for repeat in range(1, settings["repeats"] + 1):
        for entry in entries:
            index = len(plan) + 1
            test_id = f"{index:04d}-{entry['name']}-r{repeat}"
            seconds_left = (total - index + 1) * per_test
            client, server = endpoints(entry["placement"], nodes)
            client_cmd, exec_args = commands(entry, client, server, settings, transport)
            plan.append({
                "id": test_id,
                "label": f"{index}/{total} {test_id}, about {seconds_left} s left",
                "index": index,
                "total": total,
                "scenario": entry["name"],
                "placement": entry["placement"],
                "protocol": entry["protocol"],
                "streams": entry["streams"],
                "reverse": entry["reverse"],
                "repeat": repeat,
                "client": client,
                "server": server,
                "client_cmd": client_cmd,
                "exec": exec_args,
                "exec_host": None if transport else client["host"],
                "bounds": bounds(settings),
                **placement_note(client, server, hosts),
                "seconds_left": seconds_left,
            })
    return plan

