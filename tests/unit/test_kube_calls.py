"""Kubernetes transport: every kubernetes.core call, and the role's tasks against the rendered calls."""

import re
import shlex
from pathlib import Path

import yaml
from kube_cases import IMAGE, NODES, RUN, SETTINGS, render

from ansible_collections.netlab.lab.plugins.plugin_utils.plan import commands, matrix
from ansible_collections.netlab.lab.plugins.plugin_utils.transport import kube_calls, kube_objects, kube_read


def test_every_kubernetes_core_call(reference):
    docs = render(reference)
    nodes = kube_read.placeholder_nodes(NODES, [e["placement"] for e in reference])
    plan = commands.plan(reference, nodes, SETTINGS, {"namespace": docs[0]["metadata"]["name"]})
    calls = kube_calls.all_calls(NODES, docs, 300, 120, plan)
    assert [d["kind"] for d in calls["create_namespace"]["definition"]] == ["Namespace", "Service"]
    # Created together, not waited on one by one (review F1): polled every 2 s for up to the pod timeout.
    assert calls["create_pods"]["wait"] is False and len(calls["create_pods"]["definition"]) == 5
    pods = [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"]
    assert calls["wait_pods"]["names"] == pods and calls["wait_pods"]["delay"] * calls["wait_pods"]["retries"] == 300
    assert calls["wait_service_account"] == {"kind": "ServiceAccount", "namespace": docs[0]["metadata"]["name"],
                                             "name": "default", "wait": True, "wait_sleep": 1, "wait_timeout": 30}
    assert calls["read_stale"]["label_selectors"] == ["app.kubernetes.io/name=netlab-iperf3"]
    assert calls["delete_namespace"] == {"state": "absent", "api_version": "v1", "kind": "Namespace",
                                         "name": docs[0]["metadata"]["name"], "wait": True, "wait_sleep": 1,
                                         "wait_timeout": 120}
    assert calls["read_cilium_pods"][1]["field_selectors"] == [f"spec.nodeName={NODES[1]}"]
    assert "namespace" not in calls["read_daemonsets"], "a CNI may run outside kube-system"
    moved = kube_calls.all_calls(NODES, cni_namespace="cilium-system")
    assert {c["namespace"] for c in moved["read_cilium_pods"] + moved["cilium_status"]} == {"cilium-system"}
    assert calls["cilium_status"][0]["container"] == "cilium-agent"
    assert calls["pod_mtu"]["pod"] == "iperf3-client"
    # Every exec bounded in the pod, through a shell (review F3, F4), and by the task.
    assert calls["cilium_status"][0]["command"] == "sh -c 'exec timeout 15 \"$@\"' sh cilium-dbg status -o json"
    assert kube_calls.in_pod_seconds(20) == 15 and kube_calls.in_pod_seconds(6) == 1
    assert all(call["task_timeout"] == 20 for call in [calls["iperf3_version"], calls["pod_mtu"],
                                                       *calls["cilium_status"], *calls["cpu_info"]])
    # One /proc/cpuinfo read per node, in a pod that runs on it.
    on = {d["metadata"]["name"]: d["spec"]["nodeName"] for d in docs if d["kind"] == "Pod"}
    assert sorted(c["node"] for c in calls["cpu_info"]) == sorted(NODES)
    assert all(on[c["pod"]] == c["node"] and shlex.split(c["command"])[4:] == ["cat", "/proc/cpuinfo"]
               for c in calls["cpu_info"])
    # With host tests only there is no pod on the pod network: its MTU is not read (review F8).
    host_docs = kube_objects.manifests(RUN, NODES, ["host"], IMAGE, 5201)
    host_calls = kube_calls.all_calls(NODES, host_docs, 300, 120)
    assert "pod_mtu" not in host_calls and host_calls["iperf3_version"]["pod"] == "iperf3-client-host"
    # The image needs netperf only when the pods serve it: then, and only then, its version is read.
    assert "netperf_version" not in calls
    placements = [e["placement"] for e in matrix.normalize_matrix(reference)]
    netperf_docs = kube_objects.manifests(RUN, NODES, placements, IMAGE, 5201, netperf_port=12865)
    assert kube_calls.all_calls(NODES, netperf_docs, 300, 120)["netperf_version"] == {
        "namespace": docs[0]["metadata"]["name"], "pod": "iperf3-client", "container": "iperf3",
        "command": "sh -c 'exec timeout 15 \"$@\"' sh netperf -V", "task_timeout": 20}
    assert len(calls["tests"]) == len(reference)
    lines = [shlex.split(t["args"]["command"])[4:] for t in calls["tests"]]
    assert shlex.join(lines[1]).startswith("timeout 62 iperf3 --client POD_IP:iperf3-server-cross")
    assert shlex.join(lines[0]).startswith("timeout 62 iperf3 --client NODE_IP:netlab-agent-2")
    assert calls["tests"][0]["cpu_pod"] == "iperf3-server-host"


# The project's own calls of the API server: its execs (plugins/action) and the lab's Lease (kube_lease), with
# k8s_exec's arguments and auth.
OWN_EXECS = {"netlab.lab.kube_exec", "netlab.lab.bench_kube", "netlab.lab.kube_lease"}
LEASE = {"namespace": "netlab-system", "name": "netlab-lab", "seconds": 600}


def role_k8s_tasks(root):
    """(file, module, args, task) of every task of the role that calls the cluster: kubernetes.core's, and
    the project's own execs."""
    out = []
    for path in sorted((root / "roles/bench/tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            for inner in [task, *task.get("block", [])]:
                for key, value in inner.items():
                    if key.startswith("kubernetes.core.") or key in OWN_EXECS:
                        out.append((path.name, key, value, inner))
    return out


def test_every_kubernetes_core_call_gets_the_kubeconfig(request):
    """Each module the role calls is in kubernetes.core's k8s group or has a module_defaults entry of its own."""
    import ansible_collections.kubernetes.core as core

    runtime = yaml.safe_load((Path(next(iter(core.__path__))) / "meta" / "runtime.yml").read_text())
    group = {f"kubernetes.core.{m}" for m in runtime["action_groups"]["k8s"]}
    main = yaml.safe_load((request.config.rootpath / "roles/bench/tasks/main.yml").read_text())
    defaults = main[0]["module_defaults"]
    assert set(defaults["group/kubernetes.core.k8s"]) == {"kubeconfig", "context"}
    used = {module for _, module, _, _ in role_k8s_tasks(request.config.rootpath)}
    for module in used - group:
        assert defaults.get(module) == defaults["group/kubernetes.core.k8s"], module


def templated(value):
    return isinstance(value, str) and "{{" in value


def var_of(step, cluster_steps):
    return "bench_cluster_calls" if step in cluster_steps else "bench_calls"


def test_the_role_passes_exactly_the_rendered_arguments(request):
    """Every kubernetes.core task writes how its module is asked (kube_calls.FIXED) literally and takes each
    argument that depends on the run from the rendered calls, and no other; every rendered call has its task,
    so k8s_calls.yaml (the calls whole) describes what the role runs."""
    tasks = role_k8s_tasks(request.config.rootpath)
    assert {module for _, module, _, _ in tasks} == {"kubernetes.core.k8s", "kubernetes.core.k8s_info",
                                                     "kubernetes.core.k8s_cluster_info", *OWN_EXECS}
    entries = [{"name": "svc", "placement": "service"}, {"name": "rr", "placement": "service", "protocol": "tcp_rr"}]
    docs = kube_objects.run_objects(RUN, NODES, entries, IMAGE, 5201, None, 12865)
    cluster_steps = kube_calls.cluster_calls(NODES, lease=LEASE)
    data = {**cluster_steps, **kube_calls.calls(docs, 300, 120, [])}
    whole = kube_calls.all_calls(NODES, docs, 300, 120, [], lease=LEASE)
    seen = set()
    for name, _, args, task in tasks:
        literal = {key: value for key, value in args.items() if not templated(value)}
        values = " ".join(value for value in args.values() if templated(value))
        if name == "run_kubernetes.yml":  # the plan's tests and CPU samplers, each exec bounded by the action
            assert args == {"tests": "{{ bench_todo }}", "settings": "{{ bench_run_settings }}",
                            "run_dir": "{{ bench_run_dir }}",
                            "lease": "{{ bench_lease.lease | combine({'run_id': bench_run_dir | basename}) "
                                     "if bench_lease.lease is defined else omit }}"}, name
            continue
        loop = str(task.get("loop", ""))
        named = set(re.findall(r"calls\.(\w+)", f"{values} {loop}"))
        assert len(named) <= 1, (name, named)
        step = named.pop() if named else None
        if step is None:  # every argument written here: a call that takes nothing from the run
            step = next(s for s in data if data[s] == {} and kube_calls.FIXED.get(s) == literal)
        seen.add(step)
        assert literal == kube_calls.FIXED.get(step, {}), (name, step)
        one = data[step][0] if isinstance(data[step], list) else data[step]
        # The loop item's node and the pods waited for are read by the role, not passed to the module.
        run_keys = set(one) - set(kube_calls.NOT_ARGUMENTS)
        keywords = {key: kube_calls.TASK_KEYWORDS[key] for key in run_keys & set(kube_calls.TASK_KEYWORDS)}
        run_keys -= set(keywords)
        # Namespaces of earlier runs are removed each by the name found (no call of the run names it).
        by_item = {"name"} if step == "remove_stale" else set()
        assert set(args) == run_keys | set(literal) | by_item, (name, step)
        for key, keyword in keywords.items():
            where = f"{var_of(step, cluster_steps)}.{step}" + ("[0]" if isinstance(data[step], list) else "")
            assert task.get(keyword) == f"{{{{ {where}.{key} }}}}", (name, keyword)
        assert whole[step] == ([kube_calls.whole(step, item) for item in data[step]] if isinstance(data[step], list)
                               else kube_calls.whole(step, data[step])), step
        var = var_of(step, cluster_steps)
        for key in run_keys:
            if step == "cilium_status":  # zipped with the Cilium agent named the step before
                want = "{{ item.0 }}" if key == "pod" else f"{{{{ item.1.{key} }}}}"
                assert loop == f"{{{{ bench_cilium_agents | zip({var}.{step}) | list }}}}", name
            elif isinstance(data[step], list):
                want = f"{{{{ item.{key} }}}}"
                assert loop == f"{{{{ {var}.{step} }}}}", name
            else:
                want = f"{{{{ {var}.{step}.{key} }}}}"
            assert args[key] == want, (name, key)
    assert seen == set(data) - {"tests"}, "every rendered call has its task"
    tasks_dir = request.config.rootpath / "roles/bench/tasks"
    for name in {name for name, _, _, _ in tasks}:
        assert "become" not in (tasks_dir / name).read_text(), f"{name}: no become for the cluster"
        assert "delegate_to" not in (tasks_dir / name).read_text(), f"{name}: the cluster is driven from here"
