"""The node-pair mesh's report (report/mesh.py and its heatmap), from a run's own raw files: a plan with the mesh
(matrix.build_plan) and iperf3 results written as the runner writes them."""

import json
from pathlib import Path

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands
from ansible_collections.netlab.lab.plugins.plugin_utils.report import mesh, run_report

NODES = [{"name": name, "ip": f"198.18.0.{12 + i}", "pods": [{"name": "pod0", "ip": f"198.19.{2 + i}.10"}]}
         for i, name in enumerate(["netlab-agent-1", "netlab-agent-2", "netlab-agent-3"])]
SETTINGS = {"duration": 1, "omit": 0, "repeats": 1, "port": 5201, "timeout_margin": 30, "mesh": True}
MATRIX = [{"name": "cross-node-tcp-1", "placement": "cross-node"}]
# Gbit/s per (client, server): agent-3's link is slow both ways.
GBPS = {("netlab-agent-1", "netlab-agent-2"): 10.0, ("netlab-agent-2", "netlab-agent-1"): 9.6,
        ("netlab-agent-1", "netlab-agent-3"): 4.0, ("netlab-agent-3", "netlab-agent-1"): 4.4,
        ("netlab-agent-2", "netlab-agent-3"): 4.2, ("netlab-agent-3", "netlab-agent-2"): 3.0}


def iperf3_json(gbps: float) -> dict:
    """A real raw file of the lab (tests/data, SOURCES.md) with its end figures set to gbps."""
    raw = json.loads((Path(__file__).parents[1] / "data" / "raw-cilium-model-cross-node-tcp-1.json").read_text())

    def scale(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "bits_per_second":
                    node[key] = gbps * 1e9
                else:
                    scale(value)
        elif isinstance(node, list):
            for item in node:
                scale(item)

    scale(raw["end"])
    return raw


def write_run(tmp_path, hosts):
    plan = commands.plan(MATRIX, NODES, SETTINGS)
    run = tmp_path / "20261207T000000Z-cilium"
    (run / "raw").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "run_id": run.name, "provider": "proxmox", "transport": "local", "cni": "cilium", "settings": SETTINGS,
        "matrix": MATRIX, "plan": plan, "node_hosts": hosts, "started": "2026-12-07T00:00:00Z"}))
    for test in plan:
        gbps = GBPS[(test["mesh"]["client"], test["mesh"]["server"])]
        (run / "raw" / f"{test['id']}.json").write_text(json.dumps(iperf3_json(gbps)))
    return run


def test_the_matrix_names_the_slowest_pair_and_its_hosts(tmp_path):
    hosts = {"netlab-agent-1": "pve1", "netlab-agent-2": "pve1", "netlab-agent-3": "pve2"}
    summary, problems = run_report.write_reports(write_run(tmp_path, hosts), charts=True)
    assert problems == []
    (found,) = mesh.matrices(summary)
    assert found["nodes"] == ["netlab-agent-1", "netlab-agent-2", "netlab-agent-3"]
    assert round(found["median"], 6) == 4.3 and found["slowest"]["client"] == "netlab-agent-3"
    assert found["slowest"]["server"] == "netlab-agent-2" and found["slowest"]["hosts"] == ["pve2", "pve1"]
    assert found["same_host"] == [["netlab-agent-1", "netlab-agent-2"], ["netlab-agent-2", "netlab-agent-1"]]
    report = (tmp_path / "20261207T000000Z-cilium" / "report.md").read_text()
    assert "## Node-pair mesh" in report
    assert "| netlab-agent-1 |  | 10.00 (2.33x) * | 4.00 (0.93x) |" in report
    assert "Slowest pair: netlab-agent-3 -> netlab-agent-2, 3.00 Gbit/s, 0.70x the median, between pve2 and pve1." \
        in report
    assert "![cross-node-tcp-1: every ordered pair of nodes](mesh-cross-node-tcp-1.png)" in report
    for suffix in ("png", "svg"):
        assert (tmp_path / "20261207T000000Z-cilium" / f"mesh-cross-node-tcp-1.{suffix}").stat().st_size > 1000


def test_a_run_without_a_mesh_has_no_section():
    assert mesh.markdown({"results": [{"scenario": "host-tcp-1", "gbps_median": 1.0}]}) == []
