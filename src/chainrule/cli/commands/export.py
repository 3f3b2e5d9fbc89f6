"""``chainrule export``: a saved model as an ONNX graph (scaling and output mapping included)."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.export import ExportConfig, run_export

NAME = "export"
HELP = "export a saved model to ONNX (MLPs; feature scaling inside the graph)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved with `train --save`")
    p.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    res = run_export(c.config_from(ExportConfig, args))
    if args.json:
        c.json_line({"onnx": res.path, "outputs": res.outputs})
    else:
        print(f"wrote {res.path} (outputs: {', '.join(res.outputs)})", file=sys.stderr)
    return 0
