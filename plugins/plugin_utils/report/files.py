"""The files of a results directory, shared by the iperf3 and the Service scale reports.

A run folder holds one metadata file written before the first measurement (``run.json`` for a
benchmark run, ``scale.json`` for a Service scale run) and ``raw/<name>.json``, one file per
measurement, written as each ends. This module reads such folders and writes report files
atomically, names a run as the tables do (run_label), and renders the plain-text and markdown tables
every report ends with.
Controller-only; no Ansible imports.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

Record = TypeVar("Record")


class ResultError(ValueError):
    """A run folder or one of its files is not usable."""


def read_run(run_dir: str | os.PathLike, meta_file: str,
             reader: Callable[[dict[str, Any]], Callable[[Path], Record]],
             raw: str = "[!.]*.json") -> tuple[dict[str, Any], dict[str, Record], list[str]]:
    """Read a run folder: (metadata, records by raw file stem, problems).

    ``reader(meta)`` returns the function that turns one raw file of this run into a record; a
    file it refuses with ``ValueError`` (``ResultError`` included) or cannot read is reported in
    problems and skipped.
    ``raw`` is the glob of the raw files; the default leaves out hidden files, the temporaries
    of atomic writes cut short by a kill.
    """
    run = Path(run_dir)
    try:
        meta = json.loads((run / meta_file).read_text())
    except (OSError, ValueError) as exc:
        raise ResultError(f"{run}: no readable {meta_file} ({exc})") from exc
    parse = reader(meta)
    records, problems = {}, []
    for path in sorted((run / "raw").glob(raw)):
        try:
            records[path.stem] = parse(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}, skipped")
    return meta, records, problems


def list_runs(results_dir: str | os.PathLike, meta_file: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every run folder with a readable metadata file and a run_id, oldest first (by started, then name).

    Symlinks (``latest``) and other entries are ignored.
    """
    runs = []
    for meta_path in Path(results_dir).glob(f"*/{meta_file}"):
        if meta_path.parent.is_symlink():
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("run_id"):
            runs.append((meta_path.parent, meta))
    return sorted(runs, key=lambda run: (str(run[1].get("started", "")), run[0].name))


def run_label(summary: dict[str, Any]) -> str:
    """A run as tables name it: "cilium/native-bpf", the CNI alone for a run without profile, else its id."""
    if summary.get("cni") and summary.get("profile"):
        return f"{summary['cni']}/{summary['profile']}"
    return str(summary.get("cni") or summary["run_id"])


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends
    without error, removed otherwise, so readers see the old or the new file, never half."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, text: str) -> None:
    """Write a text file so that readers see the old or the new content, never half."""
    with atomic_target(path) as tmp:
        tmp.write_text(text)


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats with ``digits`` decimals, ``-`` for no value."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of an aligned plain-text table."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, ["-" * w for w in widths], *rows]]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def markdown_tail(header: list[str], rows: list[list[str]], chart: str | None, chart_alt: str,
                  notes: list[str]) -> str:
    """The table, chart and notes that end every markdown report."""
    lines = ["", *markdown_table(header, rows)]
    if chart:
        lines += ["", f"![{chart_alt}]({chart})"]
    lines += [""] + [f"> {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"
