#!/usr/bin/env python3
"""Refresh the committed sample (docs/sample/) from a results folder holding one canal and one cilium run.

`make sample` runs both CNIs on the local lab into a scratch results folder, then calls

    scripts/sample.py <results folder> docs/sample README.md

which copies the comparison (comparison.md, .png, .svg) and each run's report.md with its charts into
docs/sample/, and rewrites the README's sample table (between the two marker comments) from the copied
comparison.md. tests/unit/test_sample_table.py checks that the committed README's table is what
``block`` makes of the committed comparison.md and reports, so they cannot drift apart. Stdlib only: it reads the
rendered markdown, not the collection's Python.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

START = "<!-- sample table: written by make sample (scripts/sample.py) from docs/sample/comparison.md -->"
END = "<!-- end of sample table -->"
THROUGHPUT = "Throughput (iperf3, Gbit/s)"
NETPERF = "Latency and transaction rate (netperf, trans/s)"
DETAILS = "Details per run"
# (test, what the row shows): the README's six rows.
ROWS = (("host-tcp-1", "Gbit/s"), ("cross-node-tcp-1", "Gbit/s"), ("same-node-tcp-1", "Gbit/s"),
        ("service-tcp-1", "Gbit/s"), ("cross-node-tcp-rr", "p50 us"), ("cross-node-tcp-rr", "trans/s"))
HOST_RR = "host-tcp-rr"
P50 = re.compile(r"p50/p99 (\S+)/(\S+) us")


class SampleError(ValueError):
    """The comparison does not hold what the README's table needs."""


def tables(markdown: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The markdown tables of a report, by the title of the section they open: (header, rows)."""
    found: dict[str, tuple[list[str], list[list[str]]]] = {}
    title = None
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            title = line[3:].strip()
        elif line.startswith("|") and title and title not in found and i + 1 < len(lines) \
                and lines[i + 1].startswith("|---"):
            body = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                body.append(_cells(row))
            found[title] = (_cells(line), body)
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _section(found: dict[str, tuple[list[str], list[list[str]]]], title: str) -> tuple[list[str], dict[str, list[str]]]:
    if title not in found:
        raise SampleError(f"the comparison has no table '{title}'")
    header, rows = found[title]
    return header, {row[0]: row for row in rows}


def _median(cell: str) -> str:
    """The median of a comparison cell: '13.04 [12.10-13.40 (75%)], -3.1 %, ...' -> '13.04'."""
    return cell.split(" ", 1)[0]


def _p50(cell: str) -> str:
    found = P50.search(cell)
    if not found:
        raise SampleError(f"no p50/p99 in the netperf cell {cell!r}")
    return found.group(1)


def table(comparison_md: str) -> list[str]:
    """The README's sample table, as markdown lines, from a comparison.md of two or more runs."""
    found = tables(comparison_md)
    header, throughput = _section(found, THROUGHPUT)
    _, netperf = _section(found, NETPERF)
    details_header, details_rows = found.get(DETAILS) or ([], [])
    if "vs host" not in details_header:
        raise SampleError(f"the comparison has no '{DETAILS}' table with a 'vs host' column")
    vs_host_at = details_header.index("vs host")
    vs_host = {(row[0], row[1]): row[vs_host_at] for row in details_rows}
    runs = [label.removesuffix(" (baseline)") for label in header[1:]]
    out = ["| test (the model) | " + " | ".join(f"{run} | vs host" for run in runs) + " |",
           "|---|" + "---:|---:|" * len(runs)]
    for test, unit in ROWS:
        source = throughput if unit == "Gbit/s" else netperf
        if test not in source:
            raise SampleError(f"the comparison has no test {test}")
        cells = []
        for i, run in enumerate(runs, 1):
            if unit == "p50 us":
                p50 = _p50(source[test][i])
                host = _p50(netperf[HOST_RR][i]) if HOST_RR in netperf else None
                ratio = f"{float(p50) / float(host):.2f}x" if host and float(host) else "-"
                cells += [p50, ratio]
            else:
                cells += [_median(source[test][i]), vs_host.get((test, run), "-")]
        out.append(f"| {test} {unit} | " + " | ".join(cells) + " |")
    return out


def context(report_md: str) -> dict[str, str]:
    """The Context section of a run's report.md: {"Kernel": "6.18.44", "vCPUs": "2", ...}."""
    section = report_md.split("## Context", 1)[1].split("\n## ", 1)[0] if "## Context" in report_md else ""
    found = dict(re.findall(r"^- ([^:]+): (.*)$", section, re.MULTILINE))
    return {key: value.strip("*") for key, value in found.items()}


def caption(reports: list[str]) -> str:
    """What the sample is: the model, on which machine, with which settings, when."""
    contexts = [context(report) for report in reports]
    if not contexts or any(not c.get("Kernel") for c in contexts):
        raise SampleError("the runs' reports have no Context section with the kernel")

    def said(key: str) -> str:
        return ", ".join(dict.fromkeys(c.get(key, "-") for c in contexts))

    settings = said("Settings").split(", UDP offered")[0]
    dates = sorted(c.get("Date", "-")[:10] for c in contexts)
    return (f"*The local model on one machine ({said('vCPUs')} vCPUs, kernel {said('Kernel')}, "
            f"{said('CPU model')}), not a real cluster: {settings}; {dates[-1]}, `make sample`.*")


def block(comparison_md: str, reports: list[str]) -> list[str]:
    """What the README holds between the markers: the caption, then the table."""
    return [caption(reports), "", *table(comparison_md)]


def sample_reports(out: Path) -> list[str]:
    """The runs' report.md files of a sample folder, in the order of their folders' names."""
    return [path.read_text() for path in sorted(out.glob("*/report.md"))]


def rewrite_readme(readme: str, lines: list[str]) -> str:
    """The README with the lines between the markers replaced by ``lines``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise SampleError("the README needs the sample table's two marker comments, once each, in order")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return head + START + "\n" + "\n".join(lines) + "\n" + END + tail


def readme_table(readme: str) -> list[str]:
    """The lines between the markers of a README."""
    return readme.split(START, 1)[1].split(END, 1)[0].strip("\n").splitlines()


def _comparison(results: Path) -> Path:
    found = [path.parent for path in (results / "comparisons").glob("*/comparison.md")
             if path.parent.name != "service-scale"]
    if len(found) != 1:
        raise SampleError(f"expected one comparison in {results}/comparisons, found {len(found)}")
    return found[0]


def _runs(results: Path) -> list[Path]:
    return sorted(path.parent for path in results.glob("*/report.md") if not path.parent.is_symlink())


def copy(results: Path, out: Path) -> list[Path]:
    """Replace ``out`` with the comparison and each run's report (in a folder named after the run's CNI
    and profile, e.g. canal-vxlan/); returns the files written."""
    comparison = _comparison(results)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for name in ("comparison.md", "comparison.png", "comparison.svg"):
        written.append(Path(shutil.copy2(comparison / name, out / name)))
    for run in _runs(results):
        # <time>-<cni>-<profile>: the folder drops the time, so the links stay when the sample is rerun.
        folder = out / run.name.split("-", 1)[1]
        folder.mkdir()
        report = (run / "report.md").read_text()
        for image in re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", report):
            written.append(Path(shutil.copy2(run / image, folder / image)))
        written.append(Path(shutil.copy2(run / "report.md", folder / "report.md")))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the results folder of the two runs")
    parser.add_argument("out", type=Path, help="the sample folder (docs/sample)")
    parser.add_argument("readme", type=Path, help="the README whose sample table is rewritten")
    args = parser.parse_args(argv)
    try:
        written = copy(args.results, args.out)
        lines = block((args.out / "comparison.md").read_text(), sample_reports(args.out))
        args.readme.write_text(rewrite_readme(args.readme.read_text(), lines))
    except (SampleError, OSError) as exc:
        print(f"sample: {exc}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in written)
    print(f"sample: {len(written)} files, {size / 1024:.0f} KiB in {args.out}; the table in {args.readme}:")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
