"""Fixtures of the Kubernetes transport's unit tests: what the roles' defaults give them."""

import pytest
import yaml

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
