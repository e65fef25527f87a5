"""Fixtures of the Proxmox tests: the controller's login key for the twin's nodes."""

import pytest

from netlab_twin import session_key


@pytest.fixture(scope="session")
def key(tmp_path_factory):
    """(private key path, public key) the lab's VMs get as their cloud-init key."""
    return session_key(tmp_path_factory.mktemp("lab-key"))
