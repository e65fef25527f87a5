"""bench_cluster_access: a kubeconfig, its context and its API server, each bad one named, the server's answer
awaited within the bound. Servers on loopback: one that answers /version, one that accepts and never answers,
a closed port."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible_collections.netlab.lab.plugins.modules import bench_cluster_access as access


def write_kubeconfig(path, server, contexts=("twin",), current="twin", user=None):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user or {"token": "secret"}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}} for name in contexts],
        **({"current-context": current} if current else {}),
    }))
    return str(path)


@pytest.fixture
def answering():
    """An API server on loopback that answers /version (401 without the kubeconfig's token)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/version/" or self.path == "/version"
            status = 200 if ok and self.headers.get("Authorization") == "Bearer secret" else 401
            body = json.dumps({"gitVersion": "v1.33.5+twin"} if status == 200 else {"kind": "Status"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent():
    """A loopback port whose connections the kernel accepts and no one ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def closed():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def problem(kubeconfig, context="", timeout=10.0):
    """(setting, message) of the first problem, or the server's version."""
    try:
        configuration, _ = access.load(kubeconfig, context)
        return access.ask_version(configuration, timeout, f"the API server {configuration.host}")
    except access.AccessProblem as exc:
        return exc.setting, str(exc)


def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path):
    assert problem(f"{tmp_path}/absent") == ("kubeconfig", f"the kubeconfig {tmp_path}/absent does not exist")


@pytest.mark.parametrize(("text", "message"), [
    ("clusters: [\n", "does not parse as YAML: expected the node content, but found '<stream end>' (line 2)"),
    ("", "is empty"),
    ("- a list\n", "is not a kubeconfig (a mapping with clusters, contexts and users)"),
])
def test_a_kubeconfig_that_does_not_parse_is_named(tmp_path, text, message):
    path = tmp_path / "config"
    path.write_text(text)
    assert problem(str(path)) == ("kubeconfig", f"the kubeconfig {path} {message}")


def test_a_context_the_kubeconfig_lacks_is_named_with_those_it_has(tmp_path, answering):
    path = write_kubeconfig(tmp_path / "config", answering, contexts=("twin", "lab"))
    assert problem(path, "nope") == ("context", f"the kubeconfig {path} has no context nope (its contexts: twin, lab)")


def test_a_kubeconfig_without_a_current_context_asks_for_one(tmp_path, answering):
    path = write_kubeconfig(tmp_path / "config", answering, current=None)
    assert problem(path) == ("context", f"the kubeconfig {path} has no current context (its contexts: twin)")


def test_a_context_whose_user_has_a_missing_certificate_names_the_kubeconfig(tmp_path, closed):
    # The client reads certificates for https servers only, before it connects.
    path = write_kubeconfig(tmp_path / "config", closed,
                            user={"client-certificate": str(tmp_path / "absent.crt"), "client-key": "k"})
    assert problem(path) == ("kubeconfig", f"the kubeconfig {path}, context twin: "
                                           f"File does not exist: {tmp_path}/absent.crt")


def test_the_server_answers_with_its_version(tmp_path, answering):
    path = write_kubeconfig(tmp_path / "config", answering, contexts=("twin", "lab"))
    assert problem(path) == "v1.33.5+twin"
    configuration, read = access.load(path, "lab")
    assert (configuration.host, read) == (answering, {"kubeconfig": path, "context": "lab"})


def test_credentials_the_server_refuses_are_its_answer(tmp_path, answering):
    path = write_kubeconfig(tmp_path / "config", answering, user={"token": "wrong"})
    assert problem(path) == ("server", f"the API server {answering} answered 401 Unauthorized")


def test_a_closed_port_is_refused_at_once(tmp_path, closed):
    started = time.monotonic()
    assert problem(write_kubeconfig(tmp_path / "config", closed)) == (
        "server", f"the API server {closed} refused the connection")
    assert time.monotonic() - started < 2


def test_a_server_that_never_answers_is_given_up_within_the_bound(tmp_path, silent):
    started = time.monotonic()
    assert problem(write_kubeconfig(tmp_path / "config", silent), timeout=1.5) == (
        "server", f"the API server {silent} did not answer within 1.5 s")
    # One request, not urllib3's default of three retries: the bound is the whole wait.
    assert 1.4 < time.monotonic() - started < 2.5
