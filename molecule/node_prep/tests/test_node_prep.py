"""What node_prep leaves on a node."""


def test_forwarding_is_on_and_persisted(node):
    assert node.sysctl("net.ipv4.ip_forward") == 1
    persisted = node.file("/etc/sysctl.d/90-rke2.conf")
    assert persisted.mode == 0o644
    assert "net.ipv4.ip_forward=1" in persisted.content_string
    assert "net.ipv6.conf.all.forwarding=1" in persisted.content_string


def test_modules_are_loaded_at_boot(node):
    assert node.file("/etc/modules-load.d/rke2.conf").content_string.split() == ["br_netfilter", "overlay"]


def test_swap_stays_off(node):
    fstab = node.file("/etc/fstab").content_string
    assert "# /swapfile none swap sw 0 0" in fstab
    assert not [line for line in fstab.splitlines() if " swap " in line and not line.startswith("#")]


def test_apt_timers_are_masked_and_recorded(node):
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert node.run(f"systemctl is-enabled {unit}").stdout.strip() == "masked"
        assert not node.service(unit).is_running
    fact = node.file("/etc/ansible/facts.d/netlab_prep.fact").content_string
    assert '"apt-daily.timer"' in fact and '"swap_off": true' in fact
