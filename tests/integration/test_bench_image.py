"""The Kubernetes transport's benchmark image, built by `make bench-image` from Debian packages and run
with podman: its user, its tools, a real loopback netperf test, and the digest its push reports.

The image is built under a test name (never the user's localhost/netlab-bench) from scratch, and removed
at the end. No registry is reachable here: the push goes to a local OCI layout, whose index names the
manifest by the digest that podman's --digestfile reports.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab_twin import lanes

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/netlab-bench-test:trixie"
BENCH_UID = 65532

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("podman"), reason="the image build needs root and podman"
)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IMAGE"}
    env["CONTAINERS_CONF"] = str(ROOT / "containers.conf")
    return env


def make(*args: str) -> subprocess.CompletedProcess:
    proc = lanes.run(["make", "--no-print-directory", *args, f"ANSIBLE_ARGS=-e bench_image_name={IMAGE}"],
                     cwd=ROOT, env=environment(), timeout=900)
    print(proc.stdout[-5000:], proc.stderr[-3000:])
    return proc


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=environment(), capture_output=True, text=True, timeout=120,
                          check=check)


def run(script: str) -> str:
    """stdout of a shell script run in a fresh container of the image, as its own user."""
    return podman("run", "--rm", IMAGE, "sh", "-c", script).stdout


@pytest.fixture(scope="module")
def built():
    podman("rmi", "--force", IMAGE, check=False)
    proc = make("bench-image")
    yield proc
    podman("rmi", "--force", IMAGE, check=False)


def test_make_builds_and_prints_the_image_id(built, recap):
    assert built.returncode == 0
    assert recap(built.stdout)["localhost"]["changed"] >= 1
    image_id = podman("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    assert f"{IMAGE}: image ID sha256:{image_id}" in built.stdout
    assert "IMAGE=registry.example/netlab-bench make bench-image-push" in built.stdout


def test_labels_name_the_definition_and_the_package_versions(built):
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", IMAGE).stdout)
    assert re.fullmatch(r"[0-9a-f]{64}", labels["netlab.definition"])
    versions = dict(item.split("=", 1) for item in labels["netlab.packages"].split(","))
    assert {"iperf3", "netperf", "coreutils", "procps"} <= versions.keys()


def test_a_second_build_changes_nothing(built, recap):
    proc = make("bench-image")
    assert proc.returncode == 0
    assert recap(proc.stdout)["localhost"]["changed"] == 0


def test_runs_as_the_unprivileged_user(built):
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", IMAGE).stdout)
    assert config["User"] == f"{BENCH_UID}:{BENCH_UID}"
    assert run("id -u; id -un; echo $HOME").split() == [str(BENCH_UID), "bench", "/home/bench"]


def test_holds_the_benchmark_tools_and_nothing_of_a_node(built):
    version = re.search(r"^iperf (\d+)\.(\d+)", run("iperf3 --version"), re.MULTILINE)
    assert version and tuple(map(int, version.groups())) >= (3, 16)
    out = run("netperf -V; netserver -V; timeout --version; ps --version")
    assert out.count("Netperf version 2.") == 2
    assert "timeout (GNU coreutils)" in out and "procps-ng" in out
    absent = "/usr/sbin/sshd /usr/lib/systemd/systemd /usr/bin/apt"
    assert run(f"for f in {absent}; do test -e $f && echo $f; done; true") == ""


def test_netperf_between_netserver_and_netperf_in_one_container(built):
    out = run("netserver -p 12865 >/dev/null"
              " && timeout 20 netperf -H 127.0.0.1 -p 12865 -l 1 -t TCP_RR -- -o P50_LATENCY,TRANSACTION_RATE"
              " && timeout 20 netperf -H 127.0.0.1 -p 12865 -l 1 -t TCP_CRR -- -o TRANSACTION_RATE")
    rr = re.search(r"^(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$", out, re.MULTILINE)
    crr = re.search(r"^Transaction Rate Tran/s\n(\d+(?:\.\d+)?)$", out.split("TCP Connect/Request/Response")[-1],
                    re.MULTILINE)
    assert rr and float(rr.group(1)) > 0 and float(rr.group(2)) > 0, out
    assert crr and float(crr.group(1)) > 0, out


def test_push_refuses_without_a_destination():
    proc = subprocess.run(["make", "--no-print-directory", "bench-image-push"], cwd=ROOT, env=environment(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "set IMAGE to your registry's repository" in proc.stderr
    assert "PLAY" not in proc.stdout


def test_push_prints_the_pushed_manifest_digest(built, tmp_path):
    layout = tmp_path / "layout"
    proc = make("bench-image-push", f"IMAGE=oci:{layout}")
    assert proc.returncode == 0
    index = json.loads((layout / "index.json").read_text())
    [manifest] = index["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "trixie"
    digest = manifest["digest"]
    blob = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == digest
    assert f"pushed oci:{layout}:trixie: manifest digest {digest}" in proc.stdout
