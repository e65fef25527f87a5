"""The raw test file: written from a client's output (iperf3's JSON, netperf's KEY=value lines, the
counters and CPU readings on stderr), read back as a record (real iperf3 3.18 output), and the console's
line for it."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files, raw
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import proof


def test_a_raw_file_keeps_iperf3_and_both_readings(iperf3_json):
    stdout = json.dumps(iperf3_json("tcp-1"))
    stderr = f'{proof.MARKER}{{"bpf.sock_xlate": 1}}\nwarning\n{proof.MARKER}{{"bpf.sock_xlate": 3}}\n'
    document = json.loads(raw.document(stdout, stderr, 0, node="netlab-agent-1"))
    assert document["end"] == iperf3_json("tcp-1")["end"]
    assert document["netlab_counters"] == {"node": "netlab-agent-1", "before": {"bpf.sock_xlate": 1},
                                           "after": {"bpf.sock_xlate": 3}}
    assert proof.delta(document["netlab_counters"]) == {"bpf.sock_xlate": 2}


def test_a_killed_client_gets_a_document_that_says_why():
    document = json.loads(raw.document("", f"{proof.MARKER}{{}}\nKilled\n", 124))
    assert document["error"] == "no output (exit 124): Killed"
    assert "netlab_counters" not in document, "one reading is no proof"
    timed_out = json.loads(raw.document(None, None, None, "The command timed out"))
    assert timed_out["error"] == "no output (exit none): The command timed out"


def test_tcp_single_stream(iperf3_json):
    rec = raw.parse_iperf3(iperf3_json("tcp-1"))
    assert rec["ok"] and rec["protocol"] == "tcp" and rec["streams"] == 1
    assert rec["gbps"] == pytest.approx(26.020127992, rel=1e-6)  # receiver side
    assert rec["retransmits"] == 5
    assert rec["lost_percent"] is None and rec["jitter_ms"] is None
    assert rec["iperf3_version"] == "iperf 3.18"
    assert rec["cpu_client_percent"] == pytest.approx(99.0958, rel=1e-4)


def test_tcp_parallel(iperf3_json):
    rec = raw.parse_iperf3(iperf3_json("tcp-p4"))
    assert rec["streams"] == 4
    assert rec["gbps"] == pytest.approx(51.355858, rel=1e-6)


def test_tcp_reverse(iperf3_json):
    rec = raw.parse_iperf3(iperf3_json("tcp-reverse"))
    assert rec["reverse"] is True
    assert rec["gbps"] == pytest.approx(36.552702, rel=1e-6)


def test_udp_uses_receiver_loss_and_jitter(iperf3_json):
    rec = raw.parse_iperf3(iperf3_json("udp"))
    assert rec["protocol"] == "udp" and rec["retransmits"] is None
    assert rec["lost_percent"] == pytest.approx(0.0261986, rel=1e-5)
    assert rec["jitter_ms"] == pytest.approx(0.0053946, rel=1e-4)
    assert rec["gbps"] == pytest.approx(0.99962627, rel=1e-6)


def test_error_output(iperf3_json):
    rec = raw.parse_iperf3(iperf3_json("error-refused"))
    assert rec == {"ok": False, "error": rec["error"]}
    assert "Connection refused" in rec["error"]


@pytest.mark.parametrize("doc", [[], {"foo": 1}, {"start": {}, "end": {}}, "text"])
def test_foreign_json_is_rejected(doc):
    with pytest.raises(files.ResultError):
        raw.parse_iperf3(doc)




def test_one_console_line_per_test(iperf3_json):
    test = {"index": 3, "total": 21, "scenario": "cross-node-tcp-4", "repeat": 1}
    assert raw.test_line(test, json.dumps(iperf3_json("tcp-p4"))).startswith("3/21 cross-node-tcp-4 r1: ")
    assert raw.test_line(test, json.dumps(iperf3_json("tcp-p4"))).endswith(" retr")
    assert raw.test_line(test, json.dumps(iperf3_json("udp"))).endswith(" % lost")
    assert raw.test_line(test, json.dumps(iperf3_json("error-refused"))) == (
        "3/21 cross-node-tcp-4 r1: FAILED, " + iperf3_json("error-refused")["error"])
    assert raw.test_line(test, "not json").startswith("3/21 cross-node-tcp-4 r1: FAILED, ")


def test_a_document_or_its_text_reads_as_one_record(data_dir):
    # Was the filter iperf3_record's test: the record of a raw file's document, whichever reader is asked.
    doc = json.loads((data_dir / "iperf3-udp.json").read_text())
    record = raw.parse_iperf3(doc)
    assert record["ok"] and record["protocol"] == "udp" and record["gbps"] > 0
    # Not measured (no netlab_foreign_cpu): no foreign CPU, not disturbed.
    assert raw.parse_raw(doc) == {**record, "foreign_cpu_percent": None, "foreign_on": None, "disturbed": False,
                                  "reruns": 0}
    measured = raw.with_foreign(json.dumps(doc), {"percent": 23.5, "disturbed": True, "reruns": 2})
    assert raw.parse_raw(json.loads(measured)) == {**record, "foreign_cpu_percent": 23.5, "foreign_on": "machine",
                                                   "disturbed": True, "reruns": 2}
    with pytest.raises(files.ResultError, match=r"^not iperf3 JSON output"):
        raw.parse_iperf3({"start": {}})
