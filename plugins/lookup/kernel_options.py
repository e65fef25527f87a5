"""The controller's kernel: whether it has the options the CNI profiles' settings need (plugin_utils/lab/kernel.py).

The local lab's nodes are containers of the controller's kernel: what it lacks, they lack."""

from __future__ import annotations

from typing import Any

from ansible.plugins.lookup import LookupBase

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import kernel

DOCUMENTATION = r"""
name: kernel_options
short_description: Whether the controller's kernel has the options the CNI profiles' settings need
version_added: "0.8.0"
description:
  - Returns one mapping, C(release) (uname -r), C(source) (where it was read; null when nothing could be) and
    C(has), per option asked for (default those the profiles' settings need, C(CONFIG_NETKIT), C(CONFIG_WIREGUARD),
    C(CONFIG_INET_ESP), C(CONFIG_CRYPTO_GCM), C(CONFIG_NET_SCH_FQ), C(CONFIG_XFRM_USER)) true (built in or a module),
    false, or null (nothing could tell).
  - Read from the kernel's config (C(/proc/config.gz), else C(/boot/config-<release>)); without one, each option is
    looked for by a function its code defines, in C(/proc/kallsyms).
options:
  _terms:
    description: Kernel config options (C(CONFIG_...)); none for the profiles' own.
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
- name: What the local lab's kernel has of the profiles' needs
  ansible.builtin.debug:
    msg: "{{ lookup('netlab.lab.kernel_options') }}"
"""

RETURN = r"""
_raw:
  description: One mapping, C(release), C(source) and C(has).
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        options = [str(term) for term in terms] or list(kernel.PROBES)
        return [kernel.read(options)]
