"""A run's charts: built from real iperf3 and netperf outputs, checked by what the figure holds, not its pixels."""

import json

import pytest
from matplotlib.collections import LineCollection

from ansible_collections.netlab.lab.plugins.plugin_utils.report import charts, raw
from ansible_collections.netlab.lab.plugins.plugin_utils.report import summary as run_summary

PLAN = [
    {"id": "0001-tcp-r1", "scenario": "cross-node-tcp-1", "placement": "cross-node", "protocol": "tcp", "streams": 1},
    {"id": "0002-udp-r1", "scenario": "cross-node-udp", "placement": "cross-node", "protocol": "udp", "streams": 1},
    {"id": "0003-udp-r1", "scenario": "udp-2x500m", "placement": "cross-node", "protocol": "udp", "streams": 2},
]
MATRIX = [{"name": "cross-node-tcp-1", "placement": "cross-node", "protocol": "tcp"},
          {"name": "cross-node-udp", "placement": "cross-node", "protocol": "udp"},
          {"name": "udp-2x500m", "placement": "cross-node", "protocol": "udp", "streams": 2, "bitrate": "500M"}]


def summary_of(records, plan=PLAN, **meta):
    return run_summary.summarize({"run_id": "r1", "provider": "local", "cni": "cilium", "matrix": MATRIX,
                              "settings": {"udp_bitrate": "2G"}, "plan": plan, **meta}, records)


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_udp_tests_get_their_own_axis_with_the_offered_rate(iperf3_json, data_dir):
    udp = json.loads((data_dir / "raw-canal-model-cross-node-udp.json").read_text())
    records = {"0001-tcp-r1": raw.parse_iperf3(iperf3_json("tcp-1")),
               "0002-udp-r1": raw.parse_iperf3(udp), "0003-udp-r1": raw.parse_iperf3(iperf3_json("udp"))}
    fig = charts.run_figure(summary_of(records, profile="native-bpf"))
    tcp_ax, udp_ax = fig.axes
    assert [t.get_text() for t in tcp_ax.get_yticklabels()] == ["cross-node-tcp-1"]
    assert [t.get_text() for t in udp_ax.get_yticklabels()] == ["cross-node-udp", "udp-2x500m"]
    # Every bar carries its median; the sender-bound ones say so.
    assert texts(tcp_ax) == ["26.0 CPU-bound"]
    assert texts(udp_ax) == ["0.50 CPU-bound", "1.00"]
    # Offered: the run's udp_bitrate (2G), and 2 streams x the entry's own 500M.
    (offered,) = [c for c in udp_ax.collections if isinstance(c, LineCollection) and c.get_label() == "offered rate"]
    assert [segment[0][0] for segment in offered.get_segments()] == pytest.approx([2.0, 1.0])
    assert tcp_ax.get_title() == "cilium/native-bpf - run r1"


def test_tcp_alone_is_one_axis_named_by_its_cni(iperf3_json):
    fig = charts.run_figure(summary_of({"0001-tcp-r1": raw.parse_iperf3(iperf3_json("tcp-1"))}, plan=PLAN[:1]))
    (ax,) = fig.axes
    assert ax.get_title() == "cilium - run r1" and texts(ax) == ["26.0 CPU-bound"]


def test_a_test_without_result_is_labelled_as_such(iperf3_json):
    fig = charts.run_figure(summary_of({"0001-tcp-r1": raw.parse_iperf3(iperf3_json("tcp-1"))}))
    assert texts(fig.axes[1]) == ["-", "-"]


def test_latency_bars_carry_their_p50(data_dir):
    doc = json.loads((data_dir / "raw-cilium-model-cross-node-tcp-rr.json").read_text())
    plan = [{"id": "0001-rr-r1", "scenario": "cross-node-tcp-rr", "placement": "cross-node", "protocol": "tcp_rr",
             "streams": 1, "tool": "netperf", "size": 1}]
    summary = summary_of({"0001-rr-r1": raw.parse_netperf(doc)}, plan=plan)
    (ax,) = charts.latency_figure(summary).axes
    assert texts(ax) == [f"{summary['results'][0]['p50_us']:.0f}"]


def test_the_charts_are_written(tmp_path, iperf3_json):
    records = {"0001-tcp-r1": raw.parse_iperf3(iperf3_json("tcp-1")),
               "0002-udp-r1": raw.parse_iperf3(iperf3_json("udp"))}
    written = charts.run_chart(summary_of(records, plan=PLAN[:2]), tmp_path / "throughput")
    assert [p.name for p in written] == ["throughput.png", "throughput.svg"]
    assert all(p.stat().st_size > 0 for p in written)
