"""Service scale model: rule text, BPF map entries and bpf(2), counts, statistics, probes and reports."""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from bpf_maps import create, dump, update

from ansible_collections.netlab.lab.plugins.module_utils import service_scale, sock_lb
from ansible_collections.netlab.lab.plugins.plugin_utils.report import scale_report

CIDR = "10.43.0.0/16"


def test_service_addresses_skip_the_first_256():
    assert service_scale.vip(CIDR, 0) == "10.43.1.0"
    assert service_scale.vip(CIDR, 300) == "10.43.2.44"
    assert service_scale.capacity(CIDR) == 65536 - 258
    assert service_scale.capacity("10.43.0.0/24") == 0


def test_counts_are_sorted_and_unique():
    assert service_scale.check_counts([1000, 0, 1000], CIDR, 30000) == [0, 1000]


@pytest.mark.parametrize(
    ("counts", "cidr", "limit", "message"),
    [
        ([], CIDR, 30000, "is empty"),
        ([-1, 5], CIDR, 30000, r"non-negative integers, got \[-1\]"),
        ([True], CIDR, 30000, "non-negative integers"),
        (["10"], CIDR, 30000, "non-negative integers"),
        ([0, 40000], CIDR, 30000, r"\[40000\] exceed .*service_scale_max_services is 30000"),
        ([500], "10.43.0.0/23", 30000, r"10.43.0.0/23 holds 254 Services"),
    ],
)
def test_bad_counts(counts, cidr, limit, message):
    with pytest.raises(service_scale.ScaleError, match=message):
        service_scale.check_counts(counts, cidr, limit)


def test_iptables_full_load_declares_every_chain():
    text = service_scale.iptables_services(2, CIDR, "198.19.3.10", 8080, range(2))
    assert text.splitlines() == [
        "*nat",
        ":NETLAB-SERVICES - [0:0]",
        ":NETLAB-SVC-0 - [0:0]",
        ":NETLAB-SVC-1 - [0:0]",
        "-A NETLAB-SERVICES -d 10.43.1.0/32 -p tcp -m tcp --dport 80 -j NETLAB-SVC-0",
        "-A NETLAB-SERVICES -d 10.43.1.1/32 -p tcp -m tcp --dport 80 -j NETLAB-SVC-1",
        "-A NETLAB-SVC-0 -p tcp -j DNAT --to-destination 198.19.3.10:8080",
        "-A NETLAB-SVC-1 -p tcp -j DNAT --to-destination 198.19.3.10:8080",
        "COMMIT",
    ]


def test_iptables_update_rewrites_the_services_chain_and_adds_one_chain():
    lines = service_scale.iptables_services(3, CIDR, "198.19.3.10", 8080, range(2, 3)).splitlines()
    assert [line for line in lines if line.startswith(":")] == [":NETLAB-SERVICES - [0:0]", ":NETLAB-SVC-2 - [0:0]"]
    assert sum(line.startswith("-A NETLAB-SERVICES ") for line in lines) == 3
    dnat = [line for line in lines if "DNAT" in line]
    assert dnat == ["-A NETLAB-SVC-2 -p tcp -j DNAT --to-destination 198.19.3.10:8080"]


def test_nftables_load_then_one_more_service_as_kube_proxy_s_nftables_mode():
    full = service_scale.nftables_services(CIDR, "198.19.3.10", 8080, range(2))
    one = service_scale.nftables_services(CIDR, "198.19.3.10", 8080, range(2, 3))
    assert "add map ip netlab-services service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }" in full
    assert f"{service_scale.vip(CIDR, 1)} . tcp . 80 : goto NETLAB-SVC-1" in full
    # One more Service: its chain and its element, nothing of the others, no table.
    assert one.splitlines() == [
        "add chain ip netlab-services NETLAB-SVC-2",
        "add rule ip netlab-services NETLAB-SVC-2 meta l4proto tcp dnat to 198.19.3.10:8080",
        f"add element ip netlab-services service-ips {{ {service_scale.vip(CIDR, 2)} . tcp . 80 : goto NETLAB-SVC-2 }}"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
                    reason="loads the rules into a network namespace of its own: root, nft and unshare")
def test_nftables_rules_load_into_a_kernel():
    script = "nft -f \"$1\" && nft -f \"$2\" && nft -j list map ip netlab-services service-ips"
    with tempfile.TemporaryDirectory() as tmp:
        full, one = Path(tmp, "full.nft"), Path(tmp, "one.nft")
        full.write_text(service_scale.nftables_services(CIDR, "198.19.3.10", 8080, range(3)))
        one.write_text(service_scale.nftables_services(CIDR, "198.19.3.10", 8080, range(3, 4)))
        listed = subprocess.run(["unshare", "--net", "sh", "-c", script, "sh", str(full), str(one)],
                                capture_output=True, text=True, check=True).stdout
    [found] = [item["map"] for item in json.loads(listed)["nftables"] if "map" in item]
    assert len(found["elem"]) == 4


def test_iptables_cleanup_from_real_iptables_save(data_dir):
    saved = (data_dir / "iptables-save-scale.txt").read_text()
    lines = service_scale.iptables_cleanup(saved).splitlines()
    assert lines[:3] == ["*nat", "-D PREROUTING -j NETLAB-SERVICES", "-D OUTPUT -j NETLAB-SERVICES"]
    assert "-X NETLAB-SVC-2" in lines and "-X NETLAB-SERVICES" in lines
    # The lab's own masquerade chain is not ours.
    assert not any("NETLAB-MASQ" in line for line in lines)
    assert lines[-1] == "COMMIT"


def test_iptables_cleanup_without_our_chains():
    assert service_scale.iptables_cleanup("*nat\n:PREROUTING ACCEPT [0:0]\n:NETLAB-MASQ - [0:0]\nCOMMIT\n") is None


def test_nft_guard_resets_tcp_to_the_service_cidr():
    text = service_scale.nft_guard(CIDR)
    assert "table ip netlab-services-guard" in text
    assert f"ip daddr {CIDR} meta l4proto tcp reject with tcp reset; ip daddr {CIDR} drop;" in text


def u32(value: int) -> bytes:
    """A host-order field as the BPF programs read it (little-endian on x86_64)."""
    return value.to_bytes(4, sys.byteorder)


def test_service_map_entries_match_sock_lb_layout():
    # struct service_key {be32 address; be16 port; u8 protocol; u8 pad}
    assert sock_lb.service_key("10.43.1.0", 80) == bytes([10, 43, 1, 0, 0, 80, 6, 0])
    assert sock_lb.service_key("10.43.1.0", 53, 17)[-2:] == bytes([17, 0])
    # struct service {u32 id; u32 backends}
    assert sock_lb.service_value(0x01020304, 1) == u32(0x01020304) + u32(1)
    assert sock_lb.service_value_id(sock_lb.service_value(7, 1)) == 7
    # struct backend_key {u32 id; u32 slot}, struct address {be32 address; be16 port; u16 pad}
    assert sock_lb.backend_key(7, 0) == u32(7) + u32(0)
    assert sock_lb.backend_key_id(sock_lb.backend_key(7, 3)) == 7
    assert sock_lb.address_value("198.19.3.10", 8080) == bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0])


def test_scenario_ids_never_have_the_benchmark_bit():
    assert sock_lb.service_id(0) == 1
    assert sock_lb.service_id(65000) == 65001
    assert sock_lb.is_scenario_id(sock_lb.service_id(65000))
    # netlab-datapath service-add: the digest's first 32 bits with the top bit set.
    assert not sock_lb.is_scenario_id(0x80000000 | 0x1234)
    with pytest.raises(sock_lb.MapError, match="no id outside the benchmark's"):
        sock_lb.service_id(0x7FFFFFFF)


def test_bpf_attr_layouts():
    elem = sock_lb.elem_attr(5, 0x1111, 0x2222, 3)
    # u32 map_fd, 4 bytes of padding to the aligned u64 key, u64 value, u64 flags.
    assert len(elem) == 32
    assert struct.unpack("=I4xQQQ", elem) == (5, 0x1111, 0x2222, 3)
    assert elem[4:8] == bytes(4)
    obj = sock_lb.obj_get_attr(0x3333)
    assert len(obj) == 16 and struct.unpack("=QII", obj) == (0x3333, 0, 0)
    info = sock_lb.info_attr(5, 0x4444, 24)
    assert struct.unpack("=IIQ", info) == (5, 24, 0x4444)
    map_info = struct.pack("=IIIIII", 1, 99, 8, 16, 64, 0) + bytes(16)
    assert sock_lb.map_sizes(map_info) == (8, 16)


def test_service_maps_written_with_bpf_syscalls(bpffs):
    pins = bpffs
    with service_scale.ServiceMaps(str(pins)) as maps:
        maps.add(CIDR, 0, "198.19.3.10", 8080)
        maps.add(CIDR, 300, "198.19.3.10", 8080)
    assert dump(pins / "netlab_services") == {
        bytes([10, 43, 1, 0, 0, 80, 6, 0]): u32(1) + u32(1),
        bytes([10, 43, 2, 44, 0, 80, 6, 0]): u32(301) + u32(1),
    }
    assert dump(pins / "netlab_backends") == {
        u32(1) + u32(0): bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0]),
        u32(301) + u32(0): bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0]),
    }


def test_removal_takes_exactly_the_scenario_entries(bpffs):
    pins = bpffs
    services, backends = pins / "netlab_services", pins / "netlab_backends"
    # A benchmark Service as netlab-datapath service-add writes it, and an interrupted run's
    # backend slot whose Service was never written.
    benchmark = (sock_lb.service_key("198.18.128.10", 5201), sock_lb.service_value(0x80001234, 1))
    update(services, *benchmark)
    update(backends, sock_lb.backend_key(0x80001234, 0), sock_lb.address_value("198.19.3.10", 5201))
    update(backends, sock_lb.backend_key(9, 0), sock_lb.address_value("198.19.3.10", 8080))
    with service_scale.ServiceMaps(str(pins)) as maps:
        for index in range(3):
            maps.add(CIDR, index, "198.19.3.10", 8080)
        assert len(maps.services.all_keys()) == 4
        assert maps.remove_scenario() == 3 + 4
        assert maps.remove_scenario() == 0
    assert dump(services) == dict([benchmark])
    assert list(dump(backends)) == [sock_lb.backend_key(0x80001234, 0)]


def test_service_maps_refuse_a_missing_or_foreign_map(bpffs, tmp_path):
    pins = bpffs
    with pytest.raises(service_scale.ScaleError, match="does not run the Cilium model's socket LB"):
        service_scale.ServiceMaps(str(tmp_path))
    (pins / "netlab_backends").unlink()
    create(pins, "netlab_backends", key=4, value=8)
    with pytest.raises(sock_lb.MapError, match=r"\(4, 8\) byte keys and values"):
        service_scale.ServiceMaps(str(pins))
    with pytest.raises(FileNotFoundError):
        sock_lb.BpfMap(str(pins / "netlab_nothing"), 8, 8)


def test_percentiles():
    stats = service_scale.percentiles([float(v) for v in range(1, 101)])
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 100.0, 50.5)
    assert service_scale.percentiles([7.0])["p99"] == 7.0
    assert service_scale.percentiles([])["p50"] is None


@pytest.fixture
def echo_server():
    """A loopback server answering one byte, as the lab's backend."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                if conn.recv(1):
                    conn.sendall(b"y")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_connect_latencies_time_real_connections(echo_server):
    samples = service_scale.connect_latencies("127.0.0.1", echo_server, 20)
    assert len(samples) == 20
    assert all(0 < s < 1e6 for s in samples)


def test_first_answer_gives_up_at_the_deadline():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        with pytest.raises(TimeoutError, match="did not answer"):
            service_scale.first_answer("127.0.0.1", port, deadline=time.time() + 0.2)


def test_netns_task_returns_the_child_result_and_its_error(echo_server):
    task = service_scale.NetnsTask(None, service_scale.connect_latencies, "127.0.0.1", echo_server, 3)
    task.ready()
    assert len(task.result()) == 3
    with pytest.raises(RuntimeError, match="ConnectionRefusedError"):
        service_scale.NetnsTask(None, service_scale.connect_latencies, "127.0.0.1", 1, 1).result()
    with pytest.raises(RuntimeError, match="FileNotFoundError"):
        service_scale.NetnsTask("netlab-no-such-netns", service_scale.connect_latencies, "127.0.0.1", 1, 1).result()


def record(services: int, p50: float, update: float) -> dict:
    return {"model": "iptables", "services": services, "target": "x", "connections": 3,
            "latency_us": {"p50": p50, "p90": p50 + 10, "p99": p50 + 20, "mean": p50, "min": p50, "max": p50 + 30},
            "samples_us": [p50] * 3, "update_ms": update, "reachable_ms": update / 2}


def scale_run(root, name, cni, started, records, counts, model=None):
    run = root / name
    (run / "raw").mkdir(parents=True)
    model = model or {"canal": "iptables", "cilium": "bpf-socket-lb"}[cni]
    (run / "scale.json").write_text(json.dumps({
        "run_id": name, "kind": "service-scale", "provider": "local", "cni": cni, "model": model,
        "started": started, "counts": counts, "connections": 3, "service_cidr": CIDR,
        "client": {"node": "a", "pod": {"name": "pod0", "ip": "198.19.2.10"}},
        "backend": {"node": "b", "pod": {"name": "pod0", "ip": "198.19.3.10"}},
        "environment": {"kernel": "6.1", "vcpus": 2, "memtotal_mb": 4096}}))
    for rec in records:
        (run / "raw" / f"{rec['services']:05d}.json").write_text(json.dumps(rec))
    return run


def test_scale_report_of_one_run_marks_missing_and_corrupt_records(tmp_path):
    run = scale_run(tmp_path, "r1-canal-scale", "canal", "2026-01-01T00:00:00Z",
                    [record(1000, 300.0, 60.0), record(0, 200.0, 5.0)], [0, 1000, 5000])
    (run / "raw" / "00007.json").write_text("{not json")
    text, problems, both = scale_report.write_reports(run, charts=False)
    assert both is None
    assert any("00007.json" in p for p in problems)
    assert any("INCOMPLETE: no record for 5000 Services" in p for p in problems)
    table = [line.split() for line in text.splitlines() if line.startswith("canal ")]
    assert [row[2] for row in table] == ["0", "1000"]
    assert table[1][3] == "300.0" and table[1][6] == "60.00"
    assert "![" not in (run / "scale.md").read_text()
    assert (run / "scale.csv").read_text().splitlines()[2].startswith("r1-canal-scale,canal,iptables,1000,300.0")


def test_scale_report_puts_the_newest_run_of_each_cni_together(tmp_path):
    scale_run(tmp_path, "old-canal", "canal", "2026-01-01T00:00:00Z", [record(0, 999.0, 1.0)], [0])
    scale_run(tmp_path, "new-canal", "canal", "2026-01-02T00:00:00Z", [record(0, 250.0, 1.0)], [0])
    run = scale_run(tmp_path, "cilium", "cilium", "2026-01-03T00:00:00Z", [record(0, 150.0, 1.0)], [0])
    assert scale_report.newest_per_cni(tmp_path) == [tmp_path / "new-canal", tmp_path / "cilium"]
    text, _, both = scale_report.write_reports(run, charts=True)
    assert both == tmp_path / "comparisons" / "service-scale"
    assert {p.name for p in both.iterdir()} == {"scale.md", "scale.csv", "scale.png", "scale.svg"}
    assert "250.0" in text and "150.0" in text and "999.0" not in text


def test_the_nftables_curve_is_a_third_beside_the_cnis(tmp_path):
    scale_run(tmp_path, "canal", "canal", "2026-01-01T00:00:00Z", [record(0, 250.0, 1.0)], [0])
    scale_run(tmp_path, "cilium", "cilium", "2026-01-02T00:00:00Z", [record(0, 150.0, 1.0)], [0])
    run = scale_run(tmp_path, "canal-nftables", "canal", "2026-01-03T00:00:00Z", [record(0, 200.0, 1.0)], [0],
                    model="nftables")
    assert scale_report.newest_per_cni(tmp_path) == [tmp_path / "canal", tmp_path / "canal-nftables",
                                                     tmp_path / "cilium"]
    text, _, both = scale_report.write_reports(run, charts=False)
    assert [line.split()[:2] for line in text.splitlines() if line.startswith(("canal ", "cilium "))] == [
        ["canal", "iptables"], ["canal", "nftables"], ["cilium", "bpf-socket-lb"]]
    assert "nftables verdict map" in (both / "scale.md").read_text()


def test_a_directory_without_scale_json_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no readable scale\.json"):
        scale_report.load_scale_run(tmp_path)
