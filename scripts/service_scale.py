#!/usr/bin/env python3
"""Service scale curves on the local lab: the three lookup structures, large numbers of Services.

Runs the Ansible scenario (site.yml --tags scale) for canal/vxlan (kube-proxy's iptables chain),
canal/nftables (its nftables verdict map) and cilium/native-bpf (the BPF hash map behind the socket
hook), switching the lab's datapath in between, with the Service counts given here, and prints the
table of the newest run of each (results/comparisons/service-scale/).
Needs root, podman and the lab (it is built if absent); run it from the repository:

    sudo env PATH=$PWD/.venv/bin:$PATH CONTAINERS_CONF=$PWD/containers.conf \\
        .venv/bin/python scripts/service_scale.py --services 0 1000 5000 10000 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def playbook(*args: str) -> None:
    cmd = ["ansible-playbook", "site.yml", *args]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[0, 1000, 5000, 10000, 20000])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    common = ["-e", f"netlab_results_dir={args.results.resolve()}",
              "-e", json.dumps({"service_scale_counts": args.services,
                                "service_scale_connections": args.connections})]
    for cni, profile in (("canal", "vxlan"), ("canal", "nftables"), ("cilium", "native-bpf")):
        playbook("--tags", "provision,cluster", "-e", f"cni={cni}", "-e", f"cni_profile={profile}", *common)
        playbook("--tags", "scale", "-e", f"cni={cni}", *common)
    print((args.results / "comparisons" / "service-scale" / "scale.md").read_text())


if __name__ == "__main__":
    main()
