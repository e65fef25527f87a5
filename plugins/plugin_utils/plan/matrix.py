"""Validate the benchmark matrix and expand it into the tests of a run: iperf3 streams and netperf
request/response.

The matrix is data (one entry per scenario); this module checks it and decides, for every provider,
which endpoints a scenario uses, in which order the tests run and how each is bounded and retried.
The command lines are commands.py's: the planner is handed the transport's wrapper, which turns each
test into what runs where. Pure functions, no Ansible imports, so they are unit tested directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import repeats

PLACEMENTS = ("host", "same-node", "cross-node", "service")
# tcp and udp: iperf3 streams; the others name netperf's request/response tests (one transaction in
# flight, a new connection per transaction for tcp_crr), as `cilium connectivity perf` runs them.
NETPERF_TESTS = {"tcp_rr": "TCP_RR", "udp_rr": "UDP_RR", "tcp_crr": "TCP_CRR"}
PROTOCOLS = ("tcp", "udp", *NETPERF_TESTS)
# netserver's control port when the settings name none (runs planned before netperf tests existed);
# the data connection is pinned to the next port (-P), so a Service can forward it.
NETPERF_PORT = 12865
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Seconds between two tries of a test whose server is busy or not listening yet.
RETRY_DELAY = 2
# iperf3's own words (src/iperf_error.c): the server still serves the previous client, or nothing
# listens yet (a server pod just started, the run's server not yet up).
RETRYABLE = ("the server is busy running a test", "Connection refused",
             # netperf (src/netlib.c) when no netserver answers on the control port yet.
             "are you sure there is a netserver listening")
# A pair of nodes (VMs) on one hypervisor: what "cross-node" measures there is no wire.
SAME_HOST = "cross-node, same host: the traffic never reaches a NIC"


ENTRY_KEYS = ("name", "placement", "protocol", "streams", "reverse", "bitrate", "length", "size")
# iperf3's --bitrate: a number with an optional K, M, G or T (bits per second).
BITRATE = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGTkmgt]?$")
# --length of a UDP datagram: at most an IPv4 UDP payload.
MAX_LENGTH = 65507


class MatrixError(ValueError):
    """The matrix or the lab cannot produce a valid plan."""


def _positive_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def tool(protocol: str) -> str:
    """The program a test of this protocol runs: netperf for the request/response tests, else iperf3."""
    return "netperf" if protocol in NETPERF_TESTS else "iperf3"


def netperf_ports(settings: dict[str, Any]) -> tuple[int, int, int]:
    """(netserver's control port, the data port of the tests straight to a pod or host, the data port of
    the tests through a Service) of a run's settings: the port, the next one and the third after it.

    Two data ports because netperf's TCP_CRR binds its client ports itself, one after another from 5000,
    in every test alike: a Service test and a direct test to the same server pod would reuse each other's
    connections (client port, server pod address and port) within conntrack's TIME_WAIT (120 s). The
    Service's DNAT entry and the direct one then share their reply tuple, the kernel cannot insert the
    newer (insert_failed) and drops its SYN, and the test stalls for seconds (measured on the local lab's
    kube-proxy Services: a Service test after a direct one made 2 connections/s instead of 4,900).
    """
    port = int(settings.get("netperf_port") or NETPERF_PORT)
    return port, port + 1, port + 3


def cpu_port(settings: dict[str, Any]) -> int:
    """Local transport: the port of each server node's /proc/stat reader (cpu.py), between netperf's."""
    return netperf_ports(settings)[0] + 2


def last_port(settings: dict[str, Any]) -> int:
    """The highest of the ports after bench_netperf_port that the run takes."""
    return netperf_ports(settings)[2]


def check_bitrate(value: Any) -> bool:
    """Whether iperf3 reads value as a bitrate above zero (1G, 500M, 2.5G, 1000000)."""
    text = str(value)
    return bool(BITRATE.match(text)) and float(text.rstrip("KMGTkmgt")) > 0


def offered_gbps(entry: dict[str, Any], settings: dict[str, Any]) -> float | None:
    """The rate a UDP test offers in Gbit/s, as client_argv passes it: the entry's bitrate, else the run's
    udp_bitrate. iperf3 applies --bitrate to each stream and counts K, M, G, T in powers of 1000.
    None for other tests, or when no valid bitrate is known."""
    entry = normalize_entry(entry)
    rate = entry["bitrate"] or settings.get("udp_bitrate")
    if entry["protocol"] != "udp" or rate is None or not check_bitrate(rate):
        return None
    text = str(rate)
    scale = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}.get(text[-1].lower(), 1.0)
    return float(text.rstrip("KMGTkmgt")) * scale * entry["streams"] / 1e9


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
    size = _netperf_size(name, protocol, entry)
    return {
        "name": name,
        "placement": placement,
        "protocol": protocol,
        "streams": streams,
        "reverse": bool(entry.get("reverse", False)),
        "bitrate": entry.get("bitrate"),
        "length": entry.get("length"),
        "size": size,
    }


def _netperf_size(name: str, protocol: str, entry: dict[str, Any]) -> int | None:
    """The request and response size of a netperf test (default 1 byte); None for an iperf3 test."""
    if protocol not in NETPERF_TESTS:
        if entry.get("size") is not None:
            raise MatrixError(f"{name}: size applies to {', '.join(NETPERF_TESTS)} tests only "
                              "(iperf3 tests take length)")
        return None
    iperf3_only = [key for key in ("bitrate", "length") if entry.get(key) is not None]
    iperf3_only += [key for key, plain in (("streams", 1), ("reverse", False)) if entry.get(key, plain) != plain]
    if iperf3_only:
        raise MatrixError(f"{name}: {', '.join(iperf3_only)} apply to iperf3 tests (tcp, udp); a {protocol} "
                          "test is one netperf with one transaction in flight")
    size = entry.get("size", 1)
    if not _positive_int(size, 1, MAX_LENGTH):
        raise MatrixError(f"{name}: size must be an integer from 1 to {MAX_LENGTH} (bytes of each request and "
                          f"response), got {size!r}")
    return size


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


# The Ansible task's bound of every short exec of the Kubernetes transport (a version, a CPU read) unless
# the run sets one (bench_exec_timeout, whose default this is): room for the API server's and the runtime's
# exec around the command, bounded 5 s earlier in the pod (kube_calls.in_pod_seconds). The exec runs in
# the controller's process: no module process to start (netlab.lab.kube_exec).
EXEC_TASK_TIMEOUT = 20


def test_timeout(settings: dict[str, Any]) -> int:
    """Seconds after which a test is killed: its own length plus a margin."""
    return int(settings["duration"]) + int(settings["omit"]) + int(settings["timeout_margin"])


def bounds(settings: dict[str, Any]) -> dict[str, int]:
    """How one test is bounded and retried.

    ``in_pod_timeout``: coreutils ``timeout`` around iperf3 where it runs, so a killed test's
    iperf3 dies with it; ``task_timeout``: the Ansible task's own bound, a little later;
    ``exec_timeout``: the bound of the short execs around it (Kubernetes: the server's CPU sampler);
    ``retries`` x ``delay`` covers the test's own length, the longest a previous client can
    keep a server busy.
    """
    length = int(settings["duration"]) + int(settings["omit"])
    return {"in_pod_timeout": test_timeout(settings), "task_timeout": test_timeout(settings) + 15,
            "exec_timeout": int(settings.get("exec_timeout", EXEC_TASK_TIMEOUT)),
            "retries": max(1, math.ceil(length / RETRY_DELAY)), "delay": RETRY_DELAY}


def retryable(stdout: str | None, stderr: str | None = None) -> bool:
    """Whether a test's output says its server was busy or not listening: try again."""
    text = f"{stdout or ''}\n{stderr or ''}"
    return any(word in text for word in RETRYABLE)


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


def pair(candidates: list[str], hosts: dict[str, Any] | None) -> list[str]:
    """The benchmark's two nodes from candidates (agents first): the first, then the first after it on another
    machine where the machines are known, else the second."""
    names = list(dict.fromkeys(str(c) for c in candidates))
    if len(names) < 2:
        return names
    first = names[0]
    where = (hosts or {}).get(first)
    other = [n for n in names[1:] if where and (hosts or {}).get(n) and hosts[n] != where]
    return [first, other[0] if other else names[1]]


def lab_nodes(agents: list[str], servers: list[str], hosts: dict[str, Any] | None, mesh: bool = False) -> list[str]:
    """The benchmark nodes of a lab of ours: the pair (``pair``) from its agents, then its servers; a mesh's
    every agent (and the servers too where there are fewer than three agents)."""
    candidates = [str(n) for n in [*agents, *servers]]
    if mesh:
        return [str(n) for n in agents] if len(agents) >= 3 else candidates
    return pair(candidates, hosts)


def placement_note(client: dict, server: dict, hosts: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the two nodes of a test run on one hypervisor (only when both are known)."""
    a, b = client["host"], server["host"]
    if a == b or not hosts or not hosts.get(a) or not hosts.get(b):
        return {"same_host": None, "note": None}
    shared = hosts[a] == hosts[b]
    return {"same_host": shared, "note": SAME_HOST if shared else None}


# A transport's wrapper (commands.local, commands.kubernetes): (entry, client, server) -> what runs where,
# the test's client_cmd, exec, cpu_peer, cpu_exec and exec_host.
Wrapper = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]


def check_settings(settings: dict[str, Any]) -> None:
    """Raise MatrixError unless the run's settings can make a plan."""
    counted = ("max_repeats",) if repeats.is_auto(settings) else ("repeats",)
    for key in ("duration", "omit", *counted, "port", "timeout_margin"):
        value = settings.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MatrixError(f"setting {key} must be a non-negative integer, got {value!r}")
    if settings["duration"] < 1 or repeats.rounds(settings) < 1:
        raise MatrixError("duration and repeats must be at least 1")

    if "netperf_port" in settings and not _positive_int(settings["netperf_port"], 1, 65532):
        raise MatrixError(f"setting netperf_port must be an integer from 1 to 65532, got {settings['netperf_port']!r}")
    if settings["port"] in range(netperf_ports(settings)[0], last_port(settings) + 1):
        raise MatrixError(f"setting port {settings['port']} is one of netperf's and the CPU reader's ports "
                          f"{netperf_ports(settings)[0]}-{last_port(settings)}")


# A mesh test's scenario: the matrix entry's name, then its client and server node ('_' is in no node name).
MESH_MARK = "@"


def mesh_pairs(nodes: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every ordered pair of the benchmark's nodes, client by client, in the nodes' order."""
    if len(nodes) < 3:
        raise MatrixError(f"bench_mesh needs three or more benchmark nodes, got {len(nodes)}: "
                          f"{', '.join(n['name'] for n in nodes)}")
    return [(a, b) for a in nodes for b in nodes if a["name"] != b["name"]]


def mesh_scenario(name: str, client: str, server: str) -> str:
    return f"{name}{MESH_MARK}{client}_{server}"


# A test's id, its raw file's name: <index>-<scenario>-r<repeat> (build_plan writes it; a run's reader of its
# raw files, as the auto repeats' rule in the runner, parses it).
TEST_ID = re.compile(r"^\d{4}-(?P<scenario>.+)-r(?P<repeat>\d+)$")


def build_plan(
    matrix: list[dict[str, Any]], nodes: list[dict[str, Any]], settings: dict[str, Any],
    wrap: Wrapper, hosts: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every test of a run, in run order.

    ``wrap`` is the transport's wrapper (commands.local or commands.kubernetes), which says how each
    test runs. ``hosts`` maps a node to the machine it runs on (a Proxmox VM's PVE node), where known.
    Repeats are interleaved (all scenarios once, then again) so that slow drift on the lab spreads
    over all scenarios instead of biasing one. An auto run (repeats.py) plans its max_repeats rounds, those
    past the first three each with the ``stop`` rule its runner applies.
    """
    entries = normalize_matrix(matrix)
    check_settings(settings)
    # With bench_mesh, a cross-node entry is a test per ordered pair of the nodes, one pair at a time.
    pairs = mesh_pairs(nodes) if settings.get("mesh") else []
    runs = [(entry, pair) for entry in entries
            for pair in (pairs if pairs and entry["placement"] == "cross-node" else [None])]
    total = len(runs) * repeats.rounds(settings)
    per_test = settings["duration"] + settings["omit"]
    plan = []
    for repeat in range(1, repeats.rounds(settings) + 1):
        for entry, pair in runs:
            index = len(plan) + 1
            scenario = mesh_scenario(entry["name"], pair[0]["name"], pair[1]["name"]) if pair else entry["name"]
            test_id = f"{index:04d}-{scenario}-r{repeat}"
            seconds_left = (total - index + 1) * per_test
            client, server = endpoints(entry["placement"], list(pair) if pair else nodes)
            plan.append({
                "id": test_id,
                "label": f"{index}/{total} {test_id}, about {seconds_left} s left",
                "index": index,
                "total": total,
                "scenario": scenario,
                **({"mesh": {"test": entry["name"], "client": client["host"], "server": server["host"]}}
                   if pair else {}),
                "placement": entry["placement"],
                "protocol": entry["protocol"],
                "tool": tool(entry["protocol"]),
                "streams": entry["streams"],
                "reverse": entry["reverse"],
                "size": entry["size"],
                "repeat": repeat,
                "client": client,
                "server": server,
                **wrap(entry, client, server),
                "bounds": bounds(settings),
                **placement_note(client, server, hosts),
                "seconds_left": seconds_left,
                # An auto run's rounds past the first three: run only while the test's median is not known
                # to the target yet (repeats.needed; the runner asks before the test).
                **({"stop": {"target_ci_percent": settings["target_ci_percent"]}}
                   if repeats.is_auto(settings) and repeat > repeats.MIN_ROUNDS else {}),
            })
    return plan
