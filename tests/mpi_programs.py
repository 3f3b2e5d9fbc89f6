"""Programs the MPI tests run under ``mpiexec -n 2`` (not collected by pytest).

``python tests/mpi_programs.py train OUT.npz [options]``: trains a small network data-parallel
(``fit_parallel``) and rank 0 saves the weights; with ``--fail KIND:RANK:STEP`` that rank fails at
that step (``raise``: an exception; ``kill``: SIGKILL; ``hang``: sleeps forever).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from chainrule.backend import get_backend, to_numpy
from chainrule.nn.builders import mlp
from chainrule.nn.spec import build
from chainrule.parallel import allreduce, current_world, fit_parallel


def problem(
    n: int,
    dtype: str,
    activation: str = "relu",
    seed: int = 0,
    backend: str = "numpy",
    arch: str | None = None,
    shape: tuple[int, ...] = (),
) -> tuple[Any, np.ndarray, np.ndarray]:
    """A 20-16-8-4 network and a fixed random 4-class problem of ``n`` rows (maxout trains on the
    plain runner: the fast planner has no kernel for it)."""
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(n, 20)).astype(dtype)
    y = (x[:, :4].argmax(axis=1)).astype(np.int64)
    net = mlp([20, 16, 8, 4], activation, loss="softmax-ce", seed=seed, dtype=np.dtype(dtype))
    if arch:  # any layer-spec network (CNN, RNN) on samples of ``shape``, with the same labels
        net = build(arch, shape, seed=seed, dtype=np.dtype(dtype))
        x = rng.normal(size=(n, *shape)).astype(dtype)
        y = (x.reshape(n, -1)[:, :4].argmax(axis=1)).astype(np.int64)
    if backend != "numpy":
        net.to(get_backend(backend, "cpu"), dtype)
    return net, x, y


def train_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "optimizer": args.optimizer,
        "lr": 0.05,
        "batch_size": args.batch,
        "epochs": args.epochs,
        "l2": args.l2,
        "seed": 3,
        "progress": False,
        "fast": not args.plain,
        **({"momentum": 0.9} if args.optimizer == "momentum" else {}),
    }


class Fault:
    """A gradient hook that fails on one rank at one step."""

    def __init__(self, spec: str, rank: int) -> None:
        kind, who, step = spec.split(":")
        self.kind, self.armed, self.step, self.seen = kind, int(who) == rank, int(step), 0

    def __call__(self, params: Any) -> None:
        self.seen += 1
        if not self.armed or self.seen < self.step:
            return
        if self.kind == "raise":
            raise RuntimeError(f"injected failure at step {self.seen}")
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "hang":
            time.sleep(3600)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--activation", default="relu")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--arch", default=None, help="a layer spec (nn/spec.py) instead of the MLP")
    p.add_argument("--shape", type=lambda t: tuple(int(v) for v in t.split(",")), default=())
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--l2", type=float, default=0.0)
    p.add_argument("--plain", action="store_true")
    p.add_argument("--overlap", action="store_true")
    p.add_argument("--allreduce", default=None)
    p.add_argument(
        "--no-shared-memory", action="store_true", help="make the shared window fail (a small /dev/shm)"
    )
    p.add_argument("--check-identical", action="store_true", help="compare every rank's weights to rank 0's")
    p.add_argument("--drop-remainder", action="store_true")
    p.add_argument("--fail", default=None)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    world = current_world()
    if args.no_shared_memory:

        def refuse(*_: Any) -> None:
            raise RuntimeError("no space left in /dev/shm")

        allreduce.SharedSum.__init__ = refuse  # type: ignore[method-assign]
    net, x, y = problem(
        args.n, args.dtype, args.activation, backend=args.backend, arch=args.arch, shape=args.shape
    )
    hooks = [Fault(args.fail, world.rank)] if args.fail else []

    def run() -> None:
        history = fit_parallel(
            net,
            x,
            y,
            world=world,
            grad_hooks=hooks,
            overlap=args.overlap,
            allreduce=args.allreduce,
            drop_remainder=args.drop_remainder,
            **train_options(args),
        )
        identical = None
        if args.check_identical:
            flat = np.concatenate([to_numpy(p.value).ravel() for p in net.params])
            identical = all(np.array_equal(flat, other) for other in world.allgather(flat))
        if world.is_root:
            weights = {f"p{i}": to_numpy(p.value) for i, p in enumerate(net.params)}
            np.savez(
                args.out,
                loss=history["loss"],
                accuracy=history["accuracy"],
                runner=history.runner,
                method=history.allreduce["method"],
                identical=identical,
                **weights,
            )

    world.guarded(run)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
