"""lab_link_gso: the IPv4 GSO/GRO maximum sizes read and set over rtnetlink, on a veth of a network namespace of
the test's own (unshare), as the podman_lab role sets them on the host side of the nodes' links for BIG TCP."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).parents[2] / "plugins" / "modules" / "lab_link_gso.py"
SCRIPT = """
import json, subprocess, sys
sys.path.insert(0, sys.argv[1])
import lab_link_gso as m
subprocess.run(["ip", "link", "add", "ga", "type", "veth", "peer", "name", "gb"], check=True)
shown = subprocess.run(["ip", "-j", "link", "show", "ga"], capture_output=True, text=True).stdout
index = json.loads(shown)[0]["ifindex"]
seen = {"before": m.sizes(index)}
m.set_sizes(index, 196608)
seen["after"] = m.sizes(index)
for name, call in (("too_big", lambda: m.set_sizes(index, 600000)), ("gone", lambda: m.sizes(index + 100))):
    try:
        call()
    except OSError as exc:
        seen[name] = exc.errno
print(json.dumps(seen))
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                                reason="creates a veth in a network namespace of its own: root, unshare and ip")


def test_sizes_are_read_and_set_over_rtnetlink():
    out = subprocess.run(["unshare", "--net", sys.executable, "-c", SCRIPT, str(MODULE.parent)],
                         capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["before"] == [65536, 65536] and seen["after"] == [196608, 196608]
    # The kernel's own refusals: above the veth's tso_max_size (524280), and an interface that is not there.
    assert (seen["too_big"], seen["gone"]) == (22, 19)
