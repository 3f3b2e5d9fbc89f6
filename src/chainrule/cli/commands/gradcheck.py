"""``chainrule gradcheck``: central differences against the hand-derived gradients."""

from __future__ import annotations

import argparse

from chainrule.cli.commands import _common as c
from chainrule.jobs.gradcheck import GradcheckConfig, run_gradcheck
from chainrule.nn.builders import hidden_activations
from chainrule.nn.losses import LOSSES

NAME = "gradcheck"
HELP = "check every gradient of a network against central differences (float64)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=c.layer_sizes, default=[4, 5, 3], metavar="D,H,...,K")
    p.add_argument(
        "--activation",
        default="tanh",
        choices=hidden_activations(),
    )
    p.add_argument("--loss", default="softmax-ce", choices=list(LOSSES))
    p.add_argument("--l2", type=c.nonneg_float, default=0.0)
    p.add_argument("--batch", type=c.positive_int, default=4, help="random samples to check on")
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--model", metavar="PATH", help="check a saved model instead (on random inputs)")
    p.add_argument("--all", action="store_true", help="check every layer kind and loss in the registry")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    report = run_gradcheck(c.config_from(GradcheckConfig, args, every_kind=args.all))
    if args.json:
        results = {
            k: {"max_error": r.max_error, "errors": r.errors, "ok": r.ok} for k, r in report.results.items()
        }
        c.json_line({"ok": report.ok, "results": results})
    else:
        for name, r in report.results.items():
            print(f"== {name}\n{r}")
        print("all gradients agree" if report.ok else "GRADIENT CHECK FAILED")
    return 0 if report.ok else 1
