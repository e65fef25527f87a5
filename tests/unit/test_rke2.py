"""RKE2 install command construction."""

import pytest

from ansible_collections.netlab.lab.plugins.module_utils import rke2

V = "v1.33.5+rke2r1"


def test_script_method():
    assert rke2.install_environment("script", V, "server") == {
        "INSTALL_RKE2_VERSION": V, "INSTALL_RKE2_TYPE": "server"}


def test_tarball_method():
    env = rke2.install_environment("tarball", V, "agent")
    assert env == {"INSTALL_RKE2_VERSION": V, "INSTALL_RKE2_TYPE": "agent", "INSTALL_RKE2_METHOD": "tar"}


def test_airgap_method():
    env = rke2.install_environment("airgap", V, "agent", "/srv/rke2-artifacts")
    assert env["INSTALL_RKE2_ARTIFACT_PATH"] == "/srv/rke2-artifacts"
    assert "INSTALL_RKE2_METHOD" not in env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("curl", V, "server"), "install method"),
        (("script", V, "worker"), "node type"),
        (("script", "1.33.5", "server"), "must look like"),
        (("script", "v1.33.5+k3s1", "server"), "must look like"),
        (("airgap", V, "server", ""), "needs rke2_artifact_path"),
        (("airgap", V, "server", "relative/dir"), "absolute"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(rke2.InstallError, match=message):
        rke2.install_environment(*args)

