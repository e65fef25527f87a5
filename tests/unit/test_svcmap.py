"""netlab-svcmap (roles/lab_cni/files): the benchmark's Services in the socket LB maps, through the codec."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bpf_maps import create, dump

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb

FILES = Path(__file__).parents[2] / "roles/lab_cni/files"


@pytest.fixture(scope="module")
def svcmap():
    """The helper, importing the codec as it does on a node (installed beside it as netlab_sock_lb)."""
    sys.modules["netlab_sock_lb"] = sock_lb
    try:
        loader = importlib.machinery.SourceFileLoader("netlab_svcmap", str(FILES / "netlab-svcmap"))
        spec = importlib.util.spec_from_loader("netlab_svcmap", loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        yield module
    finally:
        del sys.modules["netlab_sock_lb"]


def test_the_helpers_are_executable():
    """lab_cni installs them with the modes their executable bits give (the packed archive's --mode)."""
    for name in ("netlab-datapath", "netlab-svcmap", "netlab-counters"):
        assert os.access(FILES / name, os.X_OK), name


def u32(value: int) -> bytes:
    return value.to_bytes(4, sys.byteorder)


def shell_digest(text: str) -> str:
    """common.sh's digest(), run by bash: the chain names' hash (kube-proxy.sh, kube-proxy-nft.sh)."""
    script = f'source {FILES}/datapath/common.sh; digest "$1"'
    return subprocess.run(["bash", "-c", script, "bash", text], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_benchmark_ids_are_the_digest_with_the_top_bit(svcmap):
    # The id the datapath script gave before the codec did: $(( 0x<first 8 of digest> | 0x80000000 )).
    for name, port, proto in (("iperf3-cross", "5201", "tcp"), ("web", "80", "udp")):
        expected = int(shell_digest(f"{name}/{port}/{proto}")[:8], 16) | 0x80000000
        assert sock_lb.benchmark_service_id(name, port, proto) == expected
        assert not sock_lb.is_scenario_id(expected)
    assert sock_lb.benchmark_service_id("iperf3-cross", "5201", "tcp") == 0xFD6E9EC4


def test_entries_of_a_service_with_two_backends(svcmap):
    service, slots = svcmap.entries("web", "198.18.128.80", "80", "udp", ["198.19.3.10:8080", "198.19.1.11:53"])
    sid = sock_lb.benchmark_service_id("web", "80", "udp")
    assert service == (bytes([198, 18, 128, 80, 0, 80, 17, 0]), u32(sid) + u32(2))
    to_service = bytes([198, 18, 128, 80, 0, 80, 0, 0])
    assert slots == [(u32(sid) + u32(0), bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0]), to_service),
                     (u32(sid) + u32(1), bytes([198, 19, 1, 11, 0, 53, 0, 0]), to_service)]


@pytest.mark.parametrize(("argv", "message"), [
    (["add", "web", "198.18.128.80", "80", "tcp"], "usage: netlab-svcmap"),
    (["put", "web", "198.18.128.80", "80", "tcp", "198.19.3.10:80"], "usage: netlab-svcmap"),
    (["add", "web", "198.18.128.80", "80", "sctp", "198.19.3.10:80"], "unknown protocol sctp"),
    (["add", "web", "198.18.128", "80", "tcp", "198.19.3.10:80"], "Expected 4 octets"),
])
def test_bad_arguments_write_nothing(svcmap, capsys, tmp_path, argv, message):
    assert svcmap.main(argv, pins=str(tmp_path)) == 2
    assert message in capsys.readouterr().err


def test_add_then_del_as_bpftool_reads_the_maps(svcmap, bpffs):
    args = ["web", "198.18.128.80", "80", "tcp", "198.19.3.10:8080", "198.19.1.11:8080"]
    assert svcmap.main(["add", *args], pins=str(bpffs)) == 0
    sid = sock_lb.benchmark_service_id("web", "80", "tcp")
    assert dump(bpffs / "netlab_services") == {bytes([198, 18, 128, 80, 0, 80, 6, 0]): u32(sid) + u32(2)}
    assert dump(bpffs / "netlab_backends") == {u32(sid) + u32(0): bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0]),
                                               u32(sid) + u32(1): bytes([198, 19, 1, 11, 0x1F, 0x90, 0, 0])}
    to_service = bytes([198, 18, 128, 80, 0, 80, 0, 0])
    assert dump(bpffs / "netlab_revnat") == {bytes([198, 19, 3, 10, 0x1F, 0x90, 0, 0]): to_service,
                                             bytes([198, 19, 1, 11, 0x1F, 0x90, 0, 0]): to_service}
    assert svcmap.main(["del", *args], pins=str(bpffs)) == 0
    assert all(dump(bpffs / name) == {} for name in sock_lb.SOCK_LB_MAPS)
    # Deleting what is gone already is no error (service-del after a rebuilt datapath).
    assert svcmap.main(["del", *args], pins=str(bpffs)) == 0


def test_a_map_of_another_layout_is_refused(svcmap, bpffs, capsys):
    (bpffs / "netlab_revnat").unlink()
    create(bpffs, "netlab_revnat", key=4, value=8)
    assert svcmap.main(["add", "web", "198.18.128.80", "80", "tcp", "198.19.3.10:8080"], pins=str(bpffs)) == 1
    assert "(4, 8) byte keys and values" in capsys.readouterr().err
    assert dump(bpffs / "netlab_services") == {}
