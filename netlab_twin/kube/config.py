"""The twin's credentials: a bearer token, a TLS certificate for 127.0.0.1 and the kubeconfig that names both.

The kubeconfig carries the CA inline (``certificate-authority-data``), never ``insecure-skip-tls-verify``:
both client paths verify it, urllib3 for REST and websocket-client for exec (kubernetes
``stream/ws_client.py`` ``create_websocket``: ``cert_reqs=CERT_REQUIRED``, ``ca_certs`` from the
kubeconfig), and the hostname check needs 127.0.0.1 as an IP SAN, which ``fakepve.certs.make_cert`` writes.
The token goes in ``users[].user.token``; kubernetes ``config/kube_config.py`` ``_load_user_token`` sends it as
``authorization: Bearer <token>``. Layout: https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import yaml
from fakepve.certs import make_cert

NAME = "netlab-twin"


def credentials(directory: str | Path) -> tuple[str, str, str]:
    """(certificate file, key file, token): a fresh certificate (also the client's CA) and a random token."""
    cert, key = make_cert(str(directory), name="kube-twin", hosts=("127.0.0.1",))[:2]
    return cert, key, secrets.token_urlsafe(32)


def kubeconfig(directory: str | Path, url: str, cafile: str, token: str, namespace: str = "default") -> Path:
    """Write ``kubeconfig`` in directory (mode 0600: it holds the token) with one cluster, user and context."""
    ca = base64.b64encode(Path(cafile).read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": {"server": url, "certificate-authority-data": ca}}],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}],
        "current-context": NAME,
        "preferences": {},
    }
    path = Path(directory) / "kubeconfig"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        yaml.safe_dump(doc, out, sort_keys=False)
    return path
