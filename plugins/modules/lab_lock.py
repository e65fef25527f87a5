"""Documentation of the action plugin netlab.lab.lab_lock (plugins/action/lab_lock.py)."""

DOCUMENTATION = r"""
module: lab_lock
short_description: Take or release the lab's lock on the controller
version_added: "0.8.0"
description:
  - One run per lab. The lock is a file on the controller, C(<key>.lock) in C($NETLAB_LOCK_DIR), else in
    C($XDG_STATE_HOME/netlab/locks) (C(~/.local/state/netlab/locks)), naming its holder, the host and the
    ansible-playbook process of the run (as the lookup C(netlab.lab.bench_controller) finds it), that
    process's command, since when, and the run id where known.
  - Taken with an exclusive create. A lock held by this run already is left as it is. A lock whose holder is
    alive is refused, naming it. A lock whose holder is gone (on this host, its pid no longer runs
    ansible-playbook) is taken over (a temporary file renamed over it, then read back to confirm), and the
    run says so in one line; it then waits (up to 15 s) for the gone run's watchdogs
    (C(netlab.lab.bench_watch)) to have cleaned its nodes up.
  - The callback C(netlab.lab.lab_lock) removes the run's locks when the playbook ends; a run that is killed
    leaves its lock, which the next run takes over.
options:
  key:
    description: The lab's key (letters, digits, '.', '_' and '-'), for example C(local-netlab).
    type: str
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it if this run holds it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description: The run's id, when it is known before the run starts.
    type: str
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: none
notes:
  - Runs on the controller, whatever host the task names.
"""

EXAMPLES = r"""
- name: Take the lab's lock
  netlab.lab.lab_lock:
    key: local-netlab
"""

RETURN = r"""
state:
  description: C(taken), C(held) (this run held it already) or C(taken_over).
  returned: success
  type: str
path:
  description: The lock file.
  returned: always
  type: str
holder:
  description: This run (host, pid, command, since, run_id), or the live holder when refused.
  returned: always
  type: dict
previous:
  description: The gone holder whose lock was taken over.
  returned: success
  type: dict
"""
