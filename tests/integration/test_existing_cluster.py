"""The existing-cluster inventory: what a user with only a kubeconfig and two node names gets. No lab, no
cluster: the Kubernetes transport renders its objects and calls and stops (bench_render_only)."""

import os
import re
from pathlib import Path

from render_checks import check_rendered

from netlab_twin import lanes

ROOT = Path(__file__).resolve().parents[2]


def test_existing_cluster_renders_with_only_a_kubeconfig_and_two_node_names(tmp_path, recap):
    """inventories/existing, given a kubeconfig path and the local lab's node names: no cluster, no node contacted."""
    proc = lanes.run(
        ["ansible-playbook", "site.yml", "-i", "inventories/existing", "--tags", "bench",
         "-e", f"netlab_results_dir={tmp_path}", "-e", "bench_render_only=true",
         "-e", f"bench_kubeconfig={tmp_path}/absent-kubeconfig",
         "-e", '{"bench_nodes": ["netlab-agent-1", "netlab-agent-2"]}'],
        cwd=ROOT, env={**os.environ, "NETLAB_CHARTS": "false"}, timeout=300)
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0
    assert list(recap(proc.stdout)) == ["localhost"], "no node may be contacted"
    # No task that would contact the cluster ran (a task header followed by a result).
    for task in ("Read the benchmark nodes", "Read the DaemonSets of every namespace",
                 "Create the run's namespace and Service", "Delete the run's namespace and everything in it"):
        assert not re.search(rf"TASK \[bench : {re.escape(task)}\] \**\n(ok|changed|fatal)", proc.stdout), task
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    docs = check_rendered(run, ["netlab-agent-1", "netlab-agent-2"])
    assert [d["kind"] for d in docs].count("Service") == 1, "a cluster's matrix has the Service test"
