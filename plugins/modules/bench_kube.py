"""Documentation of the action plugin netlab.lab.bench_kube (plugins/action/bench_kube.py)."""

DOCUMENTATION = r"""
module: bench_kube
short_description: Run the benchmark tests of the Kubernetes transport in their client pods
version_added: "0.7.1"
description:
  - Runs, one after another, the tests planned by the filter C(netlab.lab.bench_plan) for the Kubernetes
    transport, each in its client pod through the API server's exec (as C(netlab.lab.kube_exec) runs one
    command), from the controller, with one API client for the whole plan.
  - Before the first test it starts the CPU sampler of each server pod, and after the last it stops and
    reads them, adding each test's server readings (those around the client's own) to its raw file. A
    sampler that cannot be started or read is a warning; its tests keep the client's CPU only.
  - Each test's exec ends within the test's bound (C(task_timeout) of its C(bounds)), besides the coreutils
    C(timeout) the command runs under in the pod; while its output says the server is busy with the previous
    test or not listening yet, it is tried again (the test's retries and delay).
  - Each test's raw file (C(netlab.lab.bench_raw)'s document) is written to O(run_dir)/raw before the next test
    starts, and the console shows one line per finished test with its figure.
  - In check mode no test runs.
options:
  tests:
    description: The tests to run, in order, as C(netlab.lab.bench_plan) returns them for the Kubernetes transport.
    type: list
    elements: dict
    required: true
  settings:
    description: The run's benchmark settings (duration, omit, ...), as the plan was made with.
    type: dict
    required: true
  run_dir:
    description: The run's directory on the controller.
    type: path
    required: true
  lease:
    description:
      - The cluster's Lease this run holds (C(netlab.lab.kube_lease)'s C(lease) return, name, namespace, host and
        pid), renewed before each test. When it is no longer this run's, no further test starts and the task fails.
    type: dict
  kubeconfig:
    description:
      - Path of the kubeconfig; empty for kubernetes.core's default (C(K8S_AUTH_KUBECONFIG), C(~/.kube/config)).
    type: path
  context:
    description: Context of the kubeconfig; empty for its current context.
    type: str
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: none
notes:
  - A test that fails (no exit code, or not 0) is kept with its error and listed in RV(failed_tests); the next one runs.
  - The controller's Python needs the C(kubernetes) package, as kubernetes.core's modules do.
"""

EXAMPLES = r"""
- name: Run the tests in the client pods
  netlab.lab.bench_kube:
    tests: "{{ plan }}"
    settings: "{{ settings }}"
    run_dir: "{{ run_dir }}"
    kubeconfig: ~/.kube/config
  register: kube_run
"""

RETURN = r"""
tests:
  description: The ids of the tests that ran.
  type: list
  elements: str
  returned: always
failed_tests:
  description: The ids of the tests whose client failed; their raw files say why.
  type: list
  elements: str
  returned: always
sampler_problems:
  description: What kept a server pod's CPU sampler from starting, in words.
  type: list
  elements: str
  returned: always
"""
