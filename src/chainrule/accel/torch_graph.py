"""Torch runners: the op-by-op fast step, and the same step captured as CUDA graphs and replayed.

:class:`TorchGraphRunner` captures the *whole* step (gather, forward, loss, backward, update,
loss/accuracy accumulation) once per batch size as a CUDA graph and replays it: the dataset and the
epoch's permutation live on the device, a static position tensor advances inside the graph, and
the loss is read once per epoch, so there is no host/device synchronisation per step. Gradient
hooks are Python and cannot be replayed; a runner with hooks is the op-by-op one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.accel.runner import FastRunner

__all__ = ["TorchFastRunner", "TorchGraphRunner"]


class TorchFastRunner(FastRunner):
    """:class:`FastRunner` that keeps torch's device step count in line with ``opt.t``."""

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        self.ops.sync_step_count(self.optimizer)
        return super().run_epoch(x, y, order, batch_size, on_step)


class TorchGraphRunner(TorchFastRunner):
    """The fast step captured as CUDA graphs (one per batch size) and replayed.

    Per epoch: the permutation is copied to the device once, the totals and position tensors
    are reset, then each step is one ``graph.replay()`` (the graph gathers the batch at
    ``perm[pos]``, trains, accumulates the loss and hits, and advances ``pos``); the loss is read
    once at the end, and the optimiser counts the epoch's steps with one ``opt.tick(steps)``.
    Graphs are captured on first use and again whenever what they captured changes (data
    tensors, parameters or optimiser state reallocated, hyperparameters edited). Should capture
    fail, the runner says so once (a ``RuntimeWarning``), puts the state back and goes on
    launching the same step eagerly (``name`` becomes ``fast-torch``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = "fast-torch-cuda-graph"
        self._graphs: dict[int, dict[str, Any]] | None = {}
        self._key: Any = None
        self._perm: Any = None

    def _capture_key(self, x: Any, y: Any, n: int, batch_size: int) -> Any:
        """Everything a captured graph has baked in: pointers, shapes, hyperparameters."""
        opt = self.optimizer
        hyper = tuple(sorted((k, v) for k, v in opt.config().items() if k != "name"))
        ptrs = [p.value.data_ptr() for p in self.params] + [p.grad.data_ptr() for p in self.params]
        for t in _state_tensors(opt.state_for(self.params)):
            ptrs.append(t.data_ptr())
        return (
            x.data_ptr(),
            y.data_ptr(),
            tuple(x.shape),
            tuple(y.shape),
            n,
            batch_size,
            self.l2,
            hyper,
            tuple(ptrs),
        )

    def _body(self, x: Any, y: Any, g: dict[str, Any]) -> None:
        """What one replay does: gather at ``perm[pos]``, step (the host step count is ticked
        after the replays, not here), advance ``pos``."""
        torch, ops = self.ops.xp, self.ops
        torch.index_select(self._perm, 0, g["pos"], out=g["idx"])
        ops.gather_batch(x, y, g["idx"], g["bufs"])
        self.step(g["bufs"], tick=False)
        g["pos"].add_(g["nb"])

    def _capture(self, x: Any, y: Any, n: int, batch_size: int) -> None:
        torch, ops = self.ops.xp, self.ops
        self._graphs = {}
        self._perm = torch.arange(n, device=ops.device)
        nfull, rem = divmod(n, batch_size)
        sizes = [(batch_size, 0)] if nfull else []
        if rem:
            sizes.append((rem, nfull * batch_size))
        state = self.optimizer.state_for(self.params)
        self._param_scratch()
        saved = _clone_all(self.params, state)
        try:
            for nb, first in sizes:
                pos0 = torch.arange(first, first + nb, device=ops.device)
                g = {
                    "nb": nb,
                    "pos0": pos0,
                    "pos": pos0.clone(),
                    "idx": torch.empty(nb, dtype=torch.int64, device=ops.device),
                    "bufs": self.buffers(nb, tuple(y.shape), y.dtype),  # static: allocated before capture
                }
                self._warm_up(lambda g=g, pos0=pos0: (g["pos"].copy_(pos0), self._body(x, y, g)))
                g["graph"] = self._record(lambda g=g: self._body(x, y, g))
                self._graphs[nb] = g
        finally:  # the warm-up trained: put weights and optimiser state back
            _restore_all(self.params, state, saved)
            self._sync()

    # -- the three CUDA calls, apart so that the logic around them can be tested on the CPU -----
    def _warm_up(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` twice on a side stream (cuBLAS handles, workspaces), as PyTorch's
        CUDA-graph notes ask before a capture."""
        torch = self.ops.xp
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
            fn()
        torch.cuda.current_stream().wait_stream(side)

    def _record(self, fn: Callable[[], Any]) -> Any:
        """Capture ``fn`` as a CUDA graph (nothing runs now); ``.replay()`` runs it."""
        torch = self.ops.xp
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph

    def _sync(self) -> None:
        self.ops.xp.cuda.synchronize()

    # -- the epoch -------------------------------------------------------------------------
    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        n = len(order)
        if self._graphs is None:  # capture failed before: eager launches
            return super().run_epoch(x, y, order, batch_size, on_step)
        key = self._capture_key(x, y, n, batch_size)
        if key != self._key:
            try:
                self._capture(x, y, n, batch_size)
            except RuntimeError as exc:
                warnings.warn(
                    f"CUDA-graph capture failed ({exc}); running the step eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._graphs, self.name = None, "fast-torch"
                return super().run_epoch(x, y, order, batch_size, on_step)
            self._key = key
        return self._replay_epoch(order, batch_size, on_step)

    def _replay_epoch(
        self, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        ops, opt, n = self.ops, self.optimizer, len(order)
        assert self._graphs is not None
        self._perm.copy_(ops.xp.from_numpy(np.asarray(order, dtype=np.int64)))
        ops.reset_totals()
        ops.sync_step_count(opt)
        steps = 0
        for nb in sorted(self._graphs, reverse=True):  # full batches first, then the remainder
            g = self._graphs[nb]
            g["pos"].copy_(g["pos0"])
            for _ in range(n // batch_size if nb == batch_size else 1):
                g["graph"].replay()
                steps += 1
                on_step()
        opt.tick(steps)
        loss_sum, correct = ops.read_totals()
        return loss_sum / n, correct / n


def _state_tensors(state: list[Any]) -> list[Any]:
    """The tensors of an optimiser state list (``None``, a tensor, or a tuple of tensors each)."""
    out = []
    for s in state:
        out.extend(t for t in (s if isinstance(s, tuple) else (s,)) if t is not None)
    return out


def _clone_all(params: list[Any], state: list[Any]) -> list[Any]:
    """Copies of every parameter value and optimiser state tensor."""
    return [p.value.clone() for p in params] + [t.clone() for t in _state_tensors(state)]


def _restore_all(params: list[Any], state: list[Any], saved: list[Any]) -> None:
    """Copy :func:`_clone_all`'s copies back in place (the captured pointers stay valid)."""
    for dst, src in zip([p.value for p in params] + _state_tensors(state), saved, strict=True):
        dst.copy_(src)
