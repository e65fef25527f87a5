"""What the twin serves, as data: the resources (kind, group, scope, verbs) and the discovery documents built
from them (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``).

Only what the project's calls use is advertised: k8s_cluster_info GETs every group version ``/apis`` lists
(kubernetes.core ``k8s_cluster_info.py`` ``execute_module``: ``for resource in list(client.resources)``), so
a group listed here and not served would fail it (review F11). Shapes: apimachinery ``APIResourceList``,
``APIGroupList``, ``APIVersions`` (https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery-api)
and ``version.Info`` (k8s.io/apimachinery/pkg/version/types.go). Verbs and short names as a v1.33 API server
lists them (``kubectl api-resources -o wide``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The Kubernetes minor the lab's RKE2 release runs (roles/rke2/defaults rke2_version v1.33.5+rke2r1); the
# build metadata says the answer came from the twin, not from RKE2.
GIT_VERSION = "v1.33.5+netlab-twin"

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class Resource:
    """One served resource: ``name`` is the plural in the URL, ``group`` '' for the core group."""

    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    subresources: dict[str, str] = field(default_factory=dict)  # name -> kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How upstream names it in error messages: ``pods``, ``daemonsets.apps`` (schema.GroupResource.String)."""
        return f"{self.name}.{self.group}" if self.group else self.name

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES: dict[tuple[str, str], Resource] = {
    (r.group, r.name): r for r in (
        Resource("namespaces", "Namespace", namespaced=False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources={"status": "Namespace"}),
        Resource("nodes", "Node", namespaced=False, short_names=("no",), subresources={"status": "Node"}),
        Resource("pods", "Pod", short_names=("po",),
                 subresources={"exec": "PodExecOptions", "status": "Pod"}),
        Resource("services", "Service", short_names=("svc",),
                 verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
                 subresources={"status": "Service"}),
        Resource("serviceaccounts", "ServiceAccount", short_names=("sa",)),
        Resource("daemonsets", "DaemonSet", group="apps", short_names=("ds",), subresources={"status": "DaemonSet"}),
        # The lab's lock (the project's Lease); leases have no short name and no subresource upstream.
        Resource("leases", "Lease", group="coordination.k8s.io"),
    )
}
# The verbs of a subresource (pods/exec is create+get: WebSocket clients use GET, SPDY ones POST).
SUBRESOURCE_VERBS = {"exec": ["create", "get"]}


def resource(group: str, name: str) -> Resource | None:
    return RESOURCES.get((group, name))


def by_kind(kind: str) -> Resource | None:
    return next((r for r in RESOURCES.values() if r.kind == kind), None)


def groups() -> dict[str, list[Resource]]:
    """Resources per group version, e.g. ``{"v1": [...], "apps/v1": [...]}``."""
    out: dict[str, list[Resource]] = {}
    for res in RESOURCES.values():
        out.setdefault(res.api_version, []).append(res)
    return out


def version() -> dict[str, Any]:
    """``GET /version``: read by the client with serializer=just_json (kubernetes ``dynamic/discovery.py``
    ``_load_server_info``), so it must be a JSON object; k8s_cluster_info returns it as version.server.kubernetes."""
    return {"major": "1", "minor": "33", "emulationMajor": "1", "emulationMinor": "33",
            "minCompatibilityMajor": "1", "minCompatibilityMinor": "32", "gitVersion": GIT_VERSION,
            "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2025-09-10T00:00:00Z",
            "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64"}


def api_versions(address: str) -> dict[str, Any]:
    """``GET /api``: APIVersions (the client does not ask for it: the core group is built in, ``default_groups``)."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def api_groups() -> dict[str, Any]:
    """``GET /apis``: APIGroupList of the named groups served (the core group is not listed here)."""
    named: dict[str, list[str]] = {}
    for res in RESOURCES.values():
        if res.group:
            named.setdefault(res.group, [])
            if res.version not in named[res.group]:
                named[res.group].append(res.version)
    out = []
    for group, versions in named.items():
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        out.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


def resource_list(group_version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``/apis/<group>/<version>``: APIResourceList with subresources listed as ``pods/exec``
    (kubernetes ``dynamic/discovery.py`` ``get_resources_for_api_version`` splits them on '/'); None if not served."""
    served = groups().get(group_version)
    if served is None:
        return None
    resources: list[dict[str, Any]] = []
    for res in served:
        entry: dict[str, Any] = {"name": res.name, "singularName": res.singular, "namespaced": res.namespaced,
                                 "kind": res.kind, "verbs": list(res.verbs)}
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        resources.append(entry)
        for sub, kind in res.subresources.items():
            resources.append({"name": f"{res.name}/{sub}", "singularName": res.singular,
                              "namespaced": res.namespaced, "kind": kind,
                              "verbs": SUBRESOURCE_VERBS.get(sub, STATUS_VERBS)})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
