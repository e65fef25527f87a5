"""Every report file, byte for byte, from runs built of the captured raw files in tests/data.

The runs cover what the renderers branch on: iperf3 TCP (reverse, parallel) and UDP, netperf RR and
CRR, the datapath counters (matching the model and contradicting it), both ends' CPU, a failed, a
missing and a corrupt test, a noisy and a CPU-bound one, a pair on one hypervisor, the context of a
local and of a Kubernetes run, a comparison along the step chain and one without a chain, the history,
the gate and the console's lines. The callback writes them as a playbook would make it; the files and
what it printed are held against tests/data/golden/. After a change that is meant to alter a report,
rewrite them with ``NETLAB_UPDATE_GOLDEN=1 pytest tests/unit/test_report_golden.py`` and read the diff.
"""

import json
import os
from pathlib import Path

import yaml
from test_bench_report_callback import Display
from test_compare import PROFILE_CHAIN
from test_run_report import LOCAL_ENV

from ansible_collections.netlab.lab.plugins.callback import bench_report
from ansible_collections.netlab.lab.plugins.plugin_utils.report import gate, raw

DATA = Path(__file__).parents[1] / "data"
GOLDEN = DATA / "golden"
IPERF3 = {"tcp-1": "iperf3-tcp-1.json", "tcp-p4": "iperf3-tcp-p4.json", "tcp-reverse": "iperf3-tcp-reverse.json",
          "udp": "iperf3-udp.json", "refused": "iperf3-error-refused.json",
          "lab-tcp": "raw-cilium-model-cross-node-tcp-1.json", "lab-udp": "raw-cilium-model-cross-node-udp.json",
          "canal-udp": "raw-canal-model-cross-node-udp.json", "same-node": "raw-cilium-model-same-node.json",
          "service": "raw-cilium-model-service.json"}
NETPERF = {"lab-rr": "raw-cilium-model-cross-node-tcp-rr.json", "lab-crr": "raw-cilium-model-service-tcp-crr.json"}
# (test, placement, protocol, streams, raw file of each repeat; None: planned, not run; "{torn": corrupt)
TESTS = [
    ("host-tcp-1", "host", "tcp", 1, ["tcp-1", "tcp-reverse", "tcp-1"]),
    ("same-node-tcp-1", "same-node", "tcp", 1, ["same-node", "same-node", "tcp-1"]),
    ("cross-node-tcp-1", "cross-node", "tcp", 1, ["lab-tcp", "tcp-reverse", "tcp-1"]),
    ("cross-node-tcp-4", "cross-node", "tcp", 4, ["tcp-p4", "tcp-p4", None]),
    ("cross-node-udp", "cross-node", "udp", 1, ["lab-udp", "canal-udp", "udp"]),
    ("service-tcp-1", "service", "tcp", 1, ["service", "refused", "{torn"]),
    ("host-tcp-rr", "host", "tcp_rr", 1, ["netperf-tcp_rr.txt", "netperf-tcp_rr.txt", "netperf-tcp_rr.txt"]),
    ("cross-node-tcp-rr", "cross-node", "tcp_rr", 1, ["lab-rr", "netperf-tcp_rr.txt", "lab-rr"]),
    ("service-tcp-crr", "service", "tcp_crr", 1, ["lab-crr", "netperf-tcp_crr.txt", "lab-crr"]),
    ("cross-node-udp-rr", "cross-node", "udp_rr", 1, ["netperf-udp_rr.txt", "netperf-udp_rr.txt", None]),
]
SETTINGS = {"duration": 5, "omit": 1, "repeats": 3, "udp_bitrate": "1G"}
PROFILES = {"vxlan": {"routing": "vxlan", "kube_proxy_replacement": False, "host_routing": "legacy"},
            "tunnel": {"routing": "vxlan", "kube_proxy_replacement": False, "host_routing": "legacy"},
            "native-bpf": {"routing": "native", "kube_proxy_replacement": True, "host_routing": "bpf"}}
KUBERNETES = {"nodes": [{"name": "a", "kernel": "6.12.48", "vcpus": 4, "memtotal_mb": 8192}],
              "kubernetes": {"kubernetes": "v1.33.5+rke2r1", "rke2": "v1.33.5+rke2r1", "iperf3": "3.18",
                             "netperf": "2.7.0", "datapath": {"cni": "cilium", "pod_mtu": 1450}}}


def _scaled_rate(output: str, factor: float) -> str:
    return "\n".join(f"TRANSACTION_RATE={float(line.split('=')[1]) * factor:.3f}"
                     if line.startswith("TRANSACTION_RATE=") else line for line in output.splitlines())


def raw_text(name: str, factor: float) -> str:
    """A repeat's raw file: a captured one with its figure scaled by ``factor`` (so that runs and repeats
    differ), netperf's bare output wrapped as the role keeps it; literal text when it starts with "{"."""
    if name.startswith("{"):
        return name
    if name.endswith(".txt"):
        return json.dumps({"tool": "netperf", "output": _scaled_rate((DATA / name).read_text(), factor), "rc": 0})
    doc = json.loads((DATA / {**IPERF3, **NETPERF}[name]).read_text())
    if doc.get("tool") == "netperf":
        doc["output"] = _scaled_rate(doc["output"], factor)
    elif (doc.get("end") or {}).get("sum_received"):
        doc["end"]["sum_received"]["bits_per_second"] *= factor
    return json.dumps(doc)


def make_run(root: Path, run_id: str, cni: str, profile: str | None, started: str, factor: float,
             provider: str = "local", environment: dict | None = None) -> Path:
    run = root / run_id
    (run / "raw").mkdir(parents=True)
    plan = []
    for scenario, placement, protocol, streams, repeats in TESTS:
        for repeat, name in enumerate(repeats, 1):
            test = {"id": f"{len(plan) + 1:04d}-{scenario}-r{repeat}", "scenario": scenario, "placement": placement,
                    "protocol": protocol, "streams": streams, "repeat": repeat,
                    "tool": "iperf3" if protocol in ("tcp", "udp") else "netperf",
                    "size": None if protocol in ("tcp", "udp") else 1,
                    "same_host": scenario == "cross-node-tcp-4"}
            plan.append(test)
            if name is not None:
                # The later repeats of a test vary a little, the first of each run by the run's factor.
                (run / "raw" / f"{test['id']}.json").write_text(raw_text(name, factor * (1 + 0.03 * repeat)))
    meta = {"run_id": run_id, "provider": provider, "cni": cni, "started": started, "settings": SETTINGS,
            "datapath": f"{cni} model" if provider == "local" else None, "plan": plan,
            "matrix": [{"name": t[0], "placement": t[1], "protocol": t[2], "streams": t[3]} for t in TESTS],
            "environment": environment or LOCAL_ENV}
    if profile:
        meta.update(profile=profile, profile_settings=PROFILES[profile])
    (run / "run.json").write_text(json.dumps(meta))
    return run


def build(root: Path, charts: bool = False) -> dict[str, str]:
    """Four runs in ``root``, reported and compared by the callback; what it printed and the gate's verdict
    and console lines as files beside them. Returns every text file written, by path relative to root."""
    runs = [make_run(root, "2026-01-01T00-00-00Z-canal-vxlan", "canal", "vxlan", "2026-01-01T00:00:00Z", 1.0),
            make_run(root, "2026-01-02T00-00-00Z-cilium-tunnel", "cilium", "tunnel", "2026-01-02T00:00:00Z", 1.2),
            make_run(root, "2026-01-03T00-00-00Z-cilium-native-bpf", "cilium", "native-bpf",
                     "2026-01-03T00:00:00Z", 1.7),
            make_run(root, "2026-01-04T00-00-00Z-cilium", "cilium", None, "2026-01-04T00:00:00Z", 1.5,
                     provider="proxmox", environment=KUBERNETES)]
    name = "netlab.lab.bench_report"
    from ansible import constants as C
    from ansible.executor.stats import AggregateStats

    C.config.initialize_plugin_configuration_definitions("callback", name,
                                                         yaml.safe_load(bench_report.DOCUMENTATION)["options"])
    os.environ["NETLAB_CHARTS"] = "true" if charts else "false"
    try:
        plugin = bench_report.CallbackModule(display=Display())
        plugin._load_name = name
        plugin.set_options()
    finally:
        del os.environ["NETLAB_CHARTS"]
    stats = AggregateStats()
    stats.update_custom_stats("netlab_run_dirs", [str(run) for run in runs])
    # As the report play asks: the profiles' step chain with every request.
    stats.update_custom_stats("netlab_compare", [{**request, "results_dir": str(root), "profile_chain": PROFILE_CHAIN}
                                                 for request in (
        # The newest run of each CNI and profile of the newest run's lab (proxmox: one run only, skipped).
        {"runs": [], "baseline": "", "chain": []},
        # The three local runs along the profile chain, then the same named with a baseline and a chain.
        {"runs": [run.name for run in runs[:3]], "baseline": "", "chain": []},
        {"runs": [run.name for run in runs[:3]], "baseline": "cilium/tunnel", "chain": [runs[0].name, runs[2].name]},
        # Two runs of which one only is on the chain, of two labs.
        {"runs": [runs[2].name, runs[3].name], "baseline": "", "chain": []},
    )])
    plugin.v2_playbook_on_stats(stats)
    console = "\n".join(f"[{kind}] {text}" for kind, text in plugin._display.lines) + "\n"
    (root / "console.txt").write_text(console.replace(str(root), "<results>"))
    verdict = gate.gate_runs(runs[1], runs[0], 10)
    (root / "gate.json").write_text(json.dumps(verdict, indent=2, sort_keys=True).replace(str(root), "<results>"))
    lines = []
    for run in runs:
        plan = json.loads((run / "run.json").read_text())["plan"]
        for index, test in enumerate(plan, 1):
            path = run / "raw" / f"{test['id']}.json"
            if path.exists():
                lines.append(raw.test_line({**test, "index": index, "total": len(plan)}, path.read_text()))
    (root / "test_lines.txt").write_text("\n".join(lines) + "\n")
    written = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "raw" not in path.parts and path.name != "run.json" and path.suffix != ".png":
            written[str(path.relative_to(root))] = path.read_text().replace(str(root), "<results>")
    return written


def test_every_report_file_is_as_it_was(tmp_path):
    written = build(tmp_path)
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        for old in GOLDEN.rglob("*"):
            if old.is_file():
                old.unlink()
        for name, text in written.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text)
    kept = {str(path.relative_to(GOLDEN)): path.read_text() for path in sorted(GOLDEN.rglob("*")) if path.is_file()}
    assert sorted(written) == sorted(kept)
    for name, text in written.items():
        assert text == kept[name], name
