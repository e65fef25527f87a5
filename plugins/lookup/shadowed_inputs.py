"""The variables the playbooks set from their vars files that an inventory sets too: play vars win over
inventory vars, so the inventory's value would be replaced without a word."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.plugins.lookup import LookupBase
from ansible.utils.vars import load_extra_vars

DOCUMENTATION = r"""
name: shadowed_inputs
short_description: The variables an inventory sets that the playbooks' vars files replace without a word
version_added: "0.7.0"
description:
  - Play vars (a play's C(vars_files)) win over inventory vars, so a variable that the playbooks set there and an
    inventory sets too keeps the playbooks' value, and the inventory's is ignored without a word.
  - Takes the vars files' variables as written (names and their templates, not rendered) and returns those that
    an inventory sets for any of its hosts, each with the project globals it is derived from, the ones to set
    instead. The hosts' variables are read through C(hostvars), which holds inventory and extra vars but not
    play vars.
  - Extra vars (C(-e)) are left out, as they win over play vars and are taken.
  - Globals are the names C(cni), C(cni_profile) and C(netlab_*) in the variable's template; a name that is one of
    the given variables itself stands for its own globals.
  - Only hosts in the inventory when the lookup runs are read; hosts a play adds later are not.
options:
  _terms:
    description: Mappings of the variables a play sets (a vars file's content), name to template.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse the playbooks' derived variables in the inventory
  ansible.builtin.assert:
    that: shadowed | length == 0
    fail_msg: "{{ shadowed | map(attribute='name') | join(', ') }} set in the inventory would be ignored"
  vars:
    shadowed: "{{ lookup('netlab.lab.shadowed_inputs', lookup('ansible.builtin.file', 'vars/role_inputs.yml')
      | from_yaml, wantlist=True) }}"
"""

RETURN = r"""
_list:
  description: One item per variable set in the inventory, in the vars files' order.
  type: list
  elements: dict
  contains:
    name:
      description: The variable.
      type: str
    derived_from:
      description: The project globals its template uses, in their order (empty for a plain value).
      type: list
      elements: str
    hosts:
      description: The inventory hosts that set it.
      type: list
      elements: str
"""

GLOBAL = re.compile(r"cni|cni_profile|netlab_\w+")
NAME = re.compile(r"\b[A-Za-z_]\w*\b")
# The collection's own plugins (netlab.lab.cni_profile) are no variables.
PLUGIN = re.compile(r"\bnetlab\.lab\.\w+")


def derived_from(play_vars: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each variable's project globals: those its template names, and those of the play vars it names."""

    def expand(name: str, seen: frozenset[str]) -> list[str]:
        value = play_vars.get(name)
        found: list[str] = []
        for used in NAME.findall(PLUGIN.sub("", value)) if isinstance(value, str) else []:
            if used in play_vars:
                names = [] if used in seen else expand(used, seen | {used})
            else:
                names = [used] if GLOBAL.fullmatch(used) else []
            found += [n for n in names if n not in found]
        return found

    return {name: expand(name, frozenset({name})) for name in play_vars}


def shadowed(play_vars: Mapping[str, Any], host_vars: Mapping[str, Iterable[str]],
             extra_vars: Iterable[str]) -> list[dict[str, Any]]:
    """The play vars that hosts' inventory vars set (``host_vars``: host -> its variables' names), less the
    extra vars."""
    extra = set(extra_vars)
    globals_of = derived_from(play_vars)
    found = []
    for name in play_vars:
        hosts = [host for host, names in host_vars.items() if name in names]
        if hosts and name not in extra:
            found.append({"name": name, "derived_from": globals_of[name], "hosts": hosts})
    return found


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        play_vars: dict[str, Any] = {}
        for term in terms:
            play_vars.update(term)
        variables = variables or {}
        hostvars = variables["hostvars"]
        hosts = dict.fromkeys([*variables.get("groups", {}).get("all", []), "localhost"])
        host_vars = {host: set(hostvars[host]) for host in hosts}
        return shadowed(play_vars, host_vars, load_extra_vars(self._loader))
