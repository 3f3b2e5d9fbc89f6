"""``chainrule gradcheck``: central differences against the hand-derived gradients."""

from __future__ import annotations

import argparse

import numpy as np

from chainrule.cli.commands import _common as c

NAME = "gradcheck"
HELP = "check every gradient of a network against central differences (float64)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=c.layer_sizes, default=[4, 5, 3], metavar="D,H,...,K")
    p.add_argument(
        "--activation",
        default="tanh",
        choices=["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity", "maxout"],
    )
    p.add_argument("--loss", default="softmax-ce", choices=["softmax-ce", "squared", "bce"])
    p.add_argument("--l2", type=c.nonneg_float, default=0.0)
    p.add_argument("--batch", type=c.positive_int, default=4, help="random samples to check on")
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--model", metavar="PATH", help="check a saved model instead (on random inputs)")
    p.add_argument("--all", action="store_true", help="check every layer kind and loss in the registry")
    p.add_argument("--json", action="store_true")


def _one(net, batch: int, seed: int, l2: float):
    from chainrule.backend import numpy_backend
    from chainrule.inspect.gradcheck import gradcheck

    rng = np.random.default_rng(seed)
    net.to(numpy_backend, "float64")
    d, k = net.input_dim, net.output_dim()
    x = rng.standard_normal((batch, d))
    y = rng.integers(0, k, batch) if k > 1 else rng.integers(0, 2, batch)
    return gradcheck(net, x, y, l2=l2, check_input=True, seed=seed)


def run(args: argparse.Namespace) -> int:
    from chainrule.nn.builders import mlp

    results = {}
    if args.model:
        from chainrule.io.serialize import load

        results[args.model] = _one(load(args.model), args.batch, args.seed, args.l2)
    elif args.all:
        for act in ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "maxout"]:
            for loss in ["squared", "softmax-ce", "bce"]:
                net = mlp(args.layers, act, loss=loss, seed=args.seed, dtype=np.float64)
                results[f"{act}/{loss}"] = _one(net, args.batch, args.seed, args.l2)
    else:
        net = mlp(args.layers, args.activation, loss=args.loss, seed=args.seed, dtype=np.float64)
        results[f"{args.activation}/{args.loss}"] = _one(net, args.batch, args.seed, args.l2)
    ok = all(r.ok for r in results.values())
    if args.json:
        c.json_line(
            {
                "ok": ok,
                "results": {
                    k: {"max_error": r.max_error, "errors": r.errors, "ok": r.ok} for k, r in results.items()
                },
            }
        )
    else:
        for name, r in results.items():
            print(f"== {name}\n{r}")
        print("all gradients agree" if ok else "GRADIENT CHECK FAILED")
    return 0 if ok else 1
