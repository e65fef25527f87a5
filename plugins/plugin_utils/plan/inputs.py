"""The benchmark's inputs, checked before anything is created: one rule each, all problems at once.

Controller-only (preflight calls it through the netlab.lab.bench_input_problems filter). The rules
of the matrix entries, the image and the pod overrides live with the code that uses them (matrix.py,
kube_objects.py); this module applies them, and the rules of the plain settings, to what the user gave.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.report import gate
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import congestion, kube_objects

# A run directory's name: a plain file name, never a path.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# A Kubernetes node name (RFC 1123 subdomain).
_NODE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
TRANSPORTS = ("local", "kubernetes")


def _int(value: Any) -> int | None:
    """value as an integer when it is one (also from -e key=value, which gives strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        return int(value)
    return None


def _range(low: int, high: int) -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        number = _int(value)
        return None if number is not None and low <= number <= high else f"an integer from {low} to {high}"

    return rule


def _bitrate(value: Any) -> str | None:
    return None if matrix.check_bitrate(value) else "an iperf3 bitrate above zero, such as 1G, 500M or 2.5G"


def _run_name(value: Any) -> str | None:
    return None if value in ("", None) or _RUN_ID.match(str(value)) else (
        "empty or a run directory's name (letters, digits, . _ -; no path)")


def _baseline(value: Any) -> str | None:
    # latest is about to name the run being gated: the gate would hold the run against itself.
    wanted = _run_name(value)
    return wanted or (None if value != "latest" else "empty or a run's id (not latest, which becomes this run)")


def _tolerance(value: Any) -> str | None:
    try:
        gate.tolerance(value)
    except ValueError:
        return "a number of percent above 0 and below 100"
    return None


def _dns_label(value: Any) -> str | None:
    """A namespace's or a Lease's name: an RFC 1123 label (apimachinery validation IsDNS1123Label)."""
    if isinstance(value, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
        return None
    return "a DNS label (lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)"


def _congestion(value: Any) -> str | None:
    # Whether the nodes' kernels have it, and allow it to the tests' user, is checked where they are read.
    return None if value in congestion.CHOICES else f"one of {', '.join(congestion.CHOICES)}"


def _repeats(value: Any) -> str | None:
    if value == repeats.AUTO or _range(1, 1000)(value) is None:
        return None
    return f"{repeats.AUTO} or an integer from 1 to 1000"


def _transport(value: Any) -> str | None:
    return None if value in TRANSPORTS else f"one of {', '.join(TRANSPORTS)}"


# Variable (without the bench_ prefix) -> rule: None when good, else what it must be.
SETTINGS: dict[str, Callable[[Any], str | None]] = {
    "transport": _transport,
    "duration": _range(1, 86400),
    "omit": _range(0, 3600),
    "repeats": _repeats,
    # bench_repeats auto: at least its three first rounds, at most this many; the median's interval wanted.
    "max_repeats": _range(repeats.MIN_ROUNDS, 1000),
    "target_ci_percent": _range(1, 100),
    "iperf3_port": _range(1, 65535),
    "udp_bitrate": _bitrate,
    "netperf_port": _range(1, 65532),
    "timeout_margin": _range(1, 3600),
    "pod_timeout": _range(1, 86400),
    "delete_timeout": _range(1, 86400),
    # Room for the API server's and the runtime's exec around a command given 5 s less in the pod.
    "exec_timeout": _range(6, 3600),
    "lease_namespace": _dns_label,
    "lease_name": _dns_label,
    "lease_seconds": _range(30, 86400),
    "run_id": _run_name,
    "resume": _run_name,
    "baseline": _baseline,
    "tolerance": _tolerance,
    "congestion": _congestion,
    # Percent of one core (0: not measured); reruns per repeat (each costs a test's length).
    "disturbed_percent": _range(0, 100),
    "disturbed_reruns": _range(0, 10),
}


def _matrix(values: dict[str, Any]) -> list[str]:
    if "matrix" not in values:
        return []
    entries = values.get("matrix")
    if not isinstance(entries, list):
        return [f"bench_matrix must be a list of tests, got {entries!r}"]
    try:
        matrix.normalize_matrix(entries)
    except matrix.MatrixError as exc:
        return [f"bench_matrix: {exc}"]
    return []


def _cluster(values: dict[str, Any]) -> list[str]:
    """What only the Kubernetes transport takes: the image (when the benchmark runs), overrides, node names."""
    if values.get("transport") != "kubernetes":
        return []
    problems = []
    if values.get("runs_bench") and not (values.get("render_only") and not values.get("image")):
        try:
            kube_objects.check_image(values.get("image") or "")
        except kube_objects.KubeError as exc:
            problems.append(str(exc))
    try:
        kube_objects.check_overrides(values.get("pod_overrides"))
    except kube_objects.KubeError as exc:
        problems.append(str(exc))
    nodes = values.get("nodes")
    if nodes:  # a lab of ours has its nodes only once provisioned; the benchmark checks them again then
        names = [str(n) for n in nodes] if isinstance(nodes, list) else []
        most = len(names) if values.get("mesh") else 3
        if not 2 <= len(names) <= most or len(set(names)) != len(names) or not all(_NODE.match(n) for n in names):
            problems.append(f"bench_nodes (netlab_bench_nodes in this project's inventories) must be two or three "
                            f"different Kubernetes node names (client, server, optionally the same-node pair's; "
                            f"as many as the mesh takes with bench_mesh), got {nodes!r}")
    return problems


def problems(values: dict[str, Any]) -> list[str]:
    """Every problem of the benchmark's inputs, each naming the variable, what it got and what it takes.

    ``values`` has the role's inputs without the ``bench_`` prefix, plus ``runs_bench`` (the
    benchmark runs in this playbook run, so a cluster run needs its image).
    """
    found = []
    for key, rule in SETTINGS.items():
        if key in values:
            wanted = rule(values[key])
            if wanted:
                found.append(f"bench_{key} must be {wanted}, got {values[key]!r}")
    return (found + _ports(values) + _matrix(values) + _cluster(values) + _resume(values) + _distinct(values)
            + _mesh(values))


def _mesh(values: dict[str, Any]) -> list[str]:
    """bench_mesh: three or more nodes (once they are known)."""
    if not values.get("mesh"):
        return []
    nodes = values.get("nodes")
    if isinstance(nodes, list) and nodes and len(nodes) < 3:
        where = ("name them in bench_nodes (netlab_bench_nodes)" if values.get("transport") == "kubernetes"
                 else "on the local lab -e netlab_agents=3 or more")
        return [f"bench_mesh needs three or more benchmark nodes, got {len(nodes)} ({', '.join(map(str, nodes))}): "
                f"{where}"]
    return []


def _distinct(values: dict[str, Any]) -> list[str]:
    """bench_distinct_hosts: the cross-node pair (the first two of bench_nodes) on two machines, known to be;
    ``node_hosts`` holds what is known of every node's machine (one machine for all: nothing crosses a wire)."""
    if not values.get("distinct_hosts") or not isinstance(values.get("nodes"), list) or len(values["nodes"]) < 2:
        return []
    hosts = values.get("node_hosts") or {}
    client, server = (str(n) for n in values["nodes"][:2])
    known = {str(h) for h in hosts.values() if h}
    # More nodes than the pair, all on one machine: no other pair would do either.
    if len(known) == 1 and all(hosts.values()) and len(hosts) > 2:
        return [f"bench_distinct_hosts: every node runs on one host ({known.pop()}), so no cross-node pair "
                "crosses a wire: spread the lab over more hosts, or leave bench_distinct_hosts off"]
    missing = [n for n in (client, server) if not hosts.get(n)]
    if missing and (values.get("host_label") or values.get("hosts_known") is False):
        return []  # read from the nodes' labels, or placed by a plan still to come, and checked then
    if missing:
        return [f"bench_distinct_hosts: the host of {' and '.join(missing)} is not known (a Proxmox lab's PVE "
                "node; on a cluster of your own, bench_host_label names the node label that says it)"]
    if hosts[client] == hosts[server]:
        return [f"bench_distinct_hosts: the cross-node pair {client} and {server} both run on {hosts[client]}: "
                "name another pair (netlab_bench_nodes) or place the VMs on two hosts"]
    return []


def _resume(values: dict[str, Any]) -> list[str]:
    """A resumed run keeps its plan: one planned with fixed repeats cannot be resumed as auto, nor the other
    way round (``resumed_repeats``: the run's own, from its run.json, when a resume was asked)."""
    asked, planned = values.get("repeats"), values.get("resumed_repeats")
    if not values.get("resume") or planned is None:
        return []
    if (asked == repeats.AUTO) == (planned == repeats.AUTO):
        return []
    return [f"bench_repeats {asked} cannot resume run {values['resume']}, planned with bench_repeats {planned}: "
            f"resume it with -e bench_repeats={planned}"]


def _ports(values: dict[str, Any]) -> list[str]:
    """iperf3's port may not be one of netperf's three or the CPU reader's."""
    port, netperf = _int(values.get("iperf3_port")), _int(values.get("netperf_port"))
    if port is None or not netperf:  # netperf_port 0 is refused by its own rule
        return []
    last = matrix.last_port({"netperf_port": netperf})
    if not netperf <= port <= last:
        return []
    return [f"bench_iperf3_port {port} is one of the ports of bench_netperf_port {netperf} (netserver's "
            f"control port, its data ports and the CPU reader, {netperf}-{last}): choose ports apart"]
