"""The fast training step, written once against a backend's ops: the plain step over reused buffers.

The plain runner (:class:`chainrule.train.step.PlainRunner`) walks the layers through the driver
and allocates fresh arrays for every intermediate. :class:`FastRunner` does *the same arithmetic*
for the networks its backend's tables cover (:mod:`chainrule.accel.plan`), as one flat step:

* every ``(N, width)`` intermediate lives in a buffer allocated once per batch size (a second set
  for the final partial batch), so the steady-state step allocates no batch-by-width array (the
  loss kernels' few ``(N, K)`` temporaries come from :mod:`chainrule.nn.functional`'s
  ``targets_like``/``log_softmax``/``count_correct``, which have no ``out=`` form);
* the batch is gathered into a reused buffer (``take(x, idx, out=xb)``);
* GEMMs write into their output and read transposed *views* (``xᵀ``, ``Wᵀ``) that BLAS consumes
  with a transpose flag, never a copy; bias, activation, its derivative and the update run in place;
* the first layer skips its input gradient (nobody trains the data);
* the three stages of :mod:`chainrule.train.step` are kept: gradients, gradient hooks, update.
  With plain SGD and no hook, stages 1 and 3 fuse: each weight update is one GEMM with
  ``beta = 1`` (``W += −α xᵀδ``), so the weight gradient is never written out (the speed trick).
  Otherwise gradients land in ``param.grad`` (L2 by :func:`~chainrule.nn.regularizers.add_l2_grad`),
  the hooks see them, and the optimiser's kernels update;
* optimiser state (velocities, moments) and the step count are the optimiser's own (it counts
  through ``opt.tick``), so fast and plain runners can be swapped between epochs.

The loss a fast runner reports is the data loss without the L2 penalty;
:func:`~chainrule.train.loop.fit` adds ``(λ/2) ΣW²`` once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.accel.plan import Block, plan_blocks
from chainrule.errors import ConfigError
from chainrule.nn.regularizers import add_l2_grad

__all__ = ["FastRunner"]


class FastRunner:
    """Epoch runner for the planned blocks: the plain step, flattened onto buffers.

    For blocks ``l = 1..L`` with ``a⁰ = x_batch``::

        forward    z^l = a^{l-1} W^l + b^l ;  a^l = f_l(z^l)            (in place: a^l overwrites z^l)
        loss       E, δ^L_a = ∂E/∂a^L                                    (the backend's loss kernel)
        backward   δ^l = δ^l_a ⊙ f_l'(a^l)                               (in place)
                   ∂E/∂W^l = (a^{l-1})ᵀ δ^l + λ W^l ;  ∂E/∂b^l = Σ_rows δ^l
                   δ^{l-1}_a = δ^l (W^l)ᵀ                                (skipped for l = 1)
                   hook.grads_ready(positions of W^l, b^l)              (hooks that have it)
        hooks      hook(params) for each gradient hook                  (only with hooks)
        update     W^l, b^l ← optimiser(∂E/∂W^l, ∂E/∂b^l)

    Without hooks each layer is updated as soon as its input gradient ``δ^{l-1}_a`` has been
    computed from the old ``W^l``, which is the plain runner's result (all gradients first, then
    all updates); with hooks every gradient is materialised first, then hooks, then updates.
    """

    def __init__(
        self,
        net: Any,
        optimizer: Any,
        l2: float,
        ops: Any,
        blocks: list[Block] | None = None,
        grad_hooks: Sequence[Callable[[Any], None]] = (),
    ) -> None:
        blocks = plan_blocks(net, ops) if blocks is None else blocks
        if blocks is None:
            raise ConfigError(f"the {ops.name} fast step does not cover this network")
        self.net, self.optimizer, self.l2, self.ops, self.blocks = net, optimizer, float(l2), ops, blocks
        self.grad_hooks = tuple(grad_hooks)
        #: hooks told, during backward, which parameters' gradients are final (an all-reduce
        #: starts sending them while the lower layers are still being differentiated)
        self._ready_hooks = tuple(h for h in self.grad_hooks if hasattr(h, "grads_ready"))
        self.loss_kind = net.loss.name
        self.name = f"fast-{ops.name}"
        self.params = net.params
        self._buffers: dict[tuple[int, tuple[int, ...], Any], dict[str, Any]] = {}
        pos = {id(p): k for k, p in enumerate(self.params)}
        #: per block, the positions of W and b in ``net.params`` (= in the optimiser's state list)
        self._pos = [(pos[id(blk.W)], pos[id(blk.b)]) for blk in blocks]
        self._scratch: list[tuple[Any, Any]] | None = None

    # -- buffers ---------------------------------------------------------------------------
    def buffers(self, n: int, y_shape: tuple[int, ...], y_dtype: Any) -> dict[str, Any]:
        """Every array one step of batch size ``n`` needs, allocated on first use."""
        key = (n, tuple(y_shape), y_dtype)
        bufs = self._buffers.get(key)
        if bufs is not None:
            return bufs
        ops, dt = self.ops, self.blocks[0].W.value.dtype
        layers = []
        for blk in self.blocks:
            shape = (n, blk.out_features)
            lb: dict[str, Any] = {"a": ops.empty(shape, dt), "delta": ops.empty(shape, dt)}
            for name in blk.kernel.scratch:  # "mask" (bool), "tmp", "tmp2"
                lb[name] = ops.empty(shape, ops.bool_dtype if name == "mask" else dt)
            layers.append(lb)
        bufs = {
            "x": ops.empty((n, self.blocks[0].in_features), dt),
            "y": ops.empty((n, *tuple(y_shape[1:])), y_dtype),
            "layers": layers,
            "loss": {},  # what a backend's fused loss kernel needs (ops.prepare)
        }
        ops.prepare(bufs, self.loss_kind)
        self._buffers[key] = bufs
        return bufs

    def _param_scratch(self) -> list[tuple[Any, Any]]:
        """Two arrays per parameter for the update kernels, allocated once."""
        if self._scratch is None:
            ops, dt = self.ops, self.blocks[0].W.value.dtype
            self._scratch = [
                (ops.empty(p.value.shape, dt), ops.empty(p.value.shape, dt)) for p in self.params
            ]
        return self._scratch

    # -- the step --------------------------------------------------------------------------
    def step(self, bufs: dict[str, Any], *, update: bool = True, tick: bool = True) -> None:
        """Gradients, hooks and update on the batch already in ``bufs['x']``/``['y']``.

        The batch's loss ``E`` (without the L2 penalty) and its correct rows go to the ops'
        running totals. ``update=False`` stops after the gradients (left in every ``param.grad``,
        ``+ λW`` for decayed weights; no hooks). ``tick=False`` leaves the optimiser's step count
        to the caller (a captured graph, replayed many times, counts its steps with one
        ``opt.tick(steps)``).
        """
        self._forward_and_loss(bufs)
        opt, hooks = self.optimizer, self.grad_hooks
        if update:
            if tick:
                opt.tick()
            self.ops.begin_step(opt)
        fused_sgd = update and not hooks and opt.name == "sgd"
        update_now = update and not hooks
        notify = update and bool(self._ready_hooks)
        for i in range(len(self.blocks) - 1, -1, -1):
            self._backward_block(i, bufs, fused_sgd=fused_sgd, update_now=update_now, notify=notify)
        if update and hooks:
            for hook in hooks:
                hook(self.params)
            self._update(range(len(self.params)))

    def _forward_and_loss(self, bufs: dict[str, Any]) -> None:
        """``z^l = a^{l-1} W^l + b^l; a^l = f(z^l)``, then ``E`` and ``δ^L_a`` into the last block."""
        ops, layers = self.ops, bufs["layers"]
        a_prev = bufs["x"]
        for blk, buf in zip(self.blocks, layers, strict=True):
            ops.linear_act(a_prev, blk.W.value, blk.b.value, buf["a"], blk, buf)
            a_prev = buf["a"]
        out, yb, lb = a_prev, bufs["y"], bufs["loss"]
        correct = ops.count_correct(out, yb, lb)
        cost = ops.loss_grad(self.loss_kind, out, yb, layers[-1]["delta"], lb)
        ops.add_totals(cost, correct, out.shape[0])

    def _backward_block(
        self, i: int, bufs: dict[str, Any], *, fused_sgd: bool, update_now: bool, notify: bool = False
    ) -> None:
        """Block ``i``'s backward: ``δ = δ_a ⊙ f'``, the input gradient from the old ``W``, then
        either the fused SGD update or ``∂E/∂W``, ``∂E/∂b`` into ``param.grad`` (and the update)."""
        ops, blk, layers = self.ops, self.blocks[i], bufs["layers"]
        buf = layers[i]
        delta = buf["delta"]
        a_in = layers[i - 1]["a"] if i > 0 else bufs["x"]
        ops.act_backward(delta, buf["a"], blk, buf)  # δ^l = δ^l_a ⊙ f'(a^l)
        if i > 0:  # the first layer skips ∂E/∂x: nobody trains the data
            ops.matmul(delta, blk.W.value.T, out=layers[i - 1]["delta"])  # δ^{l-1}_a = δ^l (W^l)ᵀ
        if fused_sgd:
            self._fused_sgd(blk, a_in, delta, *self._pos[i])
            return
        ops.col_sum(delta, out=blk.b.grad)  # ∂E/∂b = Σ_rows δ^l
        ops.matmul(a_in.T, delta, out=blk.W.grad)  # ∂E/∂W = (a^{l-1})ᵀ δ^l
        if self.l2:
            add_l2_grad((blk.W,), self.l2)  # ∂E/∂W += λ W
        if update_now:
            self._update(self._pos[i])
        elif notify:
            for hook in self._ready_hooks:
                hook.grads_ready(self._pos[i])

    def _fused_sgd(self, blk: Block, a_in: Any, delta: Any, jw: int, jb: int) -> None:
        """Stages 1 and 3 in one for plain SGD without hooks; the gradient is never stored.

        This is where seed 001's L2 folds into an update (everywhere else ``λW`` is added to the
        gradient by :func:`~chainrule.nn.regularizers.add_l2_grad`): with ``g = a_inᵀ δ + λ W``,
        ``W − α g = (1 − αλ) W − α a_inᵀ δ``, so a decayed ``W`` is first scaled by ``1 − αλ`` and
        then one GEMM with ``beta = 1`` adds ``−α a_inᵀ δ``. ``b ← b − α Σ_rows δ`` (no decay).
        """
        opt, ops, scratch = self.optimizer, self.ops, self._param_scratch()
        if self.l2 and blk.W.decay:
            ops.scale(blk.W.value, 1 - opt.lr * self.l2)
        ops.gemm_acc(a_in.T, delta, blk.W.value, -opt.lr, scratch[jw][0])
        ops.bias_sgd(delta, blk.b, opt.lr, scratch[jb][0])

    def _update(self, positions: Any) -> None:
        """Stage 3 for the parameters at ``positions`` (the optimiser already counted the step)."""
        ops, opt, params = self.ops, self.optimizer, self.params
        state, scratch = opt.state_for(params), self._param_scratch()
        for j in positions:
            ops.update(opt, params[j].value, params[j].grad, state[j], *scratch[j])

    def loss_and_grad(self, x: Any, y: Any) -> float:
        """``E`` of the batch ``(x, y)`` (no L2 penalty) with its gradients left in every
        ``param.grad`` (``+ λW`` for weights with L2) and no update: the fast counterpart of
        :meth:`Sequential.gradients`, used by the tests."""
        bufs = self.buffers(x.shape[0], tuple(y.shape), y.dtype)
        bufs["x"][...] = x
        bufs["y"][...] = y
        self.ops.reset_totals()
        self.step(bufs, update=False)
        return self.ops.read_totals()[0] / x.shape[0]

    # -- the epoch -------------------------------------------------------------------------
    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        """Train one epoch over ``x[order]`` in batches; returns (mean batch loss weighted by
        batch size, running accuracy). ``on_step()`` is called after every step."""
        ops = self.ops
        n = len(order)
        idx_all = ops.index_array(order)
        ops.reset_totals()
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            bufs = self.buffers(stop - start, tuple(y.shape), y.dtype)
            ops.gather_batch(x, y, idx_all[start:stop], bufs)  # x[idx], y[idx] into reused buffers
            self.step(bufs)
            on_step()
        loss_sum, correct = ops.read_totals()
        return loss_sum / n, correct / n
