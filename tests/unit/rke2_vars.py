"""Templating the rke2 role's own defaults and vars with a real ansible-playbook run on localhost: a play that
loads them as its vars files and runs the tasks given (nothing of the role is copied into the tests)."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
PLAY = """
- name: {name}
  hosts: {hosts}
  connection: local
  gather_facts: false
  vars_files:
    - {root}/roles/rke2/defaults/main.yml
    - {root}/roles/rke2/vars/main.yml
  tasks:
{tasks}
"""
# The rke2 chart value paths the role may write (rancher/rke2-charts, the pinned release's): read by these unit
# tests and by molecule's rke2 checks.
CHART_PATHS = ROOT / "tests" / "data" / "rke2-chart-paths.yml"


def run(tmp: Path, name: str, hosts: str, tasks: str, inventory: str, extra: dict) -> None:
    """Run the play over ``inventory`` (a path or host list) with ``extra`` vars; fails with its output."""
    (tmp / "play.yml").write_text(PLAY.format(name=name, hosts=hosts, root=ROOT, tasks=tasks))
    proc = subprocess.run(["ansible-playbook", "-i", inventory, str(tmp / "play.yml"), "-e", json.dumps(extra)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
