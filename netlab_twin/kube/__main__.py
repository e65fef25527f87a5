"""``python -m netlab_twin.kube serve --dir D [--canned|--lab] [--nodes a,b] [--cni cilium|canal] [--v4-only]``

Serves a Kubernetes twin until SIGINT or SIGTERM, then tears it down. Prints the kubeconfig's path (written in
D) as its first line of output, so a script or a second checkout can take it. Faults come from
NETLAB_KTWIN_FAULTS (JSON, faults.py). What runs the pods is chosen by name from RUNTIMES: ``canned``
(CannedRuntime: no podman, the default) or ``lab`` (LabRuntime, netlab_twin/kube/lab.py: the pods run in the
running local lab's pod namespaces; its nodes and CNI are the lab's, so --cni does not apply to it).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from netlab_twin.kube import V4, V5, KubeTwin
from netlab_twin.kube.lab import LabRuntime
from netlab_twin.kube.runtime import CannedRuntime, Runtime

# The canned runtime's nodes when --nodes is not given (the local lab's benchmark nodes, by name only).
CANNED_NODES = ["netlab-agent-1", "netlab-agent-2"]


def canned(args: argparse.Namespace) -> Runtime:
    return CannedRuntime(nodes=tuple(args.nodes or CANNED_NODES), cni=args.cni)


def lab(args: argparse.Namespace) -> Runtime:
    # No default node list: without --nodes the runtime takes every running node of the lab, so that the
    # servers (control plane, tainted) are Nodes of the twin as they are of the lab.
    return LabRuntime(nodes=args.nodes)


# Runtime factories by name: each takes the parsed arguments. `--<name>` picks one (default: canned).
RUNTIMES: dict[str, Callable[[argparse.Namespace], Runtime]] = {"canned": canned, "lab": lab}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m netlab_twin.kube", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a twin until SIGINT/SIGTERM; print its kubeconfig path")
    serve.add_argument("--dir", required=True, type=Path, help="where the kubeconfig, certificate and key go")
    kinds = serve.add_mutually_exclusive_group()
    for name in RUNTIMES:
        kinds.add_argument(f"--{name}", dest="runtime", action="store_const", const=name,
                           help=f"pods run on the {name} runtime")
    serve.add_argument("--nodes", default=None, type=lambda text: [n for n in text.split(",") if n],
                       help="node names, comma separated (canned: default " + ",".join(CANNED_NODES)
                       + "; lab: default every running node of the local lab)")
    serve.add_argument("--cni", choices=("cilium", "canal"), default="cilium")
    serve.add_argument("--v4-only", action="store_true", help="offer only v4.channel.k8s.io for exec")
    args = parser.parse_args(argv)
    args.runtime = args.runtime or "canned"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        runtime = RUNTIMES[args.runtime](args)
    except (ValueError, RuntimeError) as exc:  # the lab runtime's words: no lab runs, podman failed
        print(f"python -m netlab_twin.kube: {exc}", file=sys.stderr)
        return 1
    twin = KubeTwin(args.dir, runtime=runtime, protocols=(V4,) if args.v4_only else (V5, V4))
    try:
        kubeconfig = twin.start()
        print(kubeconfig, flush=True)
        nodes = ", ".join(getattr(twin.runtime, "nodes", None) or args.nodes or CANNED_NODES)
        print(f"serving {twin.url} ({args.runtime} runtime, nodes {nodes}); Ctrl-C stops",
              file=sys.stderr, flush=True)
        stop.wait()
    finally:
        twin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
