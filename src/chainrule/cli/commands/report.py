"""``chainrule report``: turn a run record (``chainrule train --log RUN.json``) into one HTML file."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.report import ReportConfig, run_report

NAME = "report"
HELP = "write a self-contained HTML report of a training run (from `train --log RUN.json`)"
DESCRIPTION = (
    "Read the run record that `chainrule train --log RUN.json` wrote and write one HTML file with "
    "the configuration, training curves, the gradient-flow heatmap (when recorded) and the test "
    "confusion matrix. Images are embedded; the file loads nothing else. Needs matplotlib."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN.json", help="run record written by `chainrule train --log`")
    p.add_argument("--out", metavar="HTML", default="report.html", help="output file (default: report.html)")
    p.add_argument("--title", help="page title (default: 'chainrule training run')")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    path = run_report(c.config_from(ReportConfig, args))
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return 0
