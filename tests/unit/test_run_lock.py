"""One run per lab: the lock's decisions on the controller's file and on the cluster's Lease (run_lock)."""

import json
import socket
import threading
import time

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.lab import run_lock

HOST = socket.gethostname()


def holder(pid, host=HOST, run_id=""):
    return {"host": host, "pid": pid, "command": f"ansible-playbook site.yml --tags bench #{pid}",
            "since": "2026-12-06T10:00:00.000000Z", "run_id": run_id}


def alive(*pids):
    return lambda pid: pid in pids


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "SETTLE_SECONDS", 0.2)
    return tmp_path / "locks" / "local-netlab.lock"


def test_the_first_run_creates_the_lock_and_a_second_is_refused_naming_it(path):
    first, second = holder(101, run_id="20261206-100000-canal"), holder(202)
    assert run_lock.acquire_file(path, first, alive(101)) == {"state": "taken", "holder": first}
    assert json.loads(path.read_text()) == first
    answer = run_lock.acquire_file(path, second, alive(101, 202))
    assert answer == {"state": "refused", "holder": first}
    said = run_lock.describe(answer["holder"])
    assert said == (f"run 20261206-100000-canal, pid 101 on {HOST} since 2026-12-06T10:00:00.000000Z: "
                    "ansible-playbook site.yml --tags bench #101")
    assert json.loads(path.read_text()) == first, "a refused run changes nothing"


def test_the_holder_asking_again_holds_it(path):
    run_lock.acquire_file(path, holder(101), alive(101))
    assert run_lock.acquire_file(path, holder(101), alive(101))["state"] == "held"


def test_a_gone_holders_lock_is_taken_over(path):
    run_lock.acquire_file(path, holder(101), alive(101))
    answer = run_lock.acquire_file(path, holder(202), alive(202))  # 101 no longer runs ansible-playbook
    assert answer == {"state": "taken_over", "holder": holder(101)}
    assert json.loads(path.read_text())["pid"] == 202
    assert not list(path.parent.glob(".*.tmp")), "the take-over's temporary file was renamed"


def test_another_hosts_lock_is_refused_as_its_processes_cannot_be_seen(path):
    other = holder(101, host="other-controller")
    run_lock.acquire_file(path, other, alive())
    assert run_lock.acquire_file(path, holder(202), alive(202)) == {"state": "refused", "holder": other}


def test_an_unreadable_lock_is_read_again_then_taken_over(path):
    path.parent.mkdir(parents=True)
    path.write_text("")  # a creator killed between its create and its write
    started = time.monotonic()
    answer = run_lock.acquire_file(path, holder(202), alive(202))
    assert answer["state"] == "taken_over" and answer["holder"]["command"] == "an unreadable lock file"
    assert time.monotonic() - started >= run_lock.SETTLE_SECONDS


def test_runs_starting_at_once_get_one_lock(path):
    answers = []

    def take(pid):
        answers.append(run_lock.acquire_file(path, holder(pid), lambda _: True)["state"])

    threads = [threading.Thread(target=take, args=(pid,)) for pid in range(300, 308)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["refused"] * 7 + ["taken"]


def test_runs_taking_over_at_once_leave_one_holder(path):
    run_lock.acquire_file(path, holder(101), alive(101))
    answers = {}
    living = set(range(300, 306))

    def take(pid):
        answers[pid] = run_lock.acquire_file(path, holder(pid), lambda p: p in living)["state"]

    threads = [threading.Thread(target=take, args=(pid,)) for pid in living]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [pid for pid, state in answers.items() if state == "taken_over"]
    assert len(winners) == 1 and json.loads(path.read_text())["pid"] == winners[0]
    assert sorted(answers.values()).count("refused") == 5


def test_release_removes_only_the_holders_lock(path):
    run_lock.acquire_file(path, holder(101), alive(101))
    assert not run_lock.release_file(path, holder(202))
    assert path.exists()
    assert run_lock.release_all(path.parent, {"host": HOST, "pid": 101}) == ["local-netlab"]
    assert not path.exists()
    assert run_lock.release_all(path.parent / "none", holder(101)) == []


@pytest.mark.parametrize("key", ["", "-x", "a/b", "../x", "a b", None, 3])
def test_a_bad_key_is_refused(key):
    with pytest.raises(run_lock.LockError, match="lock key"):
        run_lock.check_key(key)


def test_the_lock_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NETLAB_LOCK_DIR", str(tmp_path))
    assert run_lock.lock_dir() == tmp_path
    monkeypatch.delenv("NETLAB_LOCK_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert run_lock.lock_dir() == tmp_path / "state" / "netlab" / "locks"


# --- the Lease ---------------------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def lease(identity, renewed_ago=0.0, seconds=600, rv="7", transitions=None):
    renew = run_lock.iso_now(NOW - renewed_ago)
    spec = {"holderIdentity": identity, "acquireTime": renew, "renewTime": renew, "leaseDurationSeconds": seconds}
    if transitions is not None:
        spec["leaseTransitions"] = transitions
    return {"metadata": {"name": "netlab-lab", "namespace": "netlab-system", "resourceVersion": rv,
                         "annotations": {run_lock.COMMAND: "ansible-playbook site.yml", run_lock.RUN_ID: "r1"}},
            "spec": spec}


def test_micro_time_has_microseconds_and_parses_back():
    text = run_lock.iso_now(NOW + 0.25)
    assert text == "2027-01-15T08:00:00.250000Z"
    assert run_lock.parse_time(text) == NOW + 0.25
    assert run_lock.parse_time("2027-01-15T08:00:00Z") == NOW
    assert run_lock.parse_time("yesterday") is None and run_lock.parse_time(None) is None


@pytest.mark.parametrize(("found", "living", "decision"), [
    (lease(f"{HOST}/101"), {101}, "refused"),            # this host, its pid runs ansible-playbook
    (lease(f"{HOST}/101"), set(), "take_over"),          # this host, its pid gone
    (lease(f"{HOST}/202"), {202}, "held"),               # this run's own
    (lease("other/101", renewed_ago=599), set(), "refused"),   # another host, renewed within its duration
    (lease("other/101", renewed_ago=601), set(), "take_over"),  # another host, expired
    (lease(""), set(), "take_over"),                     # no holder
])
def test_the_lease_decision(found, living, decision):
    assert run_lock.lease_decision(found, holder(202), NOW, lambda pid: pid in living) == decision


def test_a_lease_the_project_did_not_write_is_left_to_its_holder():
    found = lease("other/101", renewed_ago=10_000)
    del found["spec"]["leaseDurationSeconds"]
    assert run_lock.lease_decision(found, holder(202), NOW, alive()) == "refused"


def test_the_lease_names_its_holder():
    named = run_lock.lease_holder(lease("other-controller/101"))
    assert run_lock.describe(named).startswith("run r1, pid 101 on other-controller since 2027-01-15T08:00:00")
    assert named["command"] == "ansible-playbook site.yml"


def test_the_lease_body_creates_and_takes_over_on_the_read_version():
    labels = {"app.kubernetes.io/part-of": "netlab"}
    new = run_lock.lease_body("netlab-lab", "netlab-system", holder(202), 600, labels)
    assert new["apiVersion"] == "coordination.k8s.io/v1" and new["kind"] == "Lease"
    assert "resourceVersion" not in new["metadata"] and new["metadata"]["labels"] == labels
    spec = new["spec"]
    assert spec["holderIdentity"] == f"{HOST}/202" and spec["leaseDurationSeconds"] == 600
    assert spec["acquireTime"] == spec["renewTime"] and spec["renewTime"].endswith("Z")
    assert len(spec["renewTime"].split(".")[1]) == 7  # six digits of microseconds and the Z
    over = run_lock.lease_body("netlab-lab", "netlab-system", holder(202), 600, labels, lease("x/1", transitions=2))
    assert over["metadata"]["resourceVersion"] == "7" and over["spec"]["leaseTransitions"] == 3
