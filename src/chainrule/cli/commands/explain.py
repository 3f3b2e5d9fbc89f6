"""``chainrule explain``: one training step of a small network, forward, backward and update."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.errors import ChainruleError, ConfigError

NAME = "explain"
HELP = "show one forward/backward pass and update of a small network, every gradient checked"
DESCRIPTION = (
    "Print the forward pass, then the backward pass layer by layer with each formula (the seeds' "
    "column form and chainrule's row form), the numbers substituted and a central-difference check "
    "beside every δ and gradient, then the SGD update. The network comes from --layers, --model or "
    "--seed002 (seed 002's worked example). Networks with more than 64 units in a layer, 2000 "
    "parameters or 8 samples are refused: use --summary (per-layer norms, any size)."
)

LOSSES = ("squared", "softmax-ce", "bce")


def _matrix(text: str) -> list[list[float]]:
    """``"1,4,5"`` or ``"1,4,5;2,3,4"`` (rows separated by ';')."""
    rows = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            rows.append([float(v) for v in part.replace(" ", "").split(",") if v])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, rows separated by ';', got {text!r}"
            ) from None
    if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise argparse.ArgumentTypeError(f"expected equal-length rows of numbers, got {text!r}")
    if not np.all(np.isfinite(rows)):
        raise argparse.ArgumentTypeError(f"numbers must be finite, got {text!r}")
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    from chainrule.nn.builders import HIDDEN_ACTIVATIONS

    net = p.add_mutually_exclusive_group()
    net.add_argument(
        "--layers", type=c.layer_sizes, metavar="D,H,...,K", help="layer sizes of a fresh MLP (default 3,2,2)"
    )
    net.add_argument("--model", metavar="PATH", help="a saved model (chainrule.io.serialize)")
    net.add_argument("--seed002", action="store_true", help="seed 002's worked 3-2-2 example, its x and t")
    p.add_argument("--activation", default="sigmoid", choices=HIDDEN_ACTIVATIONS, help="hidden activation")
    p.add_argument("--loss", default="squared", choices=LOSSES, help="loss of a fresh MLP (default squared)")
    p.add_argument("--seed", type=c.nonneg_int, default=0, help="weights and any random input (default 0)")
    p.add_argument("--input", type=_matrix, metavar="X", help="input rows: 1,4,5 or 1,4,5;2,3,4")
    tgt = p.add_mutually_exclusive_group()
    tgt.add_argument(
        "--target", type=_matrix, metavar="Y", help="target rows: 0.1,0.05 (one row per input row)"
    )
    tgt.add_argument(
        "--label",
        type=c.int_list(1, 0, "labels", "2 or 0,1,1"),
        metavar="K",
        help="class label(s), one per input row",
    )
    p.add_argument(
        "--batch", type=c.positive_int, default=1, help="random input rows when --input is not given"
    )
    p.add_argument("--lr", type=c.positive_float, help="SGD step size (default 0.1; 0.01 with --seed002)")
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"], help="output format")
    p.add_argument("--summary", action="store_true", help="per-layer norms only (any network size)")
    p.add_argument("--out", metavar="FILE", help="write to FILE (atomically) instead of stdout")


def _build(args: argparse.Namespace) -> tuple[Any, list[str]]:
    notes: list[str] = []
    if args.seed002:
        from chainrule.studies.example import build_network

        notes.append(
            "seed 002's worked example. The post shares ONE bias b1 between both hidden units (and one b2 "
            "between both outputs); chainrule's Dense keeps one bias per unit, both starting at 0.5, so the "
            "post's tied ∂E/∂b is the sum of the entries of ∂E/∂b^l shown here and the update below is "
            "per unit. `chainrule example` applies the tie and compares every figure with the post."
        )
        return build_network(), notes
    if args.model:
        try:
            from chainrule.io.serialize import load
        except ImportError:  # pragma: no cover - serialize is written by another module owner
            raise ChainruleError("--model needs chainrule.io.serialize, which is not available") from None
        return load(args.model), notes
    from chainrule.nn.builders import mlp

    sizes = args.layers or [3, 2, 2]
    return mlp(sizes, args.activation, loss=args.loss, seed=args.seed, dtype=np.float64), notes


def _data(args: argparse.Namespace, net: Any, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    d = net.input_dim
    k = net.output_dim()
    rng = np.random.default_rng(args.seed)
    if args.input is not None:
        x = np.array(args.input, dtype=np.float64)
        if d is not None and x.shape[1] != d:
            raise ConfigError(f"--input rows have {x.shape[1]} numbers but the network takes {d} inputs")
    elif args.seed002:
        from chainrule.studies.example import X

        x = X.copy()
    else:
        if d is None:
            raise ConfigError("the network does not know its input size; pass --input")
        x = rng.standard_normal((args.batch, d))
        notes.append(
            f"input: {args.batch} row(s) drawn from N(0, 1) with seed {args.seed}; choose with --input"
        )
    n = x.shape[0]
    loss = net.loss.name if net.loss is not None else None
    if args.target is not None:
        y = np.array(args.target, dtype=np.float64)
        if y.shape[0] != n:
            raise ConfigError(f"--target has {y.shape[0]} row(s) for {n} input row(s)")
        if k is not None and y.shape[1] != k:
            raise ConfigError(f"--target rows have {y.shape[1]} numbers but the network has {k} outputs")
    elif args.label is not None:
        y = np.array(args.label, dtype=np.int64)
        if y.shape[0] != n:
            raise ConfigError(f"--label gives {y.shape[0]} label(s) for {n} input row(s)")
        limit = 2 if k == 1 else k
        if limit is not None and y.max() >= limit:
            raise ConfigError(f"label {int(y.max())} is out of range: the network has {k} output(s)")
    elif args.seed002 and args.input is None:
        from chainrule.studies.example import T

        y = T.copy()
    else:
        if k is None:
            raise ConfigError("the network does not know its output size; pass --target or --label")
        if loss == "softmax-ce":
            y = rng.integers(0, k, n) if k > 1 else rng.integers(0, 2, n)
        elif loss == "bce":
            y = rng.integers(0, 2, (n, k)).astype(np.float64)
        else:
            y = rng.uniform(0.0, 1.0, (n, k))
        notes.append(f"target: drawn at random with seed {args.seed}; choose with --target or --label")
    return x, y


def run(args: argparse.Namespace) -> int:
    from chainrule.inspect.explain import check_size, explain, render, render_summary, summarize

    net, notes = _build(args)
    x, y = _data(args, net, notes)
    lr = args.lr if args.lr is not None else (0.01 if args.seed002 else 0.1)
    if args.summary:
        text = render_summary(summarize(net, x, y, lr=lr, notes=notes), args.format)
        ok = True
    else:
        check_size(net, x.shape[0])  # before any work: the message points to --summary
        ex = explain(net, x, y, lr=lr, notes=notes)
        text = render(ex, args.format)
        ok = ex.ok
    if args.out:
        from chainrule._io import atomic_write_text

        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0 if ok else 1
