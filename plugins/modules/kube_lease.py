"""Documentation of the action plugin netlab.lab.kube_lease (plugins/action/kube_lease.py)."""

DOCUMENTATION = r"""
module: kube_lease
short_description: Take the lab's lock on a cluster, a coordination.k8s.io/v1 Lease
version_added: "0.8.0"
description:
  - One run per cluster, whichever controller runs it. The Lease O(namespace)/O(name) names its holder in
    C(holderIdentity) (C(host/pid) of the run's ansible-playbook), with C(acquireTime), C(renewTime) and
    C(leaseDurationSeconds); the command and the run id are its annotations.
  - Taken with a create. When the Lease is there it is read. A Lease held by this run already is left as it
    is. A Lease whose holder is alive (on this host, its pid runs ansible-playbook; on another host, its
    renewTime plus leaseDurationSeconds has not passed) is refused, naming it. Otherwise it is taken over
    with a replace that carries the read resourceVersion; when another controller took it over first
    (409 Conflict) the run is refused, naming that one.
  - The namespace is created when missing, labelled C(app.kubernetes.io/part-of=netlab).
  - The benchmark renews the Lease between tests (C(netlab.lab.bench_kube) O(lease)) and the role deletes it
    at the end of the run (C(kubernetes.core.k8s) state=absent).
options:
  name:
    description: The Lease's name.
    type: str
    required: true
  namespace:
    description: The project's namespace that holds the Lease.
    type: str
    required: true
  seconds:
    description: leaseDurationSeconds, 30 to 86400; longer than the longest test.
    type: int
    default: 600
  run_id:
    description: The run's id, when known.
    type: str
  kubeconfig:
    description: Path of the kubeconfig; empty for kubernetes.core's default.
    type: path
  context:
    description: Context of the kubeconfig; empty for its current context.
    type: str
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: none
notes:
  - The controller's Python needs the C(kubernetes) package, as kubernetes.core's modules do.
"""

EXAMPLES = r"""
- name: Take the cluster's Lease
  netlab.lab.kube_lease:
    name: netlab-lab
    namespace: netlab-system
"""

RETURN = r"""
state:
  description: C(taken), C(held) or C(taken_over).
  returned: success
  type: str
lease:
  description: name, namespace, host and pid of the Lease this run holds.
  returned: success
  type: dict
holder:
  description: The live holder, when refused.
  returned: failure
  type: dict
previous:
  description: The gone holder whose Lease was taken over.
  returned: success
  type: dict
"""
