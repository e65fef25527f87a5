"""The twin's objects in memory: create, get, list, patch, delete, with the metadata, selectors and errors of
the real API server. Pure (no I/O, no clock but ``now``), so it is unit tested directly.

Upstream shapes:
- metadata on create (uid, resourceVersion, creationTimestamp, generation) and lists (``PodList`` with
  ``metadata.resourceVersion``, items without kind/apiVersion): Kubernetes API conventions
  (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md)
  and https://kubernetes.io/docs/reference/using-api/api-concepts/#collections;
- errors as ``Status`` (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/),
  messages as apimachinery ``pkg/api/errors/errors.go`` writes them (NewNotFound, NewAlreadyExists, ...);
- label selectors: apimachinery ``pkg/labels/selector.go`` ``Parse``; field selectors: ``pkg/fields/selector.go``
  and the pod strategy's ``PodToSelectableFields`` (``pkg/registry/core/pod/strategy.go``);
- merge patch: RFC 7386 (a stand-in for strategic merge on these kinds, see ``merge``);
- a write that names a resourceVersion other than the stored one's is a 409 Conflict (``NewConflict`` with
  the registry's ``OptimisticLockErrorMsg``, apiserver ``registry/generic/registry/store.go``);
- a patch that changes nothing is not written (apiserver ``etcd3/store.go`` ``GuaranteedUpdate`` skips an
  unchanged object), so even resourceVersion stays.
"""

from __future__ import annotations

import copy
import datetime
import re
import uuid
from typing import Any

from netlab_twin.kube.discovery import Resource

Obj = dict[str, Any]


class ApiError(Exception):
    """An error answer: the HTTP code and its Status body."""

    def __init__(self, body: Obj) -> None:
        super().__init__(body["message"])
        self.code: int = body["code"]
        self.body = body


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A Failure Status (metav1.Status)."""
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                 "reason": reason}
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _details(res: Resource, name: str) -> Obj:
    out: Obj = {"name": name}
    if res.group:
        out["group"] = res.group
    out["kind"] = res.name
    return out


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(status(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name)))


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(status(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', _details(res, name)))


def conflict(res: Resource, name: str) -> ApiError:
    """NewConflict with the registry's optimistic-lock message (apiserver ``registry/generic/registry/store.go``
    ``OptimisticLockErrorMsg``): a write whose resourceVersion is not the stored one's."""
    return ApiError(status(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           _details(res, name)))


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, "BadRequest", message))


def unauthorized() -> ApiError:
    return ApiError(status(401, "Unauthorized", "Unauthorized"))


def forbidden(res: Resource, name: str, why: str) -> ApiError:
    """NewForbidden: ``pods "x" is forbidden: <why>`` (admission plugins return their errors through it)."""
    return ApiError(status(403, "Forbidden", f'{res.qualified} "{name}" is forbidden: {why}', _details(res, name)))


def method_not_allowed(message: str) -> ApiError:
    return ApiError(status(405, "MethodNotAllowed", message))


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: {content_type}"))


def invalid(res: Resource, name: str, field: str, detail: str) -> ApiError:
    """NewInvalid: ``Pod "x" is invalid: <field>: <detail>``, details.kind is the Kind here, not the resource."""
    cause = {"reason": "FieldValueRequired", "message": detail, "field": field}
    details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.kind, "causes": [cause]}
    return ApiError(status(422, "Invalid", f'{res.kind} "{name}" is invalid: {field}: {detail}', details))


def internal_error(message: str) -> ApiError:
    return ApiError(status(500, "InternalError", f"Internal error occurred: {message}",
                           {"causes": [{"message": message}]}))


def now() -> str:
    """RFC 3339 in UTC with a Z, to the second, as metav1.Time marshals."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# MicroTime fields by kind: the API server decodes any RFC 3339 time and encodes it in UTC with microseconds and
# a Z (apimachinery pkg/apis/meta/v1/micro_time.go MarshalJSON: ``t.UTC().Format(RFC3339Micro)``).
MICRO_TIMES = {"Lease": ("acquireTime", "renewTime")}


def micro_time(value: Any) -> Any:
    """A MicroTime as the API server writes it back; a value that does not parse is left (the server's 400 for
    it is not modelled)."""
    if not isinstance(value, str):
        return value
    try:
        stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return stamp.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(res: Resource, obj: Obj) -> None:
    spec = obj.get("spec")
    for key in MICRO_TIMES.get(res.kind, ()):
        if isinstance(spec, dict) and key in spec:
            spec[key] = micro_time(spec[key])


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null removes, anything else replaces.

    Strategic merge (what k8s sends first on an update) differs only for lists with merge keys (containers,
    ports, conditions ...): it merges them by key, this replaces them. The project sends whole definitions, so
    the replaced list equals the merged one."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


# --- selectors -------------------------------------------------------------------------------------------

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)\s*$")
_KEY = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _terms(text: str) -> list[str]:
    """Split on the commas outside parentheses (commas inside ``in (a,b)`` separate values)."""
    out, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [t for t in out if t.strip()]


def label_matcher(selector: str) -> Any:
    """A predicate on a labels dict for a label selector; ApiError 400 if it does not parse."""
    checks = []
    for term in _terms(selector or ""):
        if found := _SET.match(term):
            key, op, values = found.group(1), found.group(2), {v.strip() for v in found.group(3).split(",")}
            if op == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:  # notin also matches a missing key (labels.Requirement.Matches, NotIn)
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif found := _EQ.match(term):
            key, op, value = found.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)
        elif found := _KEY.match(term):
            negate, key = found.groups()
            checks.append(lambda labels, k=key, n=bool(negate): (k in labels) != n)
        else:
            raise bad_request(f"unable to parse requirement: {term.strip()}")
    return lambda labels: all(check(labels or {}) for check in checks)


# Field labels each kind supports (beside metadata.name and metadata.namespace, which every kind has).
FIELDS: dict[str, dict[str, Any]] = {
    "Pod": {"spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
            "status.phase": lambda o: o.get("status", {}).get("phase", "")},
}
_COMMON = {"metadata.name": lambda o: o["metadata"].get("name", ""),
           "metadata.namespace": lambda o: o["metadata"].get("namespace", "")}


def field_matcher(kind: str, selector: str) -> Any:
    """A predicate on an object for a field selector (``f=v``, ``f==v``, ``f!=v``, comma = and); ApiError 400
    ``field label not supported: X`` for a field the kind does not index, as the registry's GetAttrs does."""
    fields = {**_COMMON, **FIELDS.get(kind, {})}
    checks = []
    for term in _terms(selector or ""):
        found = re.match(r"^\s*([\w./-]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not found:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        label, op, value = found.groups()
        if label not in fields:
            raise bad_request(f"field label not supported: {label}")
        read = fields[label]
        checks.append(lambda o, r=read, v=value, neg=op == "!=": (r(o) == v) != neg)
    return lambda obj: all(check(obj) for check in checks)


# --- the store -------------------------------------------------------------------------------------------

Key = tuple[str, str, str, str]  # (group, resource, namespace, name); namespace '' for cluster-scoped kinds


class Store:
    """Objects by (group, resource, namespace, name), with one resourceVersion counter for all of them (as
    etcd's revision is one counter for the cluster)."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.revision = 0

    def _next(self) -> str:
        self.revision += 1
        return str(self.revision)

    @staticmethod
    def _key(res: Resource, namespace: str | None, name: str) -> Key:
        return (res.group, res.name, namespace or "" if res.namespaced else "", name)

    def create(self, res: Resource, namespace: str | None, obj: Obj) -> Obj:
        """Store a new object as the API does on POST; returns the stored copy. The namespace comes from the
        path (a different one in the body is a 400, as in the registry's ``rest.BeforeCreate``)."""
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        name = meta.get("name") or ""
        if not name:
            raise invalid(res, "", "metadata.name", "Required value: name or generateName is required")
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        key = self._key(res, namespace, name)
        if key in self.objects:
            raise already_exists(res, name)
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        _encode(res, new)
        for server_owned in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(server_owned, None)
        meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next(), creationTimestamp=now(), generation=1)
        self.objects[key] = new
        return copy.deepcopy(new)

    def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        found = self.objects.get(self._key(res, namespace, name))
        if found is None:
            raise not_found(res, name)
        return copy.deepcopy(found)

    def exists(self, res: Resource, namespace: str | None, name: str) -> bool:
        return self._key(res, namespace, name) in self.objects

    def list(self, res: Resource, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "") -> Obj:
        """``{kind: <Kind>List, apiVersion, metadata: {resourceVersion}, items}`` in key order (etcd's), items
        without kind/apiVersion as the API server encodes them."""
        labels, fields = label_matcher(label_selector), field_matcher(res.kind, field_selector)
        items = []
        for key in sorted(self.objects):
            group, name, ns, _ = key
            if (group, name) != (res.group, res.name) or (namespace and ns != namespace):
                continue
            obj = self.objects[key]
            if labels(obj["metadata"].get("labels")) and fields(obj):
                item = copy.deepcopy(obj)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.revision)}, "items": items}

    def replace(self, res: Resource, namespace: str | None, obj: Obj) -> Obj:
        """Write a changed object (status updates, patches): a new resourceVersion, generation + 1 when the spec
        changed; an unchanged object is not written. Server-owned metadata stays the stored one's."""
        key = self._key(res, namespace, obj["metadata"]["name"])
        old = self.objects.get(key)
        if old is None:
            raise not_found(res, obj["metadata"]["name"])
        wanted = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        # A write that names a resourceVersion is a precondition (optimistic concurrency): only on the stored one.
        if wanted and wanted != old["metadata"].get("resourceVersion"):
            raise conflict(res, obj["metadata"]["name"])
        new = copy.deepcopy(obj)
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        _encode(res, new)
        meta = new.setdefault("metadata", {})
        for owned in ("uid", "creationTimestamp", "namespace", "resourceVersion", "generation"):
            if owned in old["metadata"]:
                meta[owned] = old["metadata"][owned]
            else:
                meta.pop(owned, None)
        if new == old:
            return copy.deepcopy(old)
        if new.get("spec") != old.get("spec"):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = self._next()
        self.objects[key] = new
        return copy.deepcopy(new)

    def patch(self, res: Resource, namespace: str | None, name: str, patch: Obj) -> Obj:
        """Merge ``patch`` (RFC 7386) into the stored object and write it; returns the result."""
        if not isinstance(patch, dict):
            raise bad_request("the patch is not a JSON object")
        merged = merge(self.get(res, namespace, name), patch)
        merged.setdefault("metadata", {})["name"] = name
        return self.replace(res, namespace, merged)

    def update(self, res: Resource, namespace: str | None, name: str, change: Any) -> Obj:
        """Apply ``change(obj)`` (mutating a copy) and write it: the controllers' status updates."""
        obj = self.get(res, namespace, name)
        change(obj)
        return self.replace(res, namespace, obj)

    def delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        """Remove an object at once; returns it as it was."""
        found = self.objects.pop(self._key(res, namespace, name), None)
        if found is None:
            raise not_found(res, name)
        self._next()
        return found

    def names(self, res: Resource, namespace: str | None = None) -> list[str]:
        return [key[3] for key in sorted(self.objects)
                if key[:2] == (res.group, res.name) and (namespace is None or key[2] == namespace)]
