"""The controller's kernel options (plugin_utils/lab/kernel.py): its config, or a probe of its symbols."""

import gzip
import os
from pathlib import Path

from ansible_collections.netlab.lab.plugins.lookup.kernel_options import LookupModule
from ansible_collections.netlab.lab.plugins.plugin_utils.lab import kernel
from ansible_collections.netlab.lab.plugins.plugin_utils.plan import profiles


def test_a_config_says_which_options_are_set():
    text = "# CONFIG_NETKIT is not set\nCONFIG_XFRM_USER=y\nCONFIG_NET_SCH_FQ=m\nCONFIG_HZ=250\n\n"
    assert kernel.parse_config(text) == {"CONFIG_XFRM_USER": "y", "CONFIG_NET_SCH_FQ": "m", "CONFIG_HZ": "250"}


def test_read_takes_the_config_then_the_symbols(tmp_path, monkeypatch):
    config = tmp_path / "config.gz"
    config.write_bytes(gzip.compress(b"CONFIG_WIREGUARD=m\n# CONFIG_NETKIT is not set\n"))
    monkeypatch.setattr(kernel, "CONFIG_PATHS", (str(config), str(tmp_path / "config-{release}")))
    found = kernel.read(["CONFIG_WIREGUARD", "CONFIG_NETKIT"])
    assert found == {"release": os.uname().release, "source": str(config),
                     "has": {"CONFIG_WIREGUARD": True, "CONFIG_NETKIT": False}}
    # Without a config: each option by a function its code defines, in kallsyms; an option without a probe is
    # not known.
    config.unlink()
    symbols = tmp_path / "kallsyms"
    symbols.write_text("0000000000000000 t wg_xmit\n0000000000000000 T vxlan_xmit\n")
    monkeypatch.setattr(kernel, "KALLSYMS", str(symbols))
    monkeypatch.setattr(kernel, "MODULES", str(tmp_path / "no-modules"))
    found = kernel.read(["CONFIG_WIREGUARD", "CONFIG_NETKIT", "CONFIG_HZ"])
    assert found["source"] == str(symbols)
    assert found["has"] == {"CONFIG_WIREGUARD": True, "CONFIG_NETKIT": False, "CONFIG_HZ": None}
    # A kernel that loads modules: a symbol missing may be a module not loaded yet.
    monkeypatch.setattr(kernel, "MODULES", str(symbols))
    assert kernel.read(["CONFIG_NETKIT"])["has"] == {"CONFIG_NETKIT": None}
    symbols.unlink()
    assert kernel.read(["CONFIG_NETKIT"])["has"] == {"CONFIG_NETKIT": None}


def test_this_machines_config_and_symbols_agree():
    """The probe is right where it can be checked: on this kernel, for every option it probes."""
    read = kernel.read()
    if read["source"] == kernel.KALLSYMS or read["source"] is None:
        return  # no config to hold the probe against
    names = {line.split()[2] for line in Path(kernel.KALLSYMS).read_text().splitlines() if len(line.split()) >= 3}
    raw = Path(read["source"]).read_bytes()
    config = kernel.parse_config((gzip.decompress(raw) if read["source"].endswith(".gz") else raw).decode())
    # Built in or not set: a module (=m) may not be loaded, so its symbols need not be there.
    built = {option for option in kernel.PROBES if config.get(option) != "m"}
    assert {option: kernel.PROBES[option] in names for option in built} == {o: read["has"][o] for o in built}
    # The lookup returns the same, for the profiles' options by default.
    assert LookupModule().run([]) == [read]
    assert LookupModule().run(["CONFIG_NETKIT"])[0]["has"].keys() == {"CONFIG_NETKIT"}


def test_every_option_a_profile_needs_can_be_probed():
    """One list of what the profiles need (profiles.KERNEL_NEEDS), each found by the probe too (kernel.PROBES)."""
    needed = {option for options in profiles.KERNEL_NEEDS.values() for option in options}
    assert needed == set(kernel.PROBES)
