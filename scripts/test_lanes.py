"""make test's integration stage: two lanes side by side, each with its own log, printed when both are done.

    python scripts/test_lanes.py LOGDIR NAME=COMMAND NAME=COMMAND

The first lane is the timing-sensitive one (the local lab). Every lane's playbooks load the callback plugin
netlab_timing (netlab_twin/callback_plugins), which shares the lock file LOGDIR/timing.lock between them
(netlab_twin.lanes): the first lane's timing-sensitive tests hold it exclusively while they measure, and every
playbook of the other lanes, niced, holds it shared task by task, so they pause while the first lane measures.
SIGTERM or SIGINT is passed on to every lane, which stops its tests and removes what they made
(tests/conftest.py, scripts/molecule-test); the exit status is the first failing lane's, 0 when all passed.
"""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from netlab_twin.lanes import CALLBACK_PLUGINS, LOCK_ENV, ROLE_ENV, RUN_LOG_ENV

ROOT = Path(__file__).resolve().parents[1]

NICE = 10


def callbacks() -> str:
    """ansible.cfg's callbacks and the timing lock's (the environment's list replaces the file's)."""
    config = configparser.ConfigParser()
    config.read(os.environ.get("ANSIBLE_CONFIG") or ROOT / "ansible.cfg")
    enabled = [name.strip() for name in config.get("defaults", "callbacks_enabled", fallback="").split(",")]
    return ",".join([name for name in enabled if name] + ["netlab_timing"])


def cpu_times() -> tuple[int, int]:
    """(busy, all) clock ticks of every CPU since boot (/proc/stat's cpu line; idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def runs_summary(name: str, path: Path, longest: int = 8) -> str:
    """Where a lane's time went: its commands run through netlab_twin.lanes.run, their seconds, the longest."""
    if not path.exists():
        return f"lane {name}: no command noted"
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.count("\t") >= 3]
    rows.sort(key=lambda row: -float(row[0]))
    took = minutes(sum(float(row[0]) for row in rows))
    out = [f"lane {name}: {len(rows)} commands (ansible-playbook and the like) took {took}"]
    out += [f"  {float(r[0]):6.1f} s  {r[2] or '-'}  {r[3][:150]}" for r in rows[:longest]]
    return "\n".join(out)


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not all("=" in lane for lane in argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    logdir = Path(argv[0])
    logdir.mkdir(parents=True, exist_ok=True)
    lanes = [lane.split("=", 1) for lane in argv[1:]]
    paths = [CALLBACK_PLUGINS, *filter(None, [os.environ.get("ANSIBLE_CALLBACK_PLUGINS")])]
    base = {**os.environ, LOCK_ENV: str((logdir / "timing.lock").resolve()),
            "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join(paths), "ANSIBLE_CALLBACKS_ENABLED": callbacks()}

    started, procs, logs, cpu = time.monotonic(), {}, {}, cpu_times()
    for index, (name, command) in enumerate(lanes):
        logs[name] = logdir / f"{name}.log"
        # No shell between: the signals below reach the lane's own command (make passes them on). The
        # other lanes run niced: the first lane is the longest, and its figures the ones compared.
        argv = shlex.split(command) if index == 0 else ["nice", "-n", str(NICE), *shlex.split(command)]
        runs = logdir / f"runs-{name}.tsv"
        runs.unlink(missing_ok=True)
        env = {**base, RUN_LOG_ENV: str(runs.resolve())} if index == 0 else {**base, ROLE_ENV: "yield",
                                                                              RUN_LOG_ENV: str(runs.resolve())}
        with logs[name].open("w") as log:
            procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        print(f"lane {name}: {command} (log: {logs[name]})", flush=True)

    def forward(signum: int, _frame: object) -> None:
        print(f"test_lanes: signal {signum}, stopping every lane", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)

    results, pending = {}, dict(procs)
    while pending:
        for name, proc in list(pending.items()):
            if proc.poll() is not None:
                results[name] = (proc.returncode, time.monotonic() - started)
                print(f"lane {name}: {'passed' if proc.returncode == 0 else f'FAILED ({proc.returncode})'} "
                      f"after {minutes(results[name][1])}", flush=True)
                del pending[name]
        time.sleep(0.5)

    for name, _ in lanes:
        print(f"\n{'=' * 30} lane {name}: {logs[name]} {'=' * 30}", flush=True)
        sys.stdout.write(logs[name].read_text(errors="replace"))
    print(f"\n{'=' * 30} lanes {'=' * 30}")
    for name, _ in lanes:
        print(runs_summary(name, logdir / f"runs-{name}.tsv"))
    busy, total = (after - before for after, before in zip(cpu_times(), cpu, strict=True))
    if total:
        print(f"the machine's {os.cpu_count()} CPUs were busy {100 * busy / total:.0f} % of the lanes' time")
    for name, (code, took) in results.items():
        print(f"lane {name}: {'passed' if code == 0 else f'FAILED ({code})'} after {minutes(took)}")
    # A lane ended by a signal has a negative code: reported as a shell would (128 + the signal).
    return next((code if code > 0 else 128 - code for code, _ in results.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
