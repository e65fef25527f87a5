"""How RKE2 is installed: the install script's environment for each method.

Pure functions, unit tested; the rke2 role passes the result to the script.
"""

from __future__ import annotations

import re

METHODS = ("script", "tarball", "airgap")
NODE_TYPES = ("server", "agent")
_VERSION = re.compile(r"^v1\.\d+\.\d+\+rke2r\d+$")


class InstallError(ValueError):
    """The install settings cannot produce a valid install."""


def install_environment(method: str, version: str, node_type: str, artifact_path: str = "") -> dict[str, str]:
    """Environment of the RKE2 install script (INSTALL_RKE2_*).

    script: the script fetches the release; tarball: the same as a tarball
    (INSTALL_RKE2_METHOD=tar); airgap: everything from a local artifact
    directory (INSTALL_RKE2_ARTIFACT_PATH), nothing is fetched.
    """
    if method not in METHODS:
        raise InstallError(f"install method {method!r} is not one of {', '.join(METHODS)}")
    if node_type not in NODE_TYPES:
        raise InstallError(f"node type {node_type!r} is not one of {', '.join(NODE_TYPES)}")
    if not _VERSION.match(version):
        raise InstallError(f"RKE2 version {version!r} must look like v1.33.5+rke2r1")
    env = {"INSTALL_RKE2_VERSION": version, "INSTALL_RKE2_TYPE": node_type}
    if method == "tarball":
        env["INSTALL_RKE2_METHOD"] = "tar"
    elif method == "airgap":
        if not artifact_path.startswith("/"):
            raise InstallError("an airgap install needs rke2_artifact_path, an absolute directory on the node")
        env["INSTALL_RKE2_ARTIFACT_PATH"] = artifact_path
    return env

