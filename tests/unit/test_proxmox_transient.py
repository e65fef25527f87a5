"""The test netlab.lab.proxmox_transient, called as Ansible calls it: through TestModule().tests()."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netlab.lab.plugins.test import proxmox_transient as plugin

transient = plugin.TestModule().tests()["proxmox_transient"]


@pytest.mark.parametrize("msg", [
    "Failed to clone VM 101: 500 Internal Server Error: can't lock file '/var/lock/qemu-server/lock-9000.conf' "
    "- got timeout",
    "VM 101 is locked (clone)",
    "HTTPSConnectionPool(host='pve.lab', port=8006): Max retries exceeded with url: /api2/json/nodes "
    "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
    "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
    "HTTPSConnectionPool(host='pve.lab', port=8006): Read timed out. (read timeout=5)",
    "502 Bad Gateway: ",
    "504 Gateway Time-out: ",
    "401 Unauthorized: permission denied - invalid PVE ticket",
])
def test_a_failure_another_try_may_mend(msg):
    assert transient({"failed": True, "msg": msg}) is True


@pytest.mark.parametrize("result", [
    {"failed": True, "msg": "500 Internal Server Error: unable to find configuration file for VM 9000"},
    {"failed": True, "msg": "VM with vmid = 101 does not exist in cluster"},
    {"failed": True},
    {"failed": False, "msg": "VM 101 is locked (clone)"},
    {"changed": True, "msg": "VM 101 started"},
])
def test_success_or_a_lasting_failure_is_not_retried(result):
    assert transient(result) is False


def test_it_wants_a_registered_result():
    with pytest.raises(AnsibleFilterError, match="expects a registered task result, got str"):
        transient("VM 101 is locked")
