"""The command lines of a run on both transports: iperf3 and netperf clients and servers, and where they run.

matrix.py plans the tests; this module says what runs for each of them. Each transport is a wrapper
the planner is handed (``local``, ``kubernetes``): the local lab runs a test on the client's node, in
the client pod's network namespace, between two readings of the node's datapath counters and CPU
(proof.around); Kubernetes execs it in the client pod between two CPU readings (cpu.around). The
local transport's servers (iperf3, netserver, the /proc/stat reader) and the datapath model's
Service are started and stopped with the command lines built here too. Pure functions, no Ansible
imports, so they are unit tested directly.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import (
    congestion,
    cpu,
    kube_calls,
    kube_objects,
    proof,
)

# What netperf prints (-k: one KEY=value line each, netperf's own output selectors).
NETPERF_SELECTORS = ("PROTOCOL", "ELAPSED_TIME", "REQUEST_SIZE", "RESPONSE_SIZE", "TRANSACTION_RATE",
                     "MIN_LATENCY", "MEAN_LATENCY", "P50_LATENCY", "P90_LATENCY", "P99_LATENCY",
                     "MAX_LATENCY", "STDDEV_LATENCY")
# What a TCP_RR test's sockets used at each end (netperf reads them back with getsockopt), with a pinned one.
NETPERF_CONGESTION_SELECTORS = ("LOCAL_CONG_CONTROL", "REMOTE_CONG_CONTROL")
# The datapath model's ClusterIP: this host of the lab's Service CIDR (the node fact's service_cidr).
SERVICE_HOST = 10


def netperf_argv(entry: dict[str, Any], server_ip: str, settings: dict[str, Any]) -> list[str]:
    """netperf client command line of a request/response test: no banner (-P 0), one KEY=value line per
    selector (-k), request and response of ``size`` bytes, the data connection to the pinned data port
    (test option -P ,port, the server's side only), a port of its own for the tests through a Service
    (matrix.netperf_ports says why)."""
    control, direct, through_service = matrix.netperf_ports(settings)
    data = through_service if entry["placement"] == "service" else direct
    size = entry["size"]
    selectors, pinned = NETPERF_SELECTORS, []
    # Runs planned before the pin (a resumed one) have no congestion setting: their command lines stay.
    if settings.get("congestion") and entry["protocol"] != "udp_rr":
        # The omni test's -K sets both ends' sockets (the remote's through netserver). Only TCP_RR reads
        # them back: TCP_CRR's selectors come back empty (netperf 2.7.1, each connection's socket is gone by
        # then), so it records none rather than a value now and then.
        cc = settings["congestion"]
        pinned = ["-K", f"{cc},{cc}"]
        if entry["protocol"] == "tcp_rr":
            selectors = (*NETPERF_SELECTORS, *NETPERF_CONGESTION_SELECTORS)
    return ["netperf", "-P", "0", "-H", server_ip, "-p", str(control), "-l", str(settings["duration"]),
            "-t", matrix.NETPERF_TESTS[entry["protocol"]], "--", "-r", f"{size},{size}", "-P", f",{data}",
            *pinned, "-k", ",".join(selectors)]


def client_argv(entry: dict[str, Any], server_ip: str, settings: dict[str, Any]) -> list[str]:
    """The client command line of one test: iperf3 (JSON output on stdout) or netperf (KEY=value lines)."""
    if entry["protocol"] in matrix.NETPERF_TESTS:
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
    if entry["protocol"] == "tcp" and settings.get("congestion"):
        # iperf3 passes it to the server too: both ends' sockets use it, and the JSON says what each used.
        argv += ["--congestion", settings["congestion"]]
    return argv


def bounded(entry: dict[str, Any], server: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The client command line under coreutils ``timeout`` where it runs, so a killed test's client dies too."""
    return ["timeout", str(matrix.test_timeout(settings)), *client_argv(entry, server["ip"], settings)]


# The programs a local run serves with (server_argv), each with its pid files.
SERVER_PROGRAMS = ("iperf3", "netserver", "cpu")


def pidfile(program: str, name: str) -> str:
    """Where a local server's pid is kept: one per program and endpoint of the node (``name``)."""
    return f"/run/netlab-{program}-{name}.pid"


def server_argv(settings: dict[str, Any], name: str, seconds: int, program: str = "iperf3") -> list[str]:
    """Start one of the run's servers for one endpoint in the background; return once it listens.

    ``program``: ``iperf3`` (its server), ``netserver`` (netperf's, for the request/response tests) or
    ``cpu`` (the reader of the node's /proc/stat, cpu.py, on the node's own address). A server answers
    the run's tests one after another (a client that finds it busy or not yet listening tries again).
    A server left by an interrupted run (its pid file, one per program and endpoint of the node:
    ``name``) is stopped first, so a resumed run never talks to a stale server, and ``timeout`` bounds
    it by the run's own length (``seconds``), so a run that dies cannot leave a listener behind for long.
    """
    control = matrix.netperf_ports(settings)[0]
    port, command = {
        "iperf3": (settings["port"], f"iperf3 --server --port {settings['port']}"),
        "netserver": (control, f"netserver -D -p {control}"),
        "cpu": (matrix.cpu_port(settings), cpu.reader_command(matrix.cpu_port(settings))),
    }[program]
    pid = pidfile(program, name)
    listening = f"ss -Hltn 'sport = :{port}' | grep -q ."
    # In the background of a non-interactive shell setsid runs in place (no fork), and env execs: $! is the
    # server's timeout, which passes the clean-up's kill on to the server. Both carry the run's mark.
    script = (
        f"if [ -f {pid} ]; then kill $(cat {pid}) 2>/dev/null; rm -f {pid}; fi; "
        f"for i in $(seq 50); do {listening} || break; sleep 0.1; done; "
        f"setsid env {RUN_MARK} timeout {seconds} {command} >/dev/null 2>&1 < /dev/null & echo $! > {pid}; "
        f"for i in $(seq 100); do {listening} && exit 0; sleep 0.1; done; "
        f"echo '{program} server did not listen on port {port}' >&2; exit 1"
    )
    return ["sh", "-c", script]


# Every process a local run starts on a node (its servers, each test's client) carries this in its environment:
# what the run's watchdog kills there when ansible-playbook dies before its cleanup (watchdog.py).
RUN_MARK = "NETLAB_BENCH_RUN=1"


def marked(argv: list[str]) -> list[str]:
    """argv with the run's mark in its environment (and its children's)."""
    return ["env", RUN_MARK, *argv]


def node_cleanup(also: list[list[str]] | None = None) -> list[str]:
    """Local lab: a node's cleanup after a run that died: every process the run marked killed (a server's
    ``timeout`` and the server itself: both carry the mark), the servers' pid files removed, then ``also``
    (the commands that undo what the run set up there: the model's Service)."""
    script = (f"for p in /proc/[0-9]*; do grep -qsxzF {RUN_MARK} $p/environ && kill -KILL ${{p#/proc/}} 2>/dev/null; "
              f"done; rm -f {' '.join(pidfile(program, '*') for program in SERVER_PROGRAMS)}")
    for argv in also or []:
        script += f"; {shlex.join(argv)} >/dev/null 2>&1"
    return ["sh", "-c", script + "; true"]


def watched(hosts: list[str], also: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Local lab: per benchmark node, the command that cleans it up after a run that died (``{host, argv}``,
    node_cleanup); ``also``, per node, what else to undo there (``{host, argv}``: the Service's delete)."""
    return [{"host": host, "argv": node_cleanup([one["argv"] for one in also or [] if one["host"] == host])}
            for host in hosts]


def stop_argv(program: str, name: str) -> list[str]:
    """Stop a server server_argv started, by its pid file; prints ``stopped`` when there was one."""
    pid = pidfile(program, name)
    return ["sh", "-c", f'if [ -f {pid} ]; then kill "$(cat {pid})" 2>/dev/null; rm -f {pid}; echo stopped; fi']


def in_netns(argv: list[str], netns: str | None) -> list[str]:
    """Local-lab transport: run argv inside a pod's network namespace."""
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def congestion_reads(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Local lab: per benchmark node (datapath fact ``{name, pods}``), the command that reads its congestion
    control sysctls in its first pod's network namespace, where the tests' sockets live (the default is per
    namespace), or in the node's own without a pod: ``{node, read_in, argv}``."""
    reads = []
    for node in nodes:
        pod = next((p["name"] for p in node.get("pods") or []), None)
        reads.append({"node": node["name"], "read_in": pod or "host", "argv": in_netns(congestion.read_argv(), pod)})
    return reads


def k8s_exec(argv: list[str], pod: str, transport: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes transport: the arguments of kubernetes.core.k8s_exec that run argv in a pod.

    k8s_exec takes one string and splits it with shlex, so argv is joined with shlex.
    """
    return {"namespace": transport["namespace"], "pod": pod,
            "container": transport.get("container", kube_objects.CONTAINER), "command": shlex.join(argv)}


def local(nodes: list[dict[str, Any]], settings: dict[str, Any]) -> matrix.Wrapper:
    """The local transport's wrapper: each test runs on its client's node (``exec_host``), inside the
    client pod's namespace, between two reads of the node's datapath counters (the test's proof,
    proof.py) and of its /proc/stat; the server node's /proc/stat is read through its reader at
    ``cpu_peer`` (address:port; None when the server is on the client's node). The servers run for
    the whole run (``servers``)."""
    node_ips = {node["name"]: node.get("ip") for node in nodes}

    def wrap(entry: dict[str, Any], client: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
        peer = (f"{node_ips[server['host']]}:{matrix.cpu_port(settings)}"
                if server["host"] != client["host"] else None)
        return {"client_cmd": proof.around(in_netns(bounded(entry, server, settings), client["pod"]), peer),
                "exec": None, "cpu_peer": peer, "cpu_exec": None, "exec_host": client["host"]}

    return wrap


def kubernetes(transport: dict[str, Any], settings: dict[str, Any]) -> matrix.Wrapper:
    """The Kubernetes transport's wrapper (``transport``: ``{namespace}``, the run's): each test is the
    arguments of a kubernetes.core.k8s_exec in the client pod, from the controller (``exec``), between
    two readings of the node's /proc/stat beside the wall clock; the server pod's node is read by the
    sampler that runs in it for the whole run (``cpu_pod``; ``samplers``). The servers are the pods
    themselves."""

    def wrap(entry: dict[str, Any], client: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
        wrapped = cpu.around(bounded(entry, server, settings))
        return {"client_cmd": wrapped, "exec": k8s_exec(wrapped, client["pod"], transport), "cpu_peer": None,
                "cpu_exec": None, "cpu_pod": server["pod"], "exec_host": None}

    return wrap


def samplers(tests: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Kubernetes: per server pod of a plan's tests, the k8s_exec arguments that start its CPU sampler
    before the tests (``start``) and stop and read it after them (``read``); bounded by the whole plan's
    length (every test to its timeout, and its exec's start-up), like the local transport's servers."""
    bounds = matrix.bounds(settings)
    seconds = len(tests) * (bounds["task_timeout"] + bounds["exec_timeout"]) + 120
    pod_seconds = kube_calls.in_pod_seconds(bounds["exec_timeout"])
    found: dict[str, dict[str, Any]] = {}
    for test in tests:
        pod = test.get("cpu_pod")
        if pod and pod not in found:
            transport = {"namespace": test["exec"]["namespace"], "container": test["exec"]["container"]}
            found[pod] = {"pod": pod,
                          "start": k8s_exec(kube_calls.in_pod(cpu.sampler(pod, seconds), pod_seconds), pod, transport),
                          "read": k8s_exec(kube_calls.in_pod(cpu.sampled(pod), pod_seconds), pod, transport),
                          "task_timeout": bounds["exec_timeout"]}
    return list(found.values())


def plan(entries: list[dict[str, Any]], nodes: list[dict[str, Any]], settings: dict[str, Any],
         transport: dict[str, Any] | None = None, hosts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every test of a run with what runs where (matrix.build_plan): ``transport`` None for the local
    lab, or ``{namespace}`` for Kubernetes (the run's namespace; tests are exec'd from the controller)."""
    wrap = kubernetes(transport, settings) if transport else local(nodes, settings)
    return matrix.build_plan(entries, nodes, settings, wrap, hosts)


def servers(tests: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Local lab: the servers a plan's tests talk to, each once: ``{host, pod, program, argv, stop}``.

    Per server endpoint the test's program (iperf3 or netserver); per server node whose tests run from
    another node, the reader of its /proc/stat (cpu.py). ``argv`` starts one, bounded by the whole
    plan's length (every test to its timeout); ``stop`` stops it by its pid file (on the node: the pid
    files are the node's, whichever namespace the server runs in).
    """
    seconds = len(tests) * matrix.test_timeout(settings) + 60
    found: dict[tuple[str, str | None, str], dict[str, Any]] = {}

    def add(host: str, pod: str | None, program: str) -> None:
        if (host, pod, program) not in found:
            argv = in_netns(server_argv(settings, pod or "host", seconds, program), pod)
            found[host, pod, program] = {"host": host, "pod": pod, "program": program, "argv": argv,
                                         "stop": stop_argv(program, pod or "host")}

    for test in tests:
        server = test["server"]
        add(server["host"], server["pod"], "netserver" if test.get("tool") == "netperf" else "iperf3")
        if test.get("cpu_peer"):
            add(server["host"], None, "cpu")
    return list(found.values())


def local_service(nodes: list[dict[str, Any]], entries: list[dict[str, Any]],
                  settings: dict[str, Any]) -> dict[str, Any]:
    """Local lab: the datapath model's ClusterIP Service in front of the cross-node server pod, served on
    every node the CNI's way (kube-proxy's chains or Cilium's socket LB maps) by ``netlab-datapath
    service-add``, as the Kubernetes transport's Service is: iperf3's port and, with netperf tests,
    netserver's control and data ports (kube_objects.server_ports).

    ``nodes`` are the benchmark nodes' datapath facts (the planner's nodes). Returns ``{name, ip, nodes,
    add, delete}``: ``nodes`` with the Service's address on the server node; ``add``, per node and port,
    ``{host, port, protocol, argv}`` (none without a service test, or on a lab built before the model had
    Services: no ``service_cidr``, and then the plan says so); ``delete``, per node, ``{host, argv}``.
    """
    server_node = next(node for node in nodes if node["name"] == matrix.endpoints("host", nodes)[1]["host"])
    cidr = server_node.get("service_cidr")
    address = str(ipaddress.ip_network(cidr, strict=False)[SERVICE_HOST]) if cidr else None
    name = kube_objects.SERVICE
    add = []
    if address and "service" in [entry["placement"] for entry in matrix.normalize_matrix(entries)]:
        # The cross-node tests' server pod, as the planner picks it.
        backend = matrix.endpoints("cross-node", nodes)[1]["ip"]
        add = [{"host": node["name"], "port": port["port"], "protocol": port["protocol"].lower(),
                "argv": [proof.DATAPATH, "service-add", name, address, str(port["port"]),
                         port["protocol"].lower(), f"{backend}:{port['port']}"]}
               for node in nodes for port in kube_objects.server_ports(entries, settings)]
    return {"name": name, "ip": address,
            "nodes": [{**node, "service_ip": address} if node is server_node and address else node for node in nodes],
            "add": add,
            "delete": [{"host": node["name"], "argv": [proof.DATAPATH, "service-del", name]} for node in nodes]}
