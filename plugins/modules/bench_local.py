"""Documentation of the action plugin netlab.lab.bench_local (plugins/action/bench_local.py)."""

DOCUMENTATION = r"""
module: bench_local
short_description: Run benchmark tests of the local transport on their client's node
version_added: "0.4.0"
description:
  - Runs, one after another, tests planned by the filter C(netlab.lab.bench_plan) for the local transport
    (the datapath model's pods, reached with C(ip netns exec)) whose client runs on the node the task is
    delegated to; the filter C(netlab.lab.bench_segments) cuts a plan where the client's node changes.
  - Each test's client command goes through that node's connection (with become); while its output says
    the server is busy with the previous test or not listening yet, it is tried again (the test's retries
    and delay). The servers must already run (the role starts them for the whole run).
  - Each test's raw file (C(netlab.lab.bench_raw)'s document) is written to O(run_dir)/raw on the controller
    before the next test starts, and the console shows one line per finished test with its figure.
  - An action plugin, so nothing is copied to the node; in check mode no test runs.
options:
  tests:
    description: The tests to run, in order, as C(netlab.lab.bench_plan) returns them.
    type: list
    elements: dict
    required: true
  run_dir:
    description: The run's directory on the controller.
    type: path
    required: true
  disturbance:
    description:
      - Where the lab's nodes are containers of the controller's machine (the local lab), what else the machine
        ran beside each repeat, its foreign CPU (the machine's busy time less the nodes' cgroups, in percent of
        one core), kept in the raw file (C(netlab_foreign_cpu)). A repeat above O(disturbance.percent) is
        written to C(raw/disturbed/<id>.<n>.json) and run again at the end of its round, at most
        O(disturbance.reruns) times.
      - Without cgroups, or with O(disturbance.percent) 0, nothing is measured.
    type: dict
    suboptions:
      cgroups:
        description: The lab nodes' cgroups (podman's C(State.CgroupPath)), all of them.
        type: list
        elements: str
      percent:
        description: The threshold, in percent of one core.
        type: int
        default: 10
      reruns:
        description: How many times a disturbed repeat is run again at most.
        type: int
        default: 2
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: none
notes:
  - A test that fails (exit code not 0) is kept with its error and listed in RV(failed_tests); the next one runs.
"""

EXAMPLES = r"""
- name: Run the benchmark matrix
  netlab.lab.bench_local:
    tests: "{{ segment.tests }}"
    run_dir: "{{ run_dir }}"
  delegate_to: "{{ segment.host }}"
  become: true
  loop: "{{ plan | netlab.lab.bench_segments }}"
  loop_control:
    loop_var: segment
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
"""
