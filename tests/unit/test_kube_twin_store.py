"""The Kubernetes twin's store: metadata, lists, selectors, merge patch and Status errors in upstream's shapes."""

import re

import pytest

from netlab_twin.kube import discovery
from netlab_twin.kube.store import ApiError, Store, merge

PODS = discovery.resource("", "pods")
NAMESPACES = discovery.resource("", "namespaces")
DAEMONSETS = discovery.resource("apps", "daemonsets")


def pod(name, labels=None, node="a", phase=None, namespace=None):
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}
    if namespace:
        obj["metadata"]["namespace"] = namespace
    if phase:
        obj["status"] = {"phase": phase}
    return obj


@pytest.fixture
def store():
    return Store()


def test_create_fills_metadata_from_the_server(store):
    made = store.create(PODS, "ns1", pod("p", namespace="ns1"))
    meta = made["metadata"]
    assert meta["namespace"] == "ns1"
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert made["kind"] == "Pod" and made["apiVersion"] == "v1"
    second = store.create(PODS, "ns1", pod("q"))
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert second["metadata"]["uid"] != meta["uid"]
    assert store.get(PODS, "ns1", "p") == made


def test_create_refuses_duplicates_wrong_namespace_and_no_name(store):
    store.create(PODS, "ns1", pod("p"))
    with pytest.raises(ApiError) as dup:
        store.create(PODS, "ns1", pod("p"))
    assert dup.value.code == 409
    assert dup.value.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": 'pods "p" already exists', "reason": "AlreadyExists",
                              "details": {"name": "p", "kind": "pods"}, "code": 409}
    store.create(PODS, "ns2", pod("p"))  # the same name in another namespace is another object
    with pytest.raises(ApiError) as other:
        store.create(PODS, "ns1", pod("r", namespace="ns9"))
    assert other.value.code == 400 and other.value.body["reason"] == "BadRequest"
    with pytest.raises(ApiError) as nameless:
        store.create(PODS, "ns1", {"metadata": {}})
    assert nameless.value.code == 422 and nameless.value.body["reason"] == "Invalid"
    assert nameless.value.body["details"]["causes"][0]["field"] == "metadata.name"


def test_not_found_names_the_group_resource(store):
    with pytest.raises(ApiError) as missing:
        store.get(DAEMONSETS, "kube-system", "cilium")
    assert missing.value.code == 404
    assert missing.value.body["message"] == 'daemonsets.apps "cilium" not found'
    assert missing.value.body["details"] == {"name": "cilium", "group": "apps", "kind": "daemonsets"}
    with pytest.raises(ApiError):
        store.delete(PODS, "ns1", "nothing")


def test_cluster_scoped_objects_have_no_namespace(store):
    made = store.create(NAMESPACES, None, {"metadata": {"name": "bench", "namespace": "x"}})
    assert "namespace" not in made["metadata"]
    assert store.get(NAMESPACES, "ignored", "bench")["metadata"]["name"] == "bench"


def test_list_shape_items_without_kind(store):
    store.create(PODS, "b", pod("p2"))
    store.create(PODS, "a", pod("p1"))
    store.create(NAMESPACES, None, {"metadata": {"name": "a"}})
    listed = store.list(PODS)
    assert listed["kind"] == "PodList" and listed["apiVersion"] == "v1"
    assert listed["metadata"] == {"resourceVersion": str(store.revision)}
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [("a", "p1"),
                                                                                            ("b", "p2")]
    assert all("kind" not in i and "apiVersion" not in i for i in listed["items"])
    assert [i["metadata"]["name"] for i in store.list(PODS, "b")["items"]] == ["p2"]
    assert store.list(DAEMONSETS)["kind"] == "DaemonSetList"
    assert store.list(DAEMONSETS)["apiVersion"] == "apps/v1"


@pytest.mark.parametrize(("selector", "names"), [
    ("app=x", ["p1", "p2"]),
    ("app==x", ["p1", "p2"]),
    ("app!=x", ["p3", "p4"]),
    ("app", ["p1", "p2", "p3"]),
    ("!app", ["p4"]),
    ("tier in (web, db)", ["p1", "p3"]),
    ("tier notin (web)", ["p2", "p3", "p4"]),
    ("app=x,tier=web", ["p1"]),
    ("app=x, tier in (web,db)", ["p1"]),
    ("app.kubernetes.io/name=netlab-iperf3", ["p4"]),
    ("", ["p1", "p2", "p3", "p4"]),
])
def test_label_selectors(store, selector, names):
    store.create(PODS, "n", pod("p1", {"app": "x", "tier": "web"}))
    store.create(PODS, "n", pod("p2", {"app": "x"}))
    store.create(PODS, "n", pod("p3", {"app": "y", "tier": "db"}))
    store.create(PODS, "n", pod("p4", {"app.kubernetes.io/name": "netlab-iperf3"}))
    assert [i["metadata"]["name"] for i in store.list(PODS, "n", label_selector=selector)["items"]] == names


def test_a_label_selector_that_does_not_parse_is_a_bad_request(store):
    with pytest.raises(ApiError) as bad:
        store.list(PODS, "n", label_selector="app=(x")
    assert bad.value.code == 400


def test_field_selectors(store):
    store.create(PODS, "kube-system", pod("cilium-a", {"k8s-app": "cilium"}, node="a", phase="Running"))
    store.create(PODS, "kube-system", pod("cilium-b", {"k8s-app": "cilium"}, node="b", phase="Running"))
    store.create(PODS, "other", pod("x", node="a", phase="Pending"))

    def names(**kwargs):
        return [i["metadata"]["name"] for i in store.list(PODS, **kwargs)["items"]]

    assert names(namespace="kube-system", label_selector="k8s-app=cilium", field_selector="spec.nodeName=b") == [
        "cilium-b"]
    assert names(field_selector="status.phase!=Running") == ["x"]
    assert names(field_selector="metadata.name==cilium-a") == ["cilium-a"]
    assert names(field_selector="metadata.namespace=other,spec.nodeName=a") == ["x"]
    with pytest.raises(ApiError) as bad:
        store.list(PODS, field_selector="spec.dnsPolicy=ClusterFirst")  # upstream does not index it either
    assert bad.value.code == 400
    assert bad.value.body["message"] == "field label not supported: spec.dnsPolicy"
    with pytest.raises(ApiError):  # DaemonSets index only metadata fields
        store.list(DAEMONSETS, field_selector="status.phase=Active")


def test_merge_is_rfc7386():
    # The examples of RFC 7386 section 3.
    assert merge({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge({"a": "b"}, {"a": None}) == {}
    assert merge({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge({"a": "b"}, ["c"]) == ["c"]
    assert merge({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_patch_changes_resource_version_and_generation_only_when_something_changes(store):
    made = store.create(PODS, "n", pod("p", {"app": "x"}))
    same = store.patch(PODS, "n", "p", {"metadata": {"labels": {"app": "x"}}})
    assert same == made  # nothing written: even resourceVersion stays (etcd3 GuaranteedUpdate)
    labelled = store.patch(PODS, "n", "p", {"metadata": {"labels": {"tier": "web", "app": None}}})
    assert labelled["metadata"]["labels"] == {"tier": "web"}
    assert int(labelled["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    assert labelled["metadata"]["generation"] == 1  # metadata only
    assert labelled["metadata"]["uid"] == made["metadata"]["uid"]
    respec = store.patch(PODS, "n", "p", {"spec": {"nodeName": "b"}, "metadata": {"uid": "forged"}})
    assert respec["metadata"]["generation"] == 2
    assert respec["metadata"]["uid"] == made["metadata"]["uid"]
    assert store.get(PODS, "n", "p") == respec


def test_delete_removes_and_advances_the_revision(store):
    store.create(PODS, "n", pod("p"))
    before = store.revision
    gone = store.delete(PODS, "n", "p")
    assert gone["metadata"]["name"] == "p"
    assert store.revision == before + 1
    assert not store.exists(PODS, "n", "p")
    assert store.list(PODS)["items"] == []


LEASES = discovery.resource("coordination.k8s.io", "leases")


def test_leases_are_served_as_upstream_lists_them():
    assert LEASES.namespaced and LEASES.kind == "Lease" and LEASES.api_version == "coordination.k8s.io/v1"
    listed = discovery.resource_list("coordination.k8s.io/v1")["resources"]
    assert listed == [{"name": "leases", "singularName": "lease", "namespaced": True, "kind": "Lease",
                       "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}]
    assert {"name": "coordination.k8s.io", "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}} \
        in discovery.api_groups()["groups"]


def test_a_lease_is_created_once_and_replaced_only_on_its_resource_version(store):
    lease = {"metadata": {"name": "netlab-lab"}, "spec": {"holderIdentity": "a/1", "leaseDurationSeconds": 600,
                                                          "acquireTime": "2026-12-06T13:05:41.651686+01:00"}}
    first = store.create(LEASES, "netlab-system", lease)
    # MicroTime comes back in UTC with microseconds and a Z, whatever offset the client wrote.
    assert first["spec"]["acquireTime"] == "2026-12-06T12:05:41.651686Z"
    with pytest.raises(ApiError) as exists:
        store.create(LEASES, "netlab-system", lease)
    assert exists.value.code == 409 and exists.value.body["reason"] == "AlreadyExists"
    assert exists.value.body["message"] == 'leases.coordination.k8s.io "netlab-lab" already exists'
    taken = {**first, "spec": {**first["spec"], "holderIdentity": "b/2"}}
    second = store.replace(LEASES, "netlab-system", taken)
    assert second["spec"]["holderIdentity"] == "b/2"
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    stale = {**first, "spec": {**first["spec"], "holderIdentity": "c/3"}}  # read before b's replace
    with pytest.raises(ApiError) as conflict:
        store.replace(LEASES, "netlab-system", stale)
    assert conflict.value.code == 409
    assert conflict.value.body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Operation cannot be fulfilled on leases.coordination.k8s.io "netlab-lab": the object has been '
                   "modified; please apply your changes to the latest version and try again",
        "reason": "Conflict", "details": {"name": "netlab-lab", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 409}
    assert store.get(LEASES, "netlab-system", "netlab-lab")["spec"]["holderIdentity"] == "b/2"
    unconditional = {"metadata": {"name": "netlab-lab"}, "spec": {"holderIdentity": "d/4"}}
    assert store.replace(LEASES, "netlab-system", unconditional)["spec"]["holderIdentity"] == "d/4"
    store.delete(LEASES, "netlab-system", "netlab-lab")
    assert store.names(LEASES) == []
