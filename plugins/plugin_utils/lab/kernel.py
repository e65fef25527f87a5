"""What the running kernel was built with: its config options, or a probe of its symbols where the config is
not exposed.

The local lab's nodes are containers of the controller's kernel, so a datapath setting the kernel lacks
cannot be modelled there (a monolithic kernel, as this machine's, cannot load it later either). The config is
read from /proc/config.gz (CONFIG_IKCONFIG_PROC) or /boot/config-<release>; without either, each option
asked about is looked for by a function its code defines, in /proc/kallsyms (on a kernel that loads modules a
missing one may be a module not loaded: not known). Pure functions but ``read``.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import Any

# Where a kernel's build config is found, in order ({release}: uname -r).
CONFIG_PATHS = ("/proc/config.gz", "/boot/config-{release}")
KALLSYMS = "/proc/kallsyms"
# There only on a kernel that loads modules: a symbol missing from kallsyms may be a module not loaded yet.
MODULES = "/proc/modules"
# Per option, a function its code defines (the probe where no config is readable): upstream's
# drivers/net/netkit.c, drivers/net/wireguard/device.c, net/ipv4/esp4.c, crypto/gcm.c, net/sched/sch_fq.c,
# net/xfrm/xfrm_user.c.
PROBES = {
    "CONFIG_NETKIT": "netkit_xmit",
    "CONFIG_WIREGUARD": "wg_xmit",
    "CONFIG_INET_ESP": "esp_output",
    "CONFIG_CRYPTO_GCM": "crypto_gcm_encrypt",
    "CONFIG_NET_SCH_FQ": "fq_enqueue",
    "CONFIG_XFRM_USER": "xfrm_user_rcv_msg",
}
_OPTION = re.compile(r"^(CONFIG_[A-Z0-9_]+)=(.*)$")


def parse_config(text: str) -> dict[str, str]:
    """A kernel config's options that are set: ``{CONFIG_X: y|m|value}`` (``# ... is not set`` lines left out)."""
    return {found[1]: found[2] for line in text.splitlines() if (found := _OPTION.match(line.strip()))}


def read(options: list[str] | tuple[str, ...] = tuple(PROBES)) -> dict[str, Any]:
    """The running kernel's ``release`` and, for each of ``options``, whether it was built in or as a module
    (``has``: True, False, or None when nothing could tell) and where that was read (``source``)."""
    release = os.uname().release
    for template in CONFIG_PATHS:
        path = Path(template.format(release=release))
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
        config = parse_config(text)
        return {"release": release, "source": str(path),
                "has": {option: config.get(option) in ("y", "m") for option in options}}
    try:
        names = {line.split()[2] for line in Path(KALLSYMS).read_text().splitlines() if len(line.split()) >= 3}
    except OSError:
        return {"release": release, "source": None, "has": dict.fromkeys(options)}
    modular = Path(MODULES).exists()

    def probed(option: str) -> bool | None:
        if option not in PROBES:
            return None
        return True if PROBES[option] in names else (None if modular else False)

    return {"release": release, "source": KALLSYMS, "has": {option: probed(option) for option in options}}
