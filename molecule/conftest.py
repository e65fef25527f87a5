"""testinfra reaches the nodes through podman directly: its ansible backend has no
native mapping for the podman connection and would run one playbook per check."""

import pytest
import testinfra


@pytest.fixture
def node(host):
    return testinfra.get_host(f"podman://{host.backend.get_hostname()}")
