"""Fixtures of the unit tests: what the roles' defaults give the Kubernetes transport's tests, and a private
bpffs with the socket LB's maps for the codec's."""

import os
import subprocess

import bpf_maps
import pytest
import yaml

from ansible_collections.netlab.lab.plugins.module_utils import sock_lb

ROOT_DEFAULTS = "roles/{}/defaults/main.yml"


@pytest.fixture(scope="module")
def defaults(request):
    root = request.config.rootpath
    return {role: yaml.safe_load((root / ROOT_DEFAULTS.format(role)).read_text()) for role in ("bench", "rke2")}


@pytest.fixture(scope="module")
def k8s_version(defaults):
    # The Kubernetes minor of the RKE2 release the lab installs, e.g. v1.33.5+rke2r1 -> 1.33.
    return ".".join(defaults["rke2"]["rke2_version"].lstrip("v").split(".")[:2])


@pytest.fixture(scope="module")
def reference(defaults):
    return defaults["bench"]["bench_reference_matrix"]


@pytest.fixture
def bpffs(tmp_path):
    """A private bpffs with the socket LB's three maps, created by bpftool at sock_lb.c's sizes."""
    if os.geteuid() != 0:
        pytest.skip("creating BPF maps needs root")
    pins = tmp_path / "bpf"
    pins.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(pins)], check=True)
    try:
        for name, (key, value) in sock_lb.MAP_SIZES.items():
            bpf_maps.create(pins, name, key, value)
        yield pins
    finally:
        subprocess.run(["umount", str(pins)], check=True)
