"""Expand the benchmark matrix into concrete tests: iperf3 streams and netperf request/response.

The matrix is data (one entry per scenario); this module decides, for every
provider, which endpoints a scenario uses and which iperf3 or netperf command lines run.
Transports only wrap the command lines to run them in the right place.
Pure functions, no Ansible imports, so they are unit tested directly.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, proof

PLACEMENTS = ("host", "same-node", "cross-node", "service")
# tcp and udp: iperf3 streams; the others name netperf's request/response tests (one transaction in
# flight, a new connection per transaction for tcp_crr), as `cilium connectivity perf` runs them.
NETPERF_TESTS = {"tcp_rr": "TCP_RR", "udp_rr": "UDP_RR", "tcp_crr": "TCP_CRR"}
PROTOCOLS = ("tcp", "udp", *NETPERF_TESTS)
# netserver's control port when the settings name none (runs planned before netperf tests existed);
# the data connection is pinned to the next port (-P), so a Service can forward it.
NETPERF_PORT = 12865
# What netperf prints (-k: one KEY=value line each, netperf's own output selectors).
NETPERF_SELECTORS = ("PROTOCOL", "ELAPSED_TIME", "REQUEST_SIZE", "RESPONSE_SIZE", "TRANSACTION_RATE",
                     "MIN_LATENCY", "MEAN_LATENCY", "P50_LATENCY", "P90_LATENCY", "P99_LATENCY",
                     "MAX_LATENCY", "STDDEV_LATENCY")
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


def netperf_argv(entry: dict[str, Any], server_ip: str, settings: dict[str, Any]) -> list[str]:
    """netperf client command line of a request/response test: no banner (-P 0), one KEY=value line per
    selector (-k), request and response of ``size`` bytes, the data connection to the pinned data port
    (test option -P ,port, the server's side only), a port of its own for the tests through a Service
    (netperf_ports says why)."""
    control, direct, through_service = netperf_ports(settings)
    data = through_service if entry["placement"] == "service" else direct
    size = entry["size"]
    return ["netperf", "-P", "0", "-H", server_ip, "-p", str(control), "-l", str(settings["duration"]),
            "-t", NETPERF_TESTS[entry["protocol"]], "--", "-r", f"{size},{size}", "-P", f",{data}",
            "-k", ",".join(NETPERF_SELECTORS)]


def client_argv(entry: dict[str, Any], server_ip: str, settings: dict[str, Any]) -> list[str]:
    """The client command line of one test: iperf3 (JSON output on stdout) or netperf (KEY=value lines)."""
    if entry["protocol"] in NETPERF_TESTS:
        return netperf_argv(entry, server_ip, settings)
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


def server_argv(settings: dict[str, Any], name: str, seconds: int, program: str = "iperf3") -> list[str]:
    """Start one of the run's servers for one endpoint in the background; return once it listens.

    ``program``: ``iperf3`` (its server), ``netserver`` (netperf's, for the request/response tests) or
    ``cpu`` (the reader of the node's /proc/stat, cpu.py, on the node's own address). A server answers
    the run's tests one after another (a client that finds it busy or not yet listening tries again).
    A server left by an interrupted run (its pid file, one per program and endpoint of the node:
    ``name``) is stopped first, so a resumed run never talks to a stale server, and ``timeout`` bounds
    it by the run's own length (``seconds``), so a run that dies cannot leave a listener behind for long.
    """
    port, command = {
        "iperf3": (settings["port"], f"iperf3 --server --port {settings['port']}"),
        "netserver": (netperf_ports(settings)[0], f"netserver -D -p {netperf_ports(settings)[0]}"),
        "cpu": (cpu_port(settings), cpu.reader_command(cpu_port(settings))),
    }[program]
    pidfile = f"/run/netlab-{program}-{name}.pid"
    listening = f"ss -Hltn 'sport = :{port}' | grep -q ."
    # In the background of a non-interactive shell setsid runs in place (no fork): $! is the server's
    # timeout, which passes the clean-up's kill on to the server.
    script = (
        f"if [ -f {pidfile} ]; then kill $(cat {pidfile}) 2>/dev/null; rm -f {pidfile}; fi; "
        f"for i in $(seq 50); do {listening} || break; sleep 0.1; done; "
        f"setsid timeout {seconds} {command} >/dev/null 2>&1 < /dev/null & echo $! > {pidfile}; "
        f"for i in $(seq 100); do {listening} && exit 0; sleep 0.1; done; "
        f"echo '{program} server did not listen on port {port}' >&2; exit 1"
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
             transport: dict[str, Any] | None, cpu_peer: str | None = None) -> tuple[list[str], dict[str, Any] | None]:
    """(client command, k8s_exec arguments) of one test as the transport runs them.

    Both transports bound the client with ``timeout`` where iperf3 or netperf runs, between two reads
    of the node's /proc/stat (cpu.py). Local lab: inside the client pod's namespace on its node, between
    two reads of the node's datapath counters (the test's proof, proof.py), the server node's /proc/stat
    read through its reader at ``cpu_peer`` (address:port; None when the server is on the client's node).
    Kubernetes: exec'd in the client pod (the server pod's /proc/stat is read by its own exec, cpu_exec).
    On both the servers run for the whole run (local: servers(), Kubernetes: the server pods).
    """
    bound = ["timeout", str(test_timeout(settings))]
    argv = client_argv(entry, server["ip"], settings)
    if transport is None:
        return proof.around(in_netns([*bound, *argv], client["pod"]), cpu_peer), None
    wrapped = cpu.around([*bound, *argv])
    return wrapped, k8s_exec(wrapped, client["pod"], transport)


def servers(plan: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Local lab: the servers a plan's tests talk to, each once: ``{host, pod, program, argv}``.

    Per server endpoint the test's program (iperf3 or netserver); per server node whose tests run from
    another node, the reader of its /proc/stat (cpu.py). They are bounded by the whole plan's length
    (every test to its timeout).
    """
    seconds = len(plan) * test_timeout(settings) + 60
    found: dict[tuple[str, str | None, str], dict[str, Any]] = {}

    def add(host: str, pod: str | None, program: str) -> None:
        if (host, pod, program) not in found:
            argv = in_netns(server_argv(settings, pod or "host", seconds, program), pod)
            found[host, pod, program] = {"host": host, "pod": pod, "program": program, "argv": argv}

    for test in plan:
        server = test["server"]
        add(server["host"], server["pod"], "netserver" if test.get("tool") == "netperf" else "iperf3")
        if test.get("cpu_peer"):
            add(server["host"], None, "cpu")
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

    if "netperf_port" in settings and not _positive_int(settings["netperf_port"], 1, 65532):
        raise MatrixError(f"setting netperf_port must be an integer from 1 to 65532, got {settings['netperf_port']!r}")
    if settings["port"] in range(netperf_ports(settings)[0], last_port(settings) + 1):
        raise MatrixError(f"setting port {settings['port']} is one of netperf's and the CPU reader's ports "
                          f"{netperf_ports(settings)[0]}-{last_port(settings)}")
    total = len(entries) * settings["repeats"]
    per_test = settings["duration"] + settings["omit"]
    node_ips = {node["name"]: node.get("ip") for node in nodes}
    plan = []
    for repeat in range(1, settings["repeats"] + 1):
        for entry in entries:
            index = len(plan) + 1
            test_id = f"{index:04d}-{entry['name']}-r{repeat}"
            seconds_left = (total - index + 1) * per_test
            client, server = endpoints(entry["placement"], nodes)
            # The server node's /proc/stat: local lab, through its reader; Kubernetes, exec'd in the server pod.
            peer = (f"{node_ips[server['host']]}:{cpu_port(settings)}"
                    if transport is None and server["host"] != client["host"] else None)
            client_cmd, exec_args = commands(entry, client, server, settings, transport, peer)
            plan.append({
                "id": test_id,
                "label": f"{index}/{total} {test_id}, about {seconds_left} s left",
                "index": index,
                "total": total,
                "scenario": entry["name"],
                "placement": entry["placement"],
                "protocol": entry["protocol"],
                "tool": tool(entry["protocol"]),
                "streams": entry["streams"],
                "reverse": entry["reverse"],
                "size": entry["size"],
                "repeat": repeat,
                "client": client,
                "server": server,
                "client_cmd": client_cmd,
                "exec": exec_args,
                "cpu_peer": peer,
                "cpu_exec": k8s_exec(cpu.READ, server["pod"], transport) if transport else None,
                "exec_host": None if transport else client["host"],
                "bounds": bounds(settings),
                **placement_note(client, server, hosts),
                "seconds_left": seconds_left,
            })
    return plan

