"""netperf's request/response tests and node CPU: planning for both transports, parsing real output
(tests/data/netperf-*, raw-cilium-model-*: see SOURCES.md), CPU readings and the reports."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from test_matrix import NODES, SETTINGS

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, inputs, matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.report import compare, compare_render, raw, run_report
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import cpu, kube_objects, kube_read, proof

RR = [
    {"name": "host-tcp-1", "placement": "host"},
    {"name": "host-tcp-rr", "placement": "host", "protocol": "tcp_rr"},
    {"name": "cross-node-tcp-rr", "placement": "cross-node", "protocol": "tcp_rr"},
    {"name": "same-node-udp-rr", "placement": "same-node", "protocol": "udp_rr", "size": 64},
    {"name": "cross-node-tcp-crr", "placement": "cross-node", "protocol": "tcp_crr"},
]
SELECTORS = ",".join(commands.NETPERF_SELECTORS)


def netperf_doc(data_dir, name: str, **extra) -> dict:
    return {"tool": "netperf", "output": (data_dir / f"netperf-{name}.txt").read_text(), "rc": 0, **extra}


@pytest.mark.parametrize(("entry", "message"), [
    ({"protocol": "tcp_rr", "streams": 4}, "t: streams apply to iperf3 tests (tcp, udp); a tcp_rr test is one netperf"),
    ({"protocol": "udp_rr", "reverse": True}, "t: reverse apply to iperf3 tests"),
    ({"protocol": "udp_rr", "length": 100}, "t: length apply to iperf3 tests"),
    ({"protocol": "tcp_crr", "size": 0}, "t: size must be an integer from 1 to 65507"),
    ({"protocol": "tcp_rr", "size": "64"}, "t: size must be an integer from 1 to 65507 (bytes of each request"),
    ({"protocol": "tcp", "size": 64}, "t: size applies to tcp_rr, udp_rr, tcp_crr tests only"),
    ({"protocol": "sctp_rr"}, "t: protocol 'sctp_rr' is not one of tcp, udp, tcp_rr, udp_rr, tcp_crr"),
])
def test_bad_netperf_entries_are_named(entry, message):
    with pytest.raises(matrix.MatrixError, match=re.escape(message)):
        matrix.normalize_entry({"name": "t", "placement": "cross-node", **entry})


def test_netperf_command_line_as_cilium_connectivity_perf_runs_it():
    entry = matrix.normalize_entry({"name": "t", "placement": "cross-node", "protocol": "udp_rr"})
    assert entry["size"] == 1 and matrix.tool(entry["protocol"]) == "netperf"
    assert commands.client_argv(entry, "198.19.3.10", SETTINGS) == [
        "netperf", "-P", "0", "-H", "198.19.3.10", "-p", "12865", "-l", "30", "-t", "UDP_RR", "--",
        "-r", "1,1", "-P", ",12866", "-k", SELECTORS]
    sized = matrix.normalize_entry({"name": "t", "placement": "host", "protocol": "tcp_crr", "size": 512})
    argv = commands.client_argv(sized, "10.0.0.1", {**SETTINGS, "netperf_port": 13000})
    assert argv[argv.index("-p") + 1] == "13000" and argv[argv.index("-t") + 1] == "TCP_CRR"
    assert argv[argv.index("--") + 1:argv.index("-k")] == ["-r", "512,512", "-P", ",13001"]
    # Through a Service the data connection has a port of its own: netperf's TCP_CRR client ports start at
    # 5000 in every test, and a Service's DNAT entry must not share its reply tuple with a direct test's.
    service = matrix.normalize_entry({"name": "t", "placement": "service", "protocol": "tcp_crr"})
    assert commands.client_argv(service, "10.43.0.10", SETTINGS)[-4:-2] == ["-P", ",12868"]
    assert matrix.netperf_ports({"netperf_port": 13000}) == (13000, 13001, 13003)
    assert matrix.cpu_port({"netperf_port": 13000}) == 13002


def test_local_plan_runs_netperf_between_cpu_readings_and_starts_netserver_once():
    plan = {t["scenario"]: t for t in commands.plan(RR, NODES, {**SETTINGS, "repeats": 1})}
    cross = plan["cross-node-tcp-rr"]
    assert cross["tool"] == "netperf" and cross["size"] == 1
    assert cross["client_cmd"][:5] == ["sh", "-c", proof._AROUND, "netlab-counters", "198.18.0.13:12867"]
    assert cross["client_cmd"][5:12] == ["ip", "netns", "exec", "pod0", "timeout", "62", "netperf"]
    assert plan["same-node-udp-rr"]["cpu_peer"] is None and plan["same-node-udp-rr"]["size"] == 64
    servers = commands.servers(list(plan.values()), SETTINGS)
    assert [(s["host"], s["pod"], s["program"]) for s in servers] == [
        ("b", None, "iperf3"), ("b", None, "cpu"), ("b", None, "netserver"), ("b", "pod0", "netserver"),
        ("a", "pod1", "netserver")]
    script = servers[3]["argv"][-1]
    assert "setsid env NETLAB_BENCH_RUN=1 timeout 370 netserver -D -p 12865 " in script
    assert "echo $! > /run/netlab-netserver-pod0.pid" in script
    assert "ss -Hltn 'sport = :12865'" in script


def test_kubernetes_plan_execs_netperf_and_reads_the_server_pods_cpu():
    nodes = kube_read.placeholder_nodes(["n1", "n2"], [e["placement"] for e in RR])
    plan = {t["scenario"]: t for t in commands.plan(RR, nodes, {**SETTINGS, "repeats": 1}, {"namespace": "ns"})}
    crr = plan["cross-node-tcp-crr"]
    argv = shlex.split(crr["exec"]["command"])
    assert argv[:4] == cpu.around([])[:4]
    assert argv[4:] == ["timeout", "62", "netperf", "-P", "0", "-H", "POD_IP:iperf3-server-cross", "-p", "12865",
                        "-l", "30", "-t", "TCP_CRR", "--", "-r", "1,1", "-P", ",12866", "-k", SELECTORS]
    assert crr["cpu_pod"] == "iperf3-server-cross" and plan["host-tcp-rr"]["cpu_pod"] == "iperf3-server-host"


def test_kubernetes_pods_run_netserver_and_the_service_forwards_its_ports():
    docs = kube_objects.manifests("r", ["n1", "n2"], ["service", "host"], "img@sha256:" + "a" * 64, 5201, None, 12865)
    service = next(d for d in docs if d["kind"] == "Service")
    assert [(p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        (5201, "TCP"), (5201, "UDP"), (12865, "TCP"), (12866, "TCP"), (12866, "UDP"), (12868, "TCP"), (12868, "UDP")]
    pod = next(d for d in docs if d["kind"] == "Pod")["spec"]["containers"][0]
    assert pod["command"] == ["sh", "-c", "netserver -p 12865 && exec iperf3 --server --port 5201"]
    assert [p["containerPort"] for p in pod["ports"]] == [5201, 5201, 12865, 12866, 12866, 12868, 12868]
    plain = kube_objects.manifests("r", ["n1", "n2"], ["host"], "img@sha256:" + "a" * 64, 5201)
    assert plain[-1]["spec"]["containers"][0]["command"] == ["iperf3", "--server", "--port", "5201"]


def test_netperf_port_inputs():
    assert inputs.problems({"netperf_port": 70000, "matrix": RR}) == [
        "bench_netperf_port must be an integer from 1 to 65532, got 70000"]
    assert "bench_iperf3_port 12866 is one of the ports" in inputs.problems(
        {"iperf3_port": 12866, "netperf_port": 12865, "matrix": RR})[0]
    assert "12865-12868): choose ports apart" in inputs.problems(
        {"iperf3_port": 12868, "netperf_port": 12865, "matrix": RR})[0]
    assert inputs.problems({"iperf3_port": 12869, "netperf_port": 12865, "matrix": RR}) == []
    assert inputs.problems({"port": 5201, "netperf_port": 0, "matrix": RR}) == [
        "bench_netperf_port must be an integer from 1 to 65532, got 0"]
    with pytest.raises(matrix.MatrixError, match="setting port 12868 is one of netperf's"):
        commands.plan(RR, NODES, {**SETTINGS, "port": 12868})


@pytest.mark.parametrize(("name", "protocol", "rate"), [
    ("tcp_rr", "tcp", 51642.232), ("udp_rr", "udp", 65410.728), ("tcp_crr", "tcp", None)])
def test_netperf_output_captured_here(data_dir, name, protocol, rate):
    record = raw.parse_netperf(netperf_doc(data_dir, name))
    assert record["ok"] and record["tool"] == "netperf" and record["protocol"] == protocol
    assert record["request_size"] == record["response_size"] == 1 and record["elapsed_s"] == 2.0
    assert 0 < record["min_us"] <= record["p50_us"] <= record["p90_us"] <= record["p99_us"] <= record["max_us"]
    if rate:
        assert record["trans_per_s"] == pytest.approx(rate)
    assert record["cpu"] is None and record["counters"] is None


def test_a_refused_netperf_is_retried_then_kept_as_failed(data_dir):
    refused = json.loads((data_dir / "netperf-refused.json").read_text())
    assert matrix.retryable(refused["stdout"], refused["stderr"])
    doc = json.loads(raw.document(refused["stdout"], refused["stderr"], refused["rc"], tool="netperf"))
    assert doc["output"] == refused["stdout"] and doc["rc"] == 255
    record = raw.parse_raw(doc)
    assert not record["ok"] and record["error"].startswith("netperf failed (exit 255): establish control")
    assert raw.parse_netperf({"tool": "netperf", "output": "P50_LATENCY=3\n", "rc": 0})["error"].startswith(
        "netperf printed no TRANSACTION_RATE")


def test_raw_files_of_the_lab_keep_netperf_counters_and_both_ends_cpu(data_dir):
    doc = json.loads((data_dir / "raw-cilium-model-service-tcp-crr.json").read_text())
    record = raw.parse_raw(doc)
    assert record["ok"] and record["trans_per_s"] == pytest.approx(7791.634, rel=1e-6)
    assert proof.check("cilium", "service", record["counters"])["contradictions"] == []
    used = record["cpu"]
    # The local lab's nodes are containers of one machine: one kernel, counted once.
    assert used["shared_kernel"] and used["client"]["boot_id"] == used["server"]["boot_id"]
    assert used["total"]["busy_s"] == used["client"]["busy_s"] > 0
    assert record["cpu_per_unit"] == pytest.approx(used["total"]["busy_s"] / (record["trans_per_s"] * 2 / 1000))
    stream = raw.parse_raw(json.loads((data_dir / "raw-cilium-model-cross-node-tcp-1.json").read_text()))
    assert stream["cpu_per_unit"] == pytest.approx(stream["cpu"]["total"]["busy_s"] / (stream["gbps"] * 2))


READING = "72c49dc8-f837-4443-b490-0b4b83a13a96 100.00 cpu  1000 10 500 9000 5 0 200 1 0 0"


def reading(boot: str = "72c49dc8-f837-4443-b490-0b4b83a13a96", uptime: float = 102.0, add: int = 100) -> str:
    return f"{boot} {uptime:.2f} cpu  {1000 + add} 10 {500 + add} 9000 5 0 {200 + add} 1 0 0"


def test_cpu_seconds_by_mode_and_kernels_counted_once():
    one = cpu.usage({"client": {"before": READING, "after": reading()},
                     "server": {"before": READING, "after": reading(add=50)}})
    assert one["shared_kernel"] and one["client"] == {
        "boot_id": "72c49dc8-f837-4443-b490-0b4b83a13a96", "window_s": 2.0, "user_s": 1.0, "system_s": 1.0,
        "softirq_s": 1.0, "busy_s": 3.0}
    assert one["total"]["busy_s"] == 3.0
    other = READING.replace("72c49dc8", "0000aaaa")
    two = cpu.usage({"client": {"before": READING, "after": reading()},
                     "server": {"before": other, "after": reading(boot="0000aaaa-f837-4443-b490-0b4b83a13a96",
                                                                  add=50)}})
    assert two["shared_kernel"] is False and two["total"]["busy_s"] == 4.5 and two["total"]["user_s"] == 1.5
    # No server reading: the client's alone, and not said to be one kernel.
    alone = cpu.usage({"client": {"before": READING, "after": reading()}})
    assert alone["server"] is None and alone["shared_kernel"] is None and alone["total"]["busy_s"] == 3.0
    # A reboot between the readings, or no reading: no figure.
    assert cpu.usage({"client": {"before": READING, "after": reading(boot="x")}}) is None
    assert cpu.usage(None) is None and cpu.parse_reading("cpu 1 2") is None


def test_the_wrappers_read_this_machines_proc_stat():
    done = subprocess.run(cpu.around(["true"]), capture_output=True, text=True, check=True)
    readings, clocks, rest = cpu.split_stderr(done.stderr)
    assert rest == "" and len(readings["client"]) == 2 and len(clocks) == 2 and clocks[0] <= clocks[1]
    assert cpu.usage(raw.cpu_section(readings))["client"]["window_s"] >= 0
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert cpu.parse_reading(readings["client"][0])["boot_id"] == boot_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_nodes_reader_answers_the_client_wrapper():
    """The local transport's reader (started with the servers) and the wrapper's remote read, for real."""
    port = free_port()
    # In a session of its own, killed as a group: sh starts python3, which would outlive sh alone.
    reader = subprocess.Popen(["sh", "-c", cpu.reader_command(port)], start_new_session=True)
    try:
        for _ in range(50):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            subprocess.run(["sleep", "0.1"], check=True)
        done = subprocess.run(proof.around(["true"], f"127.0.0.1:{port}"), capture_output=True, text=True)
    finally:
        os.killpg(reader.pid, signal.SIGKILL)
        reader.wait()
    readings, _, _ = cpu.split_stderr(done.stderr)
    assert len(readings["server"]) == 2 and len(readings["client"]) == 2
    assert cpu.usage(raw.cpu_section(readings))["shared_kernel"] is True


def rr_run(tmp_path, data_dir):
    """A run of the lab's raw files: an iperf3 and a netperf test on the host and across nodes."""
    lab = {name: json.loads((data_dir / f"raw-cilium-model-{name}.json").read_text())
           for name in ("cross-node-tcp-rr", "service-tcp-crr", "cross-node-tcp-1")}
    host_rr = {**lab["cross-node-tcp-rr"], "output": (data_dir / "netperf-tcp_rr.txt").read_text()}
    tests = [("0001-host-tcp-rr-r1", "host-tcp-rr", "host", "tcp_rr", host_rr),
             ("0002-cross-node-tcp-rr-r1", "cross-node-tcp-rr", "cross-node", "tcp_rr", lab["cross-node-tcp-rr"]),
             ("0003-service-tcp-crr-r1", "service-tcp-crr", "service", "tcp_crr", lab["service-tcp-crr"]),
             ("0004-cross-node-tcp-1-r1", "cross-node-tcp-1", "cross-node", "tcp", lab["cross-node-tcp-1"])]
    plan = [{"id": i, "scenario": s, "placement": p, "protocol": proto, "streams": 1,
             "tool": matrix.tool(proto), "size": 1 if proto != "tcp" else None} for i, s, p, proto, _ in tests]
    (tmp_path / "raw").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "provider": "local", "cni": "cilium",
                                                   "settings": {"duration": 2}, "plan": plan}))
    for test_id, *_, doc in tests:
        (tmp_path / "raw" / f"{test_id}.json").write_text(json.dumps(doc))
    return tmp_path


def test_reports_give_latency_rate_cpu_and_the_pod_host_ratio(tmp_path, data_dir):
    summary, problems = run_report.write_reports(rr_run(tmp_path, data_dir), charts=True)
    assert problems == []
    by_name = {r["scenario"]: r for r in summary["results"]}
    rr = by_name["cross-node-tcp-rr"]
    assert (rr["tool"], rr["p50_us"], rr["p90_us"], rr["p99_us"], rr["mean_us"]) == ("netperf", 22, 23, 282, 34.99)
    assert rr["trans_per_s_median"] == rr["trans_per_s_min"] == pytest.approx(28547.101)
    assert rr["gbps_median"] is None and rr["conn_per_s_median"] is None and rr["cpu_ends"] == "one kernel"
    # Against the host TCP_RR of the same run: rate and p50 latency.
    assert rr["host_scenario"] == "host-tcp-rr"
    assert rr["host_ratio"] == pytest.approx(28547.101 / 51642.232)
    assert rr["host_ratio_p50"] == pytest.approx(22 / by_name["host-tcp-rr"]["p50_us"])
    crr = by_name["service-tcp-crr"]
    assert crr["conn_per_s_median"] == crr["trans_per_s_median"] and crr["host_scenario"] is None
    assert crr["cpu_per_1k_trans"] > 0 and by_name["cross-node-tcp-1"]["cpu_per_gbit"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "## Latency and transaction rate (netperf)" in report and "![netperf latency per test" in report
    assert "| cross-node-tcp-rr | cross-node | TCP_RR | 1 | 1/1 | 22 | 23 | 282 | 35.0 | 28547 |" in report
    assert "## Node CPU during each test" in report and "| service-tcp-crr | one kernel |" in report
    assert (tmp_path / "latency.svg").stat().st_size > 0 and (tmp_path / "throughput.svg").stat().st_size > 0
    assert "p50_us" in (tmp_path / "summary.csv").read_text().splitlines()[0]
    text = run_report.render_text(summary)
    assert "TCP_CRR" in text and "0.55x" in text and "1.57x" in text


def test_one_console_line_per_netperf_test(data_dir):
    test = {"index": 4, "total": 19, "scenario": "cross-node-tcp-rr", "repeat": 1, "protocol": "tcp_rr"}
    text = (data_dir / "raw-cilium-model-cross-node-tcp-rr.json").read_text()
    assert raw.test_line(test, text) == "4/19 cross-node-tcp-rr r1: tcp_rr p50 22 us, p99 282 us, 28.5k trans/s"
    crr = {**test, "scenario": "service-tcp-crr", "protocol": "tcp_crr"}
    assert raw.test_line(crr, (data_dir / "raw-cilium-model-service-tcp-crr.json").read_text()).endswith(
        "7.8k conn/s")


def test_the_comparison_puts_latency_rate_and_cpu_side_by_side(tmp_path, data_dir):
    summary, _ = run_report.write_reports(rr_run(tmp_path, data_dir), charts=False)
    other = json.loads(json.dumps(summary))
    other.update(run_id="c", cni="canal")
    for result in other["results"]:
        if result["tool"] == "netperf":
            result["p50_us"] *= 2
            result["trans_per_s_median"] /= 2
    comparison = compare.compare([other, summary])
    row = next(r for r in comparison["rows"] if r["scenario"] == "cross-node-tcp-rr")
    assert row["tool"] == "netperf" and row["runs"][1]["change_percent"] == pytest.approx(100.0)
    header, rows = compare_render.run_table(comparison, "netperf", compare_render.text_cell)
    assert header == ["test (trans/s)", "canal", "cilium"]
    assert rows[1] == ["cross-node-tcp-rr", "14274", "28547 (+100.0 %?)"]
    iperf3_rows = compare_render.run_table(comparison, "iperf3", compare_render.text_cell)[1]
    assert [r[0] for r in iperf3_rows] == ["cross-node-tcp-1"]
    markdown = compare_render.render_markdown(comparison)
    assert "## Latency and transaction rate (netperf, trans/s)" in markdown
    assert "| cross-node-tcp-rr | 14274 [-], p50/p99 44/282 us | 28547 [-], +100.0 %?, " in markdown
