"""The planner decides, for every provider, what runs where."""

import os
import re
import subprocess
import sys

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, matrix, repeats
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_objects, proof

NODES = [
    {"name": "a", "ip": "198.18.0.12", "pods": [{"name": "pod0", "ip": "198.19.2.10"},
                                               {"name": "pod1", "ip": "198.19.2.11"}]},
    {"name": "b", "ip": "198.18.0.13", "pods": [{"name": "pod0", "ip": "198.19.3.10"},
                                               {"name": "pod1", "ip": "198.19.3.11"}]},
]
SETTINGS = {"duration": 30, "omit": 2, "repeats": 3, "port": 5201, "udp_bitrate": "1G",
            "timeout_margin": 30}
MATRIX = [
    {"name": "host-tcp-1", "placement": "host"},
    {"name": "cross-node-tcp-4", "placement": "cross-node", "streams": 4},
    {"name": "same-node-tcp-1", "placement": "same-node"},
    {"name": "cross-node-udp", "placement": "cross-node", "protocol": "udp"},
]


def plan(**overrides):
    return commands.plan(MATRIX, NODES, {**SETTINGS, **overrides})


def test_placements_pick_the_right_endpoints():
    by_name = {t["scenario"]: t for t in plan(repeats=1)}
    host = by_name["host-tcp-1"]
    assert (host["client"], host["server"]) == (
        {"host": "a", "pod": None, "ip": "198.18.0.12"},
        {"host": "b", "pod": None, "ip": "198.18.0.13"},
    )
    cross = by_name["cross-node-tcp-4"]
    assert cross["client"]["host"] == "a" and cross["server"]["host"] == "b"
    assert cross["server"]["ip"] == "198.19.3.10"
    same = by_name["same-node-tcp-1"]
    assert same["client"]["host"] == same["server"]["host"] == "a"
    assert (same["client"]["pod"], same["server"]["pod"]) == ("pod0", "pod1")


def test_repeats_are_interleaved_and_ids_unique():
    tests = plan()
    assert [t["scenario"] for t in tests[:4]] == [e["name"] for e in MATRIX]
    assert [t["repeat"] for t in tests] == [1] * 4 + [2] * 4 + [3] * 4
    assert len({t["id"] for t in tests}) == len(tests) == 12
    assert tests[0]["id"] == "0001-host-tcp-1-r1"
    assert tests[-1]["total"] == 12 and tests[-1]["index"] == 12


def test_progress_counts_down_the_remaining_time():
    tests = plan()
    assert tests[0]["seconds_left"] == 12 * 32
    assert tests[-1]["seconds_left"] == 32
    assert tests[0]["label"] == "1/12 0001-host-tcp-1-r1, about 384 s left"


def test_client_command_lines():
    by_name = {t["scenario"]: t for t in plan(repeats=1)}
    tcp4 = by_name["cross-node-tcp-4"]["client_cmd"]
    # Between two reads of the node's datapath counters and CPU readings of both nodes (proof.around, the
    # server node's through its reader on the node's address), then in the pod's namespace.
    assert tcp4[:5] == ["sh", "-c", proof._AROUND, "netlab-counters", "198.18.0.13:12867"]
    assert tcp4[5:] == ["ip", "netns", "exec", "pod0", "timeout", "62", "iperf3", "--client", "198.19.3.10",
                        "--port", "5201", "--json", "--time", "30", "--omit", "2", "--parallel", "4"]
    assert by_name["same-node-tcp-1"]["client_cmd"][4] == "", "one node: its CPU is read once"
    udp = by_name["cross-node-udp"]["client_cmd"]
    assert udp[-3:] == ["--udp", "--bitrate", "1G"]
    host = by_name["host-tcp-1"]["client_cmd"]
    assert host[5:7] == ["timeout", "62"], "host tests run in the node's own namespace"
    assert "--parallel" not in host


def test_the_counter_wrapper_keeps_the_test_exit_code_and_output():
    """The wrapper itself, run by a real shell (netlab-datapath absent here: empty readings)."""
    import subprocess

    done = subprocess.run(proof.around(["sh", "-c", "echo out; echo err >&2; exit 3"]),
                          capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout == "out\n"
    cpu_readings, _, stderr = cpu.split_stderr(done.stderr)
    readings, rest = proof.split_stderr(stderr)
    assert readings == [] and "err" in rest
    # This machine's /proc/stat, read before and after.
    assert len(cpu_readings["client"]) == 2 and "server" not in cpu_readings


def test_udp_options_and_reverse():
    entry = matrix.normalize_entry({"name": "u", "placement": "cross-node", "protocol": "udp",
                                    "bitrate": "5G", "length": 1400, "reverse": True})
    argv = commands.client_argv(entry, "198.19.3.10", SETTINGS)
    assert argv[-6:] == ["--udp", "--bitrate", "5G", "--length", "1400", "--reverse"]


def test_each_server_starts_once_for_the_run_bounded_and_waited_for():
    tests = plan(repeats=2)
    servers = commands.servers(tests, SETTINGS)
    # host-tcp-1 to b's own namespace, the cross-node tests to b's pod0, same-node to a's pod1; b's
    # /proc/stat reader in b's own namespace (a's is read by the client's wrapper itself).
    assert [(s["host"], s["pod"], s["program"]) for s in servers] == [
        ("b", None, "iperf3"), ("b", None, "cpu"), ("b", "pod0", "iperf3"), ("a", "pod1", "iperf3")]
    pod0 = servers[2]["argv"]
    assert pod0[:5] == ["ip", "netns", "exec", "pod0", "sh"]
    script = pod0[-1]
    # Bounded by the whole plan (8 tests to their 62 s timeout, and a minute), marked as the run's (what its
    # watchdog kills if ansible-playbook dies).
    assert (f"setsid env NETLAB_BENCH_RUN=1 timeout {8 * 62 + 60} iperf3 --server --port 5201 "
            ">/dev/null 2>&1 < /dev/null & echo $! > /run/netlab-iperf3-pod0.pid; ") in script
    assert "ss -Hltn 'sport = :5201'" in script
    # A stale server of an interrupted run is stopped first, by its own pid file.
    assert script.startswith("if [ -f /run/netlab-iperf3-pod0.pid ]; then kill $(cat /run/netlab-iperf3-pod0.pid)")
    assert servers[0]["argv"][:2] == ["sh", "-c"] and "netlab-iperf3-host.pid" in servers[0]["argv"][2]
    assert "ss -Hltn 'sport = :12867'" in servers[1]["argv"][2] and "python3 -c" in servers[1]["argv"][2]


def test_each_server_is_stopped_by_the_pid_file_it_wrote(tmp_path):
    servers = commands.servers(plan(repeats=1), SETTINGS)
    for server in servers:
        pidfile = re.search(r"echo \$! > (\S+); ", server["argv"][-1]).group(1)
        assert pidfile == f"/run/netlab-{server['program']}-{server['pod'] or 'host'}.pid"
        assert server["stop"] == ["sh", "-c", f'if [ -f {pidfile} ]; then kill "$(cat {pidfile})" 2>/dev/null; '
                                              f"rm -f {pidfile}; echo stopped; fi"]
    # The stop itself, run by a real shell on a pid file of its own.
    script = servers[0]["stop"][2].replace("/run/", f"{tmp_path}/")
    sleeper = subprocess.Popen(["sleep", "60"])
    (tmp_path / "netlab-iperf3-host.pid").write_text(f"{sleeper.pid}\n")
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout == "stopped\n"
    assert sleeper.wait(timeout=5) != 0 and not (tmp_path / "netlab-iperf3-host.pid").exists()
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout == ""


FACTS = [{**node, "service_cidr": "198.18.128.0/17"} for node in NODES]


def test_the_models_service_forwards_to_the_cross_node_server_pod():
    entries = [*MATRIX, {"name": "svc", "placement": "service"}]
    service = commands.local_service(FACTS, entries, SETTINGS)
    assert (service["name"], service["ip"]) == ("iperf3-cross", "198.18.128.10")
    # One source each: the Service's name (the Kubernetes transport's) and the datapath script's path.
    assert service["name"] == kube_objects.SERVICE and proof.DATAPATH == "/usr/local/sbin/netlab-datapath"
    assert [(a["host"], a["argv"]) for a in service["add"]] == [
        (host, [proof.DATAPATH, "service-add", "iperf3-cross", "198.18.128.10", "5201", protocol,
                "198.19.3.10:5201"]) for host in ("a", "b") for protocol in ("tcp", "udp")]
    assert service["delete"] == [{"host": host, "argv": [proof.DATAPATH, "service-del", "iperf3-cross"]}
                                 for host in ("a", "b")]
    assert service["nodes"] == [FACTS[0], {**FACTS[1], "service_ip": "198.18.128.10"}]
    by_name = {t["scenario"]: t for t in commands.plan(entries, service["nodes"], {**SETTINGS, "repeats": 1})}
    assert by_name["svc"]["server"] == {"host": "b", "pod": "pod0", "ip": "198.18.128.10"}
    # No service test: the address is named, nothing is served.
    assert commands.local_service(FACTS, MATRIX, SETTINGS)["add"] == []
    # A lab built before the model had Services: no address, and the plan refuses the service tests.
    old = commands.local_service(NODES, entries, SETTINGS)
    assert (old["ip"], old["add"], old["nodes"]) == (None, [], NODES)
    with pytest.raises(matrix.MatrixError, match="placement service needs a Service"):
        commands.plan(entries, old["nodes"], SETTINGS)


def test_a_plan_is_cut_where_the_client_node_changes():
    tests = plan(repeats=1)
    assert [(s["host"], len(s["tests"])) for s in matrix.segments(tests)] == [("a", len(tests))]
    third = [*NODES, {"name": "c", "ip": "198.18.0.14", "pods": [{"name": "pod0", "ip": "198.19.4.10"},
                                                                  {"name": "pod1", "ip": "198.19.4.11"}]}]
    tests = commands.plan(MATRIX, third, SETTINGS)
    cut = matrix.segments(tests)
    # host, cross-node-tcp-4 | same-node on c | cross-node-udp and the next repeat's first two | ...
    assert [(s["host"], len(s["tests"])) for s in cut] == [("a", 2), ("c", 1), ("a", 3), ("c", 1), ("a", 3),
                                                           ("c", 1), ("a", 1)]
    assert [t for s in cut for t in s["tests"]] == tests, "the plan's order is kept"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "matrix is empty"),
        ([{"name": "x", "placement": "moon"}], "placement 'moon'"),
        ([{"name": "x", "placement": "host", "protocol": "sctp"}], "protocol 'sctp'"),
        ([{"name": "x", "placement": "host", "streams": 0}], "streams must be"),
        ([{"name": "x", "placement": "host", "streams": "4"}], "streams must be"),
        ([{"name": "Bad Name", "placement": "host"}], "must match"),
        ([{"name": "x", "placement": "host"}, {"name": "x", "placement": "host"}], "duplicate"),
    ],
)
def test_bad_matrix_is_rejected(bad, message):
    with pytest.raises(matrix.MatrixError, match=message):
        commands.plan(bad, NODES, SETTINGS)


@pytest.mark.parametrize(("key", "value"), [("duration", "30"), ("duration", 0), ("repeats", 0),
                                            ("omit", -1), ("port", None)])
def test_bad_settings_are_rejected(key, value):
    with pytest.raises(matrix.MatrixError):
        plan(**{key: value})


def test_lab_too_small_is_rejected():
    with pytest.raises(matrix.MatrixError, match="two nodes"):
        commands.plan(MATRIX, NODES[:1], SETTINGS)
    one_pod = [dict(NODES[0], pods=NODES[0]["pods"][:1]), NODES[1]]
    with pytest.raises(matrix.MatrixError, match="same-node needs 2 pod"):
        commands.plan(MATRIX, one_pod, SETTINGS)


def test_local_tests_are_retried_for_their_own_length():
    test = plan(repeats=1)[1]
    assert test["exec"] is None and test["exec_host"] == "a"
    assert test["bounds"] == {"in_pod_timeout": 62, "task_timeout": 77, "exec_timeout": 20, "retries": 16, "delay": 2}
    assert test["bounds"]["retries"] * test["bounds"]["delay"] >= 30 + 2


# iperf3's own error texts, src/iperf_error.c (IESERVERBUSY, IECONNECT with errno ECONNREFUSED), as --json prints them.
BUSY = '{"start": {}, "intervals": [], "end": {}, "error": "the server is busy running a test. try again later"}'
REFUSED = ('{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server - server may have '
           'stopped running or use a different port, firewall issue, etc.: Connection refused"}')


@pytest.mark.parametrize(("stdout", "stderr", "again"), [
    (BUSY, "", True), (REFUSED, "", True), ("", "iperf3: error - ...: Connection refused", True),
    ('{"start": {}, "end": {}, "error": "unable to receive results"}', "", False), ("", "", False), (None, None, False),
])
def test_busy_or_refused_servers_are_retried(stdout, stderr, again):
    assert matrix.retryable(stdout, stderr) is again


def test_pairs_on_one_hypervisor_are_labelled_only_when_known():
    hosts = {"a": "pve1", "b": "pve1"}
    by_name = {t["scenario"]: t for t in commands.plan(MATRIX, NODES, {**SETTINGS, "repeats": 1}, None, hosts)}
    assert by_name["cross-node-tcp-4"]["same_host"] is True
    assert by_name["cross-node-tcp-4"]["note"] == "cross-node, same host: the traffic never reaches a NIC"
    assert by_name["host-tcp-1"]["same_host"] is True
    assert by_name["same-node-tcp-1"]["same_host"] is None and by_name["same-node-tcp-1"]["note"] is None
    apart = commands.plan(MATRIX, NODES, {**SETTINGS, "repeats": 1}, None, {"a": "pve1", "b": "pve2"})
    assert {t["same_host"] for t in apart if t["placement"] != "same-node"} == {False}
    unknown = commands.plan(MATRIX, NODES, {**SETTINGS, "repeats": 1}, None, {"a": "pve1", "b": None})
    assert {t["same_host"] for t in unknown} == {None}


def test_the_planner_imports_no_transport():
    """matrix.py plans; the command lines (commands.py) and the transports are handed to it."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from ansible_collections.netlab.lab.plugins.plugin_utils.plan "
         "import matrix; print(' '.join(m for m in sys.modules if '.plugin_utils.' in m))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ).stdout.split()
    # The auto repeats' rule (repeats.py) and the statistics it stands on (stdlib only), nothing else.
    assert sorted(loaded) == ["ansible_collections.netlab.lab.plugins.plugin_utils.plan",
                              "ansible_collections.netlab.lab.plugins.plugin_utils.plan.matrix",
                              "ansible_collections.netlab.lab.plugins.plugin_utils.plan.repeats",
                              "ansible_collections.netlab.lab.plugins.plugin_utils.report",
                              "ansible_collections.netlab.lab.plugins.plugin_utils.report.stats"]


@pytest.mark.parametrize(("candidates", "hosts", "chosen"), [
    (["a1", "a2", "a3", "s1"], {"a1": "pve1", "a2": "pve1", "a3": "pve2", "s1": "pve3"}, ["a1", "a3"]),
    (["a1", "a2", "s1"], {"a1": "pve1", "a2": "pve1", "s1": "pve2"}, ["a1", "s1"]),  # agents first, then servers
    (["a1", "a2", "a3"], {"a1": "pve1", "a2": "pve2", "a3": "pve3"}, ["a1", "a2"]),
    (["a1", "a2", "a3"], {"a1": "pve1", "a2": "pve1", "a3": "pve1"}, ["a1", "a2"]),  # one host: as before
    (["a1", "a2", "a3"], {}, ["a1", "a2"]),  # hosts unknown (the local lab)
    (["a1", "a2", "a3"], {"a1": "pve1", "a2": None, "a3": "pve2"}, ["a1", "a3"]),
    (["s1"], {}, ["s1"]),
])
def test_the_pair_runs_on_two_machines_where_it_can(candidates, hosts, chosen):
    assert matrix.pair(candidates, hosts) == chosen


MESH_NODES = [{"name": name, "ip": f"198.18.0.{12 + i}",
               "pods": [{"name": "pod0", "ip": f"198.19.{2 + i}.10"}, {"name": "pod1", "ip": f"198.19.{2 + i}.11"}]}
              for i, name in enumerate(["a", "b", "c", "d"])]


def test_a_mesh_runs_each_cross_node_test_for_every_ordered_pair_one_pair_at_a_time():
    tests = commands.plan(MATRIX, MESH_NODES, {**SETTINGS, "repeats": 2, "mesh": True})
    # Per round: host and same-node once, each cross-node entry for the 12 ordered pairs of 4 nodes.
    assert len(tests) == 2 * (2 + 2 * 12)
    assert len({t["id"] for t in tests}) == len(tests)
    first_round = [t for t in tests if t["repeat"] == 1 and t.get("mesh", {}).get("test") == "cross-node-tcp-4"]
    assert [(t["client"]["host"], t["server"]["host"]) for t in first_round] == [
        ("a", "b"), ("a", "c"), ("a", "d"), ("b", "a"), ("b", "c"), ("b", "d"),
        ("c", "a"), ("c", "b"), ("c", "d"), ("d", "a"), ("d", "b"), ("d", "c")]
    pair = first_round[5]
    assert pair["scenario"] == "cross-node-tcp-4@b_d" and pair["id"] == "0007-cross-node-tcp-4@b_d-r1"
    assert pair["mesh"] == {"test": "cross-node-tcp-4", "client": "b", "server": "d"}
    assert pair["server"]["ip"] == "198.19.5.10" and pair["client"]["pod"] == "pod0"
    assert matrix.TEST_ID.match(pair["id"]).group("scenario") == "cross-node-tcp-4@b_d"
    # The other placements run between the first two nodes as without the mesh; rounds stay interleaved.
    host = [t for t in tests if t["scenario"] == "host-tcp-1"]
    assert [(t["client"]["host"], t["server"]["host"], t["repeat"]) for t in host] == [("a", "b", 1), ("a", "b", 2)]


def test_the_plan_says_how_long_a_mesh_takes():
    tests = commands.plan(MATRIX, MESH_NODES, {**SETTINGS, "repeats": 1, "mesh": True})
    assert repeats.span(tests, {**SETTINGS, "repeats": 1})["msg"] == (
        "The plan: 26 tests, 14 min of tests. The mesh of 4 nodes runs each cross-node test for 12 ordered pairs "
        "(24 of the tests).")


def test_a_mesh_needs_three_nodes():
    with pytest.raises(matrix.MatrixError, match="bench_mesh needs three or more benchmark nodes, got 2: a, b"):
        commands.plan(MATRIX, NODES, {**SETTINGS, "mesh": True})
