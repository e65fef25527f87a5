"""The README's sample table is what scripts/sample.py extracts from the committed docs/sample/ (comparison.md and
the runs' report.md), so the README cannot drift from the sample."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("sample", ROOT / "scripts" / "sample.py")
sample = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sample)

# A comparison.md as compare.render_markdown writes it, cut to what the table reads.
COMPARISON = """# canal/vxlan vs cilium/native-bpf

- canal/vxlan (baseline): run `20260101T000000Z-canal-vxlan`, canal model
- cilium/native-bpf: run `20260101T001000Z-cilium-native-bpf`, cilium model

## Throughput (iperf3, Gbit/s)

| test | canal/vxlan (baseline) | cilium/native-bpf |
|---|---|---|
| host-tcp-1 | 10.00 [9.00-11.00 (75%)] | 12.00 [11.00-13.00 (75%)], +20.0 % |
| cross-node-tcp-1 | 5.00 [4.00-6.00 (75%)] | 9.00 [8.00-10.00 (75%)], +80.0 %*, host-norm. +50.0 % |
| same-node-tcp-1 | 20.00 [19.00-21.00 (75%)] | 30.00 [29.00-31.00 (75%)], +50.0 %* |
| service-tcp-1 | 4.50 [4.00-5.00 (75%)] | 8.50 [8.00-9.00 (75%)], +88.9 %* |

## Latency and transaction rate (netperf, trans/s)

| test | canal/vxlan (baseline) | cilium/native-bpf |
|---|---|---|
| host-tcp-rr | 20000 [19000-21000 (75%)], p50/p99 40/90 us | 25000 [24000-26000 (75%)], +25.0 %, p50/p99 32/80 us |
| cross-node-tcp-rr | 10000 [9000-11000], p50/p99 80/200 us | 16000 [15000-17000], +60.0 %*, p50/p99 48/120 us |

## Where the difference comes from

No chain: fewer than two of canal/vxlan, cilium/tunnel are compared.

## Details per run

| test | run | p | retrans | UDP loss % | jitter ms | CPU client % | CPU s/Gbit | CPU s/1k trans | vs host | noisy |
|---|---|---|---|---|---|---|---|---|---|---|
| host-tcp-1 | canal/vxlan | - | 0 | - | - | 50 | 0.100 | - | - | |
| host-tcp-1 | cilium/native-bpf | 0.200 | 0 | - | - | 50 | 0.100 | - | - | |
| cross-node-tcp-1 | canal/vxlan | - | 0 | - | - | 50 | 0.100 | - | 0.50x | |
| cross-node-tcp-1 | cilium/native-bpf | 0.010 | 0 | - | - | 50 | 0.100 | - | 0.75x | |
| same-node-tcp-1 | canal/vxlan | - | 0 | - | - | 50 | 0.100 | - | 2.00x | |
| same-node-tcp-1 | cilium/native-bpf | 0.010 | 0 | - | - | 50 | 0.100 | - | 2.50x | |
| service-tcp-1 | canal/vxlan | - | 0 | - | - | 50 | 0.100 | - | 0.45x | |
| service-tcp-1 | cilium/native-bpf | 0.010 | 0 | - | - | 50 | 0.100 | - | 0.71x | |
| cross-node-tcp-rr | canal/vxlan | - | - | - | - | - | - | 0.300 | 0.50x | |
| cross-node-tcp-rr | cilium/native-bpf | 0.010 | - | - | - | - | - | 0.300 | 0.64x | |
"""

EXPECTED = [
    "| test (the model) | canal/vxlan | vs host | cilium/native-bpf | vs host |",
    "|---|---:|---:|---:|---:|",
    "| host-tcp-1 Gbit/s | 10.00 | - | 12.00 | - |",
    "| cross-node-tcp-1 Gbit/s | 5.00 | 0.50x | 9.00 | 0.75x |",
    "| same-node-tcp-1 Gbit/s | 20.00 | 2.00x | 30.00 | 2.50x |",
    "| service-tcp-1 Gbit/s | 4.50 | 0.45x | 8.50 | 0.71x |",
    "| cross-node-tcp-rr p50 us | 80 | 2.00x | 48 | 1.50x |",
    "| cross-node-tcp-rr trans/s | 10000 | 0.50x | 16000 | 0.64x |",
]


def test_the_table_takes_medians_vs_host_and_the_p50_against_the_host_tests():
    assert sample.table(COMPARISON) == EXPECTED


def test_a_comparison_without_a_test_of_the_table_is_refused():
    with pytest.raises(sample.SampleError, match="service-tcp-1"):
        sample.table(COMPARISON.replace("| service-tcp-1 | 4.50", "| service-tcp-2 | 4.50"))


def test_a_comparison_without_details_is_refused():
    with pytest.raises(sample.SampleError, match="vs host"):
        sample.table(COMPARISON.split("## Details per run")[0])


REPORT = """# Benchmark run 20260101T000000Z-canal-vxlan

## Context

- Date: 2026-01-01T00:00:10Z
- Provider: local
- CNI: **canal/vxlan**
- Kernel: 6.18.1
- CPU model: Example CPU
- vCPUs: 2
- Settings: 5 s per test, 1 s omitted (iperf3), 3 repeat(s), UDP offered 1Gbit/s per stream, routing=vxlan

## Throughput
"""


def test_the_caption_names_the_model_the_machine_and_the_settings():
    later = REPORT.replace("2026-01-01T00:00:10Z", "2026-01-02T00:00:10Z").replace("canal/vxlan", "cilium/native-bpf")
    assert sample.caption([REPORT, later]) == (
        "*The local model on one machine (2 vCPUs, kernel 6.18.1, Example CPU), not a real cluster: "
        "5 s per test, 1 s omitted (iperf3), 3 repeat(s); 2026-01-02, `make sample`.*")
    assert sample.block(COMPARISON, [REPORT]) == [sample.caption([REPORT]), "", *EXPECTED]


def test_reports_without_their_context_are_refused():
    with pytest.raises(sample.SampleError, match="Context"):
        sample.caption([REPORT.split("## Context")[0]])


def test_only_the_lines_between_the_markers_are_rewritten():
    readme = f"# title\n\nbefore\n{sample.START}\n| old |\n{sample.END}\nafter\n"
    rewritten = sample.rewrite_readme(readme, ["| new |"])
    assert rewritten == f"# title\n\nbefore\n{sample.START}\n| new |\n{sample.END}\nafter\n"
    assert sample.readme_table(rewritten) == ["| new |"]


def test_a_readme_without_both_markers_is_refused():
    with pytest.raises(sample.SampleError, match="marker"):
        sample.rewrite_readme(f"# title\n{sample.START}\n", ["| new |"])


def test_the_readme_shows_the_committed_sample():
    out = ROOT / "docs" / "sample"
    readme = (ROOT / "README.md").read_text()
    assert len(sample.sample_reports(out)) == 2
    assert sample.readme_table(readme) == sample.block((out / "comparison.md").read_text(), sample.sample_reports(out))
