"""The twin's HTTP side: an aiohttp application that routes the REST paths of the served resources, checks
the bearer token, answers every error as a Status and logs each request for the tests.

Paths (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris):
``/api/v1/<resource>[/<name>[/<sub>]]``, ``/api/v1/namespaces/<ns>/<resource>[/<name>[/<sub>]]`` and the
same under ``/apis/<group>/<version>``. Writes go through ``Objects`` (the plain registry behaviour here;
pods.py's Lifecycle adds admission, pod status, deletion and Services), reads straight to the store.
No watch: kubernetes.core polls (``module_utils/k8s/waiter.py``), so ``?watch`` answers 405 and shows at once
if a watch is ever added.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from netlab_twin.kube import cluster, discovery
from netlab_twin.kube.discovery import Resource
from netlab_twin.kube.store import (
    ApiError,
    Obj,
    bad_request,
    forbidden,
    internal_error,
    method_not_allowed,
    not_found,
    status,
    unauthorized,
    unsupported_media_type,
)

if TYPE_CHECKING:
    from netlab_twin.kube import KubeTwin

LOG = logging.getLogger("netlab_twin.kube")
NAMESPACES = discovery.RESOURCES[("", "namespaces")]
# What a PATCH may carry (the API server's patch types; apply-patch+yaml, server-side apply, is not served).
PATCH_TYPES = ("application/strategic-merge-patch+json", "application/merge-patch+json")
TWIN: web.AppKey[Any] = web.AppKey("twin")
_TRUE = {"true", "1", "t", "yes", "y"}  # strconv.ParseBool and friends: the server takes True, true, 1


class Gone(Exception):
    """The api_gone fault took the connection of the request being served: no answer goes out."""


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


class Objects:
    """The registry's plain behaviour for writes: create, patch, replace, delete straight in the store, with
    the namespace lifecycle admission (no objects in a missing or terminating namespace) and the namespace
    strategy's defaults. pods.py's Lifecycle extends it."""

    def __init__(self, twin: KubeTwin) -> None:
        self.twin, self.store = twin, twin.store

    def admit_namespace(self, res: Resource, namespace: str | None, name: str) -> None:
        """NamespaceLifecycle admission (``plugin/pkg/admission/namespace/lifecycle``): 404 for a missing
        namespace, 403 while it is being terminated."""
        if not res.namespaced or not namespace:
            return
        ns = self.store.get(NAMESPACES, None, namespace)  # NotFound: namespaces "x" not found
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(res, name, f"unable to create new content in namespace {namespace} because it is "
                                       "being terminated")

    async def seed(self, objects: list[Obj]) -> None:
        """Store the objects a cluster has before any call (the runtime's cluster_objects), as they are."""
        for obj in objects:
            res = discovery.by_kind(obj["kind"])
            assert res is not None, obj["kind"]
            self.store.create(res, obj["metadata"].get("namespace"), obj)

    async def create(self, res: Resource, namespace: str | None, obj: Obj) -> Obj:
        self.admit_namespace(res, namespace, obj.get("metadata", {}).get("name", ""))
        if res is NAMESPACES:
            base = cluster.namespace(obj["metadata"].get("name", ""), obj["metadata"].get("labels"))
            obj = {**obj, "metadata": {**obj["metadata"], "labels": base["metadata"]["labels"]},
                   "spec": {**base["spec"], **obj.get("spec", {})}, "status": base["status"]}
        return self.store.create(res, namespace, obj)

    async def patch(self, res: Resource, namespace: str | None, name: str, patch: Obj) -> Obj:
        return self.store.patch(res, namespace, name, patch)

    async def replace(self, res: Resource, namespace: str | None, name: str, obj: Obj) -> Obj:
        if obj.get("metadata", {}).get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        return self.store.replace(res, namespace, obj)

    async def delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        """Immediate removal; the answer is a Success Status naming the object (apiserver ``registry/generic``
        ``Store.Delete`` without ReturnDeletedObject), the object itself for Services (ReturnDeletedObject)."""
        gone = self.store.delete(res, namespace, name)
        if res.name == "services":
            return gone
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.name,
                   "uid": gone["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _parse(path: str) -> tuple[Resource, str | None, str | None, str | None] | None:
    """(resource, namespace, name, subresource) of a resource path; None for a discovery or unknown path."""
    found = re.fullmatch(r"/api/(v1)/(.+)|/apis/([^/]+)/([^/]+)/(.+)", path.rstrip("/"))
    if not found:
        return None
    group, version, rest = ("", "v1", found.group(2)) if found.group(1) else found.group(3, 4, 5)
    parts = rest.split("/")
    if parts[0] == "namespaces" and len(parts) >= 3 and discovery.resource(group, parts[2]):
        namespace, parts = parts[1], parts[2:]
    else:
        namespace = None
    res = discovery.resource(group, parts[0])
    if res is None or res.version != version or len(parts) > 3:
        return None
    if namespace and not res.namespaced:
        return None
    return res, namespace, parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None


def _not_served() -> ApiError:
    return ApiError(status(404, "NotFound", "the server could not find the requested resource"))


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except ValueError as err:
        raise bad_request(f"error decoding the request body: {err}") from err


async def _discovery(twin: KubeTwin, request: web.Request) -> Obj | None:
    path = request.path.rstrip("/") or "/"
    if path == "/version":
        return discovery.version()
    if path == "/api":
        return discovery.api_versions(f"127.0.0.1:{twin.port}")
    broken = twin.faults.peek("broken_api_group")
    if path == "/apis":
        groups = discovery.api_groups()
        if broken:
            # An aggregated API whose APIService is stale: listed here, failing when asked (review F11).
            name, version = broken.args.get("group", "metrics.k8s.io"), broken.args.get("version", "v1beta1")
            entry = {"groupVersion": f"{name}/{version}", "version": version}
            groups["groups"].append({"name": name, "versions": [entry], "preferredVersion": entry})
        return groups
    if path == "/api/v1":
        return discovery.resource_list("v1")
    if found := re.fullmatch(r"/apis/([^/]+/[^/]+)", path):
        if broken and found.group(1) == f"{broken.args.get('group', 'metrics.k8s.io')}/" \
                f"{broken.args.get('version', 'v1beta1')}":
            raise internal_error("Internal error occurred: error resolving resource")
        return discovery.resource_list(found.group(1))
    return None


async def dispatch(request: web.Request) -> web.StreamResponse:
    twin: KubeTwin = request.app[TWIN]
    if request.method == "GET" and (doc := await _discovery(twin, request)) is not None:
        return web.json_response(doc)
    parsed = _parse(request.path)
    if parsed is None:
        raise _not_served()
    res, namespace, name, sub = parsed
    objects: Objects = twin.objects
    if sub == "exec" and res.name == "pods" and request.method in ("GET", "POST"):
        from netlab_twin.kube import exec as kube_exec  # the WebSocket side, kept in its own module

        return await kube_exec.serve(twin, request, namespace or "", name or "")
    if sub not in (None, "status"):
        raise _not_served()
    if request.method == "GET" and name:
        return web.json_response(twin.store.get(res, namespace, name))
    if request.method == "GET":
        if truthy(request.query.get("watch")):
            raise method_not_allowed("the twin serves no watch: kubernetes.core polls (waiter.py)")
        return web.json_response(twin.store.list(res, namespace, request.query.get("labelSelector", ""),
                                                 request.query.get("fieldSelector", "")))
    if request.method == "POST" and not name:
        body = await _body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request is not an object")
        return web.json_response(await objects.create(res, namespace, body), status=201)
    if request.method == "PATCH" and name:
        kind = request.content_type
        if kind not in PATCH_TYPES:
            raise unsupported_media_type(", ".join(PATCH_TYPES))
        return web.json_response(await objects.patch(res, namespace, name, await _body(request)))
    if request.method == "PUT" and name:
        return web.json_response(await objects.replace(res, namespace, name, await _body(request)))
    if request.method == "DELETE" and name:
        return web.json_response(await objects.delete(res, namespace, name))
    raise method_not_allowed(f"{request.method} is not allowed on {request.path}")


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
    """Log, authenticate (the exact ``Bearer <token>``: a bare token is refused, as the real API refuses it),
    then answer ApiErrors and crashes as Status documents."""
    twin: KubeTwin = request.app[TWIN]
    twin.requests.append((request.method, request.path, request.query_string))
    try:
        await twin.before_request(request)
        if request.headers.get("Authorization") != f"Bearer {twin.token}":
            raise unauthorized()
        return await handler(request)
    except ApiError as err:
        return web.json_response(err.body, status=err.code)
    except Gone:
        return web.Response(status=503)  # written to a closed transport: the client sees the connection drop
    except web.HTTPException:
        raise
    except Exception as err:  # a twin bug must reach the client as the API's 500, and the log
        LOG.exception("twin error on %s %s", request.method, request.path)
        failure = internal_error(f"{type(err).__name__}: {err}")
        return web.json_response(failure.body, status=failure.code)


def make_app(twin: KubeTwin) -> web.Application:
    app = web.Application(middlewares=[middleware], client_max_size=16 * 1024 * 1024)
    app[TWIN] = twin
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


__all__ = ["TWIN", "Objects", "make_app", "not_found", "truthy"]
