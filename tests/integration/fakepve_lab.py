"""The reference lab of tests/integration/test_proxmox_lab.py, on the Proxmox twin's network.

fakepve is the Proxmox VE API and netlab_twin.Twin boots a real node container for each lab VM it
starts; netlab_twin.playbook runs site.yml against both.
"""

from netlab_twin import TEMPLATE_VMID

SUBNET = "198.18.8.0/24"
LAB = [{"name": "netlab-server-1", "vmid": 9101, "role": "server", "ip": "198.18.8.11"},
       {"name": "netlab-agent-1", "vmid": 9102, "role": "agent", "ip": "198.18.8.12"},
       {"name": "netlab-agent-2", "vmid": 9103, "role": "agent", "ip": "dhcp"}]

__all__ = ["LAB", "SUBNET", "TEMPLATE_VMID"]
