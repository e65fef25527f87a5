"""Documentation of the action plugin netlab.lab.bench_watch (plugins/action/bench_watch.py)."""

DOCUMENTATION = r"""
module: bench_watch
short_description: Stop what a local benchmark run started on a node when ansible-playbook dies
version_added: "0.8.0"
description:
  - A kill -9 or a Ctrl-C ends ansible-playbook before its cleanup tasks. With C(state=present), delegated to a
    node, this starts a watchdog on the controller, a process of its own session that waits for this
    ansible-playbook to end and then runs O(cleanup) on the node, through the node's own ssh command line (its
    user, key and options, and become), bounded to 8 s; then it exits.
  - With C(state=absent) it stops this run's watchdogs without their cleanup (the run has cleaned up on its own),
    so a watchdog never acts after a run that ended, and never touches the next one.
  - Each watchdog names itself in C(watch-<ansible-playbook pid>-<node>.json) in the lock directory of
    C(netlab.lab.lab_lock); a run that takes over the lock of a killed run waits for that run's watchdogs.
options:
  cleanup:
    description: The node's cleanup command (C(state=present)), as C(netlab.lab.bench_watched) returns it.
    type: list
    elements: str
  state:
    description: C(present) starts the node's watchdog, C(absent) stops this run's watchdogs.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: none
notes:
  - The watchdog connects as the task does, without a terminal, over the node's ssh command line or C(podman exec)
    (connection C(containers.podman.podman)); an ssh password or a become password cannot be typed, and is
    refused. Another connection gets no watchdog, and a warning says so.
"""

EXAMPLES = r"""
- name: Watch each node of the run
  netlab.lab.bench_watch:
    cleanup: "{{ item.argv }}"
  delegate_to: "{{ item.host }}"
  become: true
  loop: "{{ bench_nodes | netlab.lab.bench_watched(service.delete) }}"

- name: Stop the run's watchdogs after its cleanup
  netlab.lab.bench_watch:
    state: absent
"""

RETURN = r"""
watchdog:
  description: The watchdog's process (pid, start time in clock ticks since boot).
  returned: state=present
  type: dict
state_file:
  description: The file that names the watchdog while it runs.
  returned: state=present
  type: str
stopped:
  description: The nodes whose watchdogs were stopped.
  returned: state=absent
  type: list
  elements: str
"""
