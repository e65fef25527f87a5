"""``python -m netlab_twin.kube serve --dir D [--canned] [--nodes a,b] [--cni cilium|canal] [--v4-only]``

Serves a Kubernetes twin until SIGINT or SIGTERM, then tears it down. Prints the kubeconfig's path (written in
D) as its first line of output, so a script or a second checkout can take it. Faults come from
NETLAB_KTWIN_FAULTS (JSON, faults.py). What runs the pods is chosen by name from RUNTIMES: ``canned`` here
(CannedRuntime: no podman); the local lab's runtime (netlab_twin/kube/lab.py) is added beside it as ``lab``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from netlab_twin.kube import V4, V5, KubeTwin
from netlab_twin.kube.runtime import CannedRuntime, Runtime


def canned(args: argparse.Namespace) -> Runtime:
    return CannedRuntime(nodes=tuple(args.nodes), cni=args.cni)


# Runtime factories by name: each takes the parsed arguments. `--<name>` picks one (default: canned).
RUNTIMES: dict[str, Callable[[argparse.Namespace], Runtime]] = {"canned": canned}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m netlab_twin.kube", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a twin until SIGINT/SIGTERM; print its kubeconfig path")
    serve.add_argument("--dir", required=True, type=Path, help="where the kubeconfig, certificate and key go")
    kinds = serve.add_mutually_exclusive_group()
    for name in RUNTIMES:
        kinds.add_argument(f"--{name}", dest="runtime", action="store_const", const=name,
                           help=f"pods run on the {name} runtime")
    serve.add_argument("--nodes", default="netlab-agent-1,netlab-agent-2",
                       type=lambda text: [n for n in text.split(",") if n], help="node names, comma separated")
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
    twin = KubeTwin(args.dir, runtime=RUNTIMES[args.runtime](args), protocols=(V4,) if args.v4_only else (V5, V4))
    try:
        kubeconfig = twin.start()
        print(kubeconfig, flush=True)
        print(f"serving {twin.url} ({args.runtime} runtime, nodes {', '.join(args.nodes)}); Ctrl-C stops",
              file=sys.stderr, flush=True)
        stop.wait()
    finally:
        twin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
