#!/usr/bin/env python3
"""Service lookup cost as Services grow: an iptables DNAT chain against an nftables map, on this kernel.

A model of the two lookup structures, not of kube-proxy or Cilium themselves: in a client network
namespace, N ClusterIP-like addresses are translated to one backend in a server namespace, either by
N sequential iptables DNAT rules (kube-proxy's iptables mode walks its service list in order) or by one
nftables map lookup (a hash, as Cilium's eBPF service map). For each N it measures the latency of new
connections to the last Service (connect, 1-byte request and answer, close: only a connection's first
packet goes through NAT), the time to add one Service (iptables: a full iptables-restore of the table,
as kube-proxy's full sync; nftables: one map element), and the time until that Service answers.

    sudo .venv/bin/python scripts/service_scale.py --services 0 1000 5000 10000
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import subprocess
import sys
import time

CLIENT, SERVER = "netlab-svc-client", "netlab-svc-server"
CLIENT_IP, SERVER_IP, PORT = "198.18.200.1", "198.18.200.2", 8080
SERVICES = ipaddress.ip_network("10.43.0.0/16")
MAX_SERVICES = 60000

PROBE = r"""
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
samples = []
for _ in range(count):
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(b"x"); s.recv(1)
    samples.append((time.perf_counter() - start) * 1e6)
print(json.dumps(samples))
"""
# Tries the new Service until it answers; prints the wall-clock time it first did.
WAIT = r"""
import socket, sys, time
host = sys.argv[1]
print("ready", flush=True)
while True:
    try:
        with socket.create_connection((host, 80), timeout=1) as s:
            s.sendall(b"x"); s.recv(1)
        break
    except OSError:
        time.sleep(0.0005)
print(time.time(), flush=True)
"""
ECHO = r"""
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8080)); srv.listen(512)
while True:
    c, _ = srv.accept()
    with c:
        if c.recv(1): c.sendall(b"y")
"""


def sh(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True).stdout


def vip(index: int) -> str:
    return str(SERVICES.network_address + 256 + index)


def setup() -> subprocess.Popen:
    teardown()
    for ns in (CLIENT, SERVER):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "nlsvc0", "netns", CLIENT, "type", "veth", "peer", "name", "nlsvc1", "netns", SERVER)
    for ns, dev, addr in ((CLIENT, "nlsvc0", CLIENT_IP), (SERVER, "nlsvc1", SERVER_IP)):
        sh("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", CLIENT, "route", "add", str(SERVICES), "via", SERVER_IP)
    # An untranslated Service address is refused at once, so the wait for a new Service is not a timeout.
    sh("ip", "-n", SERVER, "route", "add", "local", str(SERVICES), "dev", "lo")
    echo = subprocess.Popen(["ip", "netns", "exec", SERVER, sys.executable, "-c", ECHO])
    time.sleep(0.5)
    return echo


def teardown() -> None:
    for ns in (CLIENT, SERVER):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def iptables_table(count: int) -> str:
    """The nat table as kube-proxy's full sync writes it: one rule per Service, in order."""
    rules = [f"-A NETLAB-SERVICES -d {vip(i)}/32 -p tcp --dport 80 -j DNAT --to-destination {SERVER_IP}:{PORT}"
             for i in range(count)]
    return "\n".join(["*nat", ":NETLAB-SERVICES - [0:0]", "-A OUTPUT -j NETLAB-SERVICES", *rules, "COMMIT", ""])


def nft_ruleset(count: int) -> str:
    elements = ", ".join(f"{vip(i)} . 80 : {SERVER_IP} . {PORT}" for i in range(count))
    return "\n".join([
        "table ip netlab {",
        "  map services { type ipv4_addr . inet_service : ipv4_addr . inet_service;"
        + (f" elements = {{ {elements} }}" if count else "") + " }",
        "  chain output { type nat hook output priority -100; dnat ip to ip daddr . tcp dport map @services; }",
        "}", ""])


def load(model: str, count: int, restore: str) -> None:
    """Only one model translates at a time: the other's rules are removed."""
    subprocess.run(["ip", "netns", "exec", CLIENT, "nft", "delete", "table", "ip", "netlab"],
                   capture_output=True, check=False)
    sh("ip", "netns", "exec", CLIENT, restore, stdin="*nat\nCOMMIT\n")
    if model == "iptables":
        sh("ip", "netns", "exec", CLIENT, restore, stdin=iptables_table(count))
    else:
        sh("ip", "netns", "exec", CLIENT, "nft", "-f", "-", stdin=nft_ruleset(count))


def add_one(model: str, count: int, restore: str) -> float:
    """Seconds to add Service number count+1."""
    start = time.perf_counter()
    if model == "iptables":
        sh("ip", "netns", "exec", CLIENT, restore, stdin=iptables_table(count + 1))
    else:
        sh("ip", "netns", "exec", CLIENT, "nft", "add", "element", "ip", "netlab", "services",
           f"{{ {vip(count)} . 80 : {SERVER_IP} . {PORT} }}")
    return time.perf_counter() - start


def probe(address: str, count: int) -> list[float]:
    out = sh("ip", "netns", "exec", CLIENT, sys.executable, "-c", PROBE, address, "80", str(count))
    return json.loads(out)


def measure(model: str, count: int, connections: int, restore: str) -> dict:
    load(model, count, restore)
    target = vip(max(count - 1, 0))
    samples = probe(target, connections) if count else []
    waiter = subprocess.Popen(["ip", "netns", "exec", CLIENT, sys.executable, "-c", WAIT, vip(count)],
                              stdout=subprocess.PIPE, text=True)
    waiter.stdout.readline()
    started = time.time()
    update = add_one(model, count, restore)
    reachable = float(waiter.communicate(timeout=30)[0]) - started
    q = statistics.quantiles(samples, n=100) if len(samples) >= 2 else [float("nan")] * 99
    return {"model": model, "services": count, "p50_us": q[49], "p90_us": q[89], "p99_us": q[98],
            "update_ms": update * 1e3, "reachable_ms": reachable * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[0, 1000, 5000, 10000])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON record per line")
    parser.add_argument("--iptables-restore", default="iptables-restore",
                        choices=["iptables-restore", "iptables-legacy-restore"],
                        help="the nf_tables backend (Debian's default) or the legacy one")
    args = parser.parse_args()
    too_big = [n for n in args.services if not 0 <= n <= MAX_SERVICES]
    if too_big:
        sys.exit(f"--services {too_big}: the model holds 0 to {MAX_SERVICES} Services (one /16 of addresses)")
    echo = setup()
    try:
        rows = [measure(model, n, args.connections, args.iptables_restore)
                for n in args.services for model in ("iptables", "nftables")]
    finally:
        echo.kill()
        teardown()
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['model']:9} N={row['services']:>6}: new-connection latency p50 {row['p50_us']:7.1f} us, "
                  f"p90 {row['p90_us']:7.1f} us, p99 {row['p99_us']:7.1f} us; add a Service "
                  f"{row['update_ms']:8.2f} ms, reachable after {row['reachable_ms']:8.2f} ms")


if __name__ == "__main__":
    main()
